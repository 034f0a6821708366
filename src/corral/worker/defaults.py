"""The worker's lease and heartbeat defaults, apart from the worker (corral.worker.worker), so that
the command line can show them without importing it."""

from __future__ import annotations

LEASE = 15.0
"""A task whose worker is silent this long is given to another worker."""
HEARTBEAT = 1.0
"""Seconds between heartbeats; also how often cancel requests are picked up."""
