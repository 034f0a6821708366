"""The API reference in docs/ is the one the app's schema renders now."""

from __future__ import annotations

from pathlib import Path

from corral.web.reference import current

DOC = Path(__file__).resolve().parents[1] / "docs" / "web-api-reference.md"


def test_the_checked_in_api_reference_is_current() -> None:
    assert DOC.read_text() == current(), (
        "docs/web-api-reference.md is stale: python -m corral.web.reference > "
        "docs/web-api-reference.md"
    )
