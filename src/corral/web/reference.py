"""The API reference (docs/web-api-reference.md), generated from the app's own OpenAPI schema
and route roles, so it can't drift: tests/test_web_docs.py fails when the checked-in file is not
what this renders.

    python -m corral.web.reference > docs/web-api-reference.md
"""

from __future__ import annotations

import tempfile
from typing import Any

from .. import App
from .app import create_app
from .routes import operations

HEADER = """# corral web: API reference

Generated from the OpenAPI schema (`python -m corral.web.reference`; the live schema is
`GET /api/v1/openapi.json`, for any viewer token). Every operation needs
`Authorization: Bearer <token>` (or a dashboard session with its CSRF token) of at least the
role shown, except those marked public. Errors are `application/problem+json`:
`{"type", "title", "status", "detail", "field"?}`. How to make tokens and scope them:
docs/web-security.md.
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return str(schema.get("type", "any"))


def _bounds(schema: dict[str, Any]) -> str:
    parts = []
    for key, word in (("minimum", ">="), ("maximum", "<="), ("minLength", "length >="),
                      ("maxLength", "length <=")):  # fmt: skip
        for s in [schema, *schema.get("anyOf", [])]:
            if key in s:
                parts.append(f"{word} {s[key]}")
    return ", ".join(parts)


def render(schema: dict[str, Any], roles: dict[tuple[str, str], str | None]) -> str:
    lines = [HEADER]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    for tag, ops in by_tag.items():
        lines.append(f"## {tag}\n")
        for method, path, op in ops:
            role = roles.get((method.upper(), path))
            who = f"role: {role}" if role else "public"
            lines.append(f"### `{method.upper()} {path}`\n")
            lines.append(f"{op.get('summary', '')} ({who})\n")
            if op.get("description"):
                lines.append(" ".join(op["description"].split()) + "\n")
            params = op.get("parameters", [])
            if params:
                lines.append("| parameter | in | type | bounds | |")
                lines.append("|---|---|---|---|---|")
                for p in params:
                    s = p.get("schema", {})
                    note = " ".join(str(p.get("description", s.get("description", ""))).split())
                    needed = "required" if p.get("required") else ""
                    lines.append(f"| `{p['name']}` | {p['in']} | {_type(s)} | {_bounds(s)} | "
                                 f"{needed} {note} |".replace("  ", " "))  # fmt: skip
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                lines.append(f"Body ({media}): {_type(content.get('schema', {}))}\n")
            responses = op.get("responses", {})
            good = [f"{c} {_answer(r)}" for c, r in responses.items() if str(c) < "400"]
            bad = [str(c) for c in responses if str(c) >= "400"]
            lines.append(f"Answers: {'; '.join(good)}. Problems: {', '.join(bad)}.\n")
    lines.append("## Schemas\n")
    for name, s in schema.get("components", {}).get("schemas", {}).items():
        props = s.get("properties", {})
        if not props:
            continue
        lines.append(f"### {name}\n")
        if s.get("description"):
            lines.append(" ".join(s["description"].split()) + "\n")
        lines.append("| field | type | |")
        lines.append("|---|---|---|")
        required = set(s.get("required", []))
        for field, fs in props.items():
            note = " ".join(str(fs.get("description", "")).split())
            lines.append(f"| `{field}` | {_type(fs)} | {'required ' if field in required else ''}"
                         f"{note} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _answer(response: dict[str, Any]) -> str:
    content = response.get("content", {})
    for media, c in content.items():
        if media == "application/json" and "schema" in c:
            return _type(c["schema"])
    return str(response.get("description", ""))


def current() -> str:
    """The reference of the app as it is now (on a throwaway database)."""
    with tempfile.TemporaryDirectory() as folder:
        app = App(f"sqlite:///{folder}/reference.db")
        try:
            site = create_app(app)
            roles = {(o.method, o.path): o.role for o in operations(site)}
            return render(site.openapi(), roles)
        finally:
            app.close()


if __name__ == "__main__":
    print(current(), end="")
