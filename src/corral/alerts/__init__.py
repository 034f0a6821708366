"""Alerts: rules declared in code (`app.alerts.rule(...)`), incidents in the store, notices
delivered through an outbox to email, webhooks and Slack (docs/alerts.md)."""
