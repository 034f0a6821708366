"""pytest fixtures for corral.testing; opt in from your conftest.py:

    pytest_plugins = ["corral.testing.fixtures"]

    @pytest.fixture
    def corral_app():
        return myproject.tasks.app        # the App your task types are registered on

Then a test takes `corral_harness` (a fresh temporary SQLite store per test). To run on your
PostgreSQL instead, override `corral_test_url` to return the URL of a fresh database. This module
imports pytest; `corral.testing` itself does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..app import App
from .harness import Harness


@pytest.fixture
def corral_app() -> App:
    """Override in your conftest.py: the App your task types are registered on."""
    raise pytest.UsageError(
        "corral_harness needs your App: define a `corral_app` fixture that returns it"
    )


@pytest.fixture
def corral_test_url() -> str | None:
    """Override to test on another database (e.g. a fresh PostgreSQL one); None: a temporary
    SQLite file."""
    return None


@pytest.fixture
def corral_harness(corral_app: App, corral_test_url: str | None) -> Iterator[Harness]:
    """A harness for `corral_app`, in force for the test."""
    with Harness(corral_app, url=corral_test_url) as harness:
        yield harness
