"""Bulk confirmations (corral.web.confirmations), pure: a token checks for the request it was
issued for, and is refused when forged, tampered with, expired, from another install, or for
another action, principal or filter."""

from __future__ import annotations

import pytest

from corral.lifecycle import State
from corral.read_model import TaskFilter
from corral.web.confirmations import ConfirmationRefused, check, issue

SECRET = b"s" * 32
F = TaskFilter(states=(State.READY,), group="g1")


def token(**overrides: object) -> str:
    args: dict[str, object] = {"action": "cancel", "filter": F, "principal": "tok-1",
                               "high_water": 41, "count": 7, "now": 1000.0}  # fmt: skip
    return issue(SECRET, **(args | overrides))  # type: ignore[arg-type]


def test_a_token_checks_for_its_own_request() -> None:
    got = check(SECRET, token(), action="cancel", filter=F, principal="tok-1", now=1500.0)
    assert (got.high_water, got.count) == (41, 7)


@pytest.mark.parametrize(
    ("secret", "action", "flt", "principal", "now", "why"),
    [
        (b"other" * 8, "cancel", F, "tok-1", 1000.0, "not a token"),
        (SECRET, "retry", F, "tok-1", 1000.0, "another action"),
        (SECRET, "cancel", F, "tok-2", 1000.0, "another token"),
        (SECRET, "cancel", TaskFilter(states=(State.READY,), group="g2"), "tok-1", 1000.0,
         "another filter"),
        (SECRET, "cancel", F, "tok-1", 1000.0 + 601, "expired"),
    ],
)  # fmt: skip
def test_a_token_for_anything_else_is_refused(
    secret: bytes, action: str, flt: TaskFilter, principal: str, now: float, why: str
) -> None:
    with pytest.raises(ConfirmationRefused, match=why):
        check(secret, token(), action=action, filter=flt, principal=principal, now=now)


@pytest.mark.parametrize("bad", ["", "x", "x.y", "!!!.###", "a" * 9000 + ".b"])
def test_garbage_and_tampering_are_refused(bad: str) -> None:
    good = token()
    body, _, mac = good.partition(".")
    tampered = token(high_water=10_000).partition(".")[0] + "." + mac
    for candidate in (bad, tampered, body + ".", body):
        with pytest.raises(ConfirmationRefused):
            check(SECRET, candidate, action="cancel", filter=F, principal="tok-1", now=1000.0)
