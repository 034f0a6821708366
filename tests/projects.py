"""A user's project for CLI tests: an app module written to tmp_path under a unique name (each
test imports its own copy in this process), the working directory moved there, and corral's
environment variables cleared."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_names = itertools.count()


def app_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, code: str, url: str
) -> Iterator[tuple[str, str]]:
    """Yield (the --app spec of the module's `app`, `url`); the module is forgotten after."""
    module = f"{prefix}_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_app adds the cwd
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CORRAL_APP", raising=False)
    yield f"{module}:app", url
    sys.modules.pop(module, None)
