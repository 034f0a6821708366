"""Test your own tasks with corral: `with corral.testing.harness(app) as h:` gives your App a
temporary store and a clock the test moves; `h.drain()` runs what is due with the real scheduler
and a real worker in this process; `h.assert_submitted(task, args=..., group=...)` checks what
was submitted. Guide and reference: docs/testing.md. pytest fixtures: corral.testing.fixtures.
"""

from __future__ import annotations

from typing import Any

from ..app import App
from .harness import DrainIncomplete, DrainResult, Harness


def harness(app: App, **options: Any) -> Harness:
    """A `Harness` for `app`, to use as a context manager; options: see `Harness`."""
    return Harness(app, **options)


__all__ = ["DrainIncomplete", "DrainResult", "Harness", "harness"]
