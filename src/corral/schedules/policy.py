"""What a schedule does with the fires that came due: catch-up and overlap, pure rules with the
reasons `corral why` gives (no I/O, "now" is a parameter).

Catch-up, when fires came due while no leader ran (or faster than the clock looked):

- `all`: each due fire runs, up to `max_catchup` (default 100) of the latest; older ones are
  recorded missed, "beyond max_catchup".
- `latest`: only the latest due fire runs; the others are recorded missed.
- `none`: the latest due fire runs only if it is on time (at most `ON_TIME` seconds late); every
  other is recorded missed.
- `catchup_window` (with `all` or `latest`): a fire later than the window is recorded missed.
- While the schedule is paused, due fires are recorded missed, "paused".

The fires that run are always the latest ones (a suffix of the due fires), so every due fire
older than the first of them is missed: a missed fire is a row with its reason, never dropped.

Overlap, when a fire is due while the schedule's previous run has unfinished tasks:

- `skip` (default): recorded skipped, naming the fire still running;
- `buffer_one`: held, and made once the previous run ends; a second while one is held is skipped;
- `allow`: runs beside it;
- `cancel_previous`: the previous run's tasks are cancelled (with their on_cancel clean-up), then
  the fire runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..durations import Duration, seconds
from ..errors import ConfigError
from .spec import Spec, local_time

CATCHUP = ("all", "latest", "none")
OVERLAP = ("skip", "buffer_one", "allow", "cancel_previous")
MAX_CATCHUP = 1000
"""The most fires one catch-up may run (`max_catchup`'s bound)."""
ON_TIME = 60.0
"""Seconds a fire may be late and still run under catchup="none"."""

Action = Literal["run", "skip", "buffer", "cancel_previous"]


@dataclass(frozen=True)
class Policy:
    catchup: str = "all"
    max_catchup: int = 100
    catchup_window: float | None = None
    overlap: str = "skip"

    def to_json(self) -> dict[str, object]:
        return {
            "catchup": self.catchup,
            "max_catchup": self.max_catchup,
            "catchup_window": self.catchup_window,
            "overlap": self.overlap,
        }


def check(
    catchup: str = "all",
    max_catchup: int = 100,
    catchup_window: Duration | None = None,
    overlap: str = "skip",
) -> Policy:
    """The policy, or a ConfigError naming the field that is wrong."""
    if catchup not in CATCHUP:
        raise ConfigError(f"catchup must be one of {CATCHUP}, not {catchup!r}")
    if overlap not in OVERLAP:
        raise ConfigError(f"overlap must be one of {OVERLAP}, not {overlap!r}")
    if isinstance(max_catchup, bool) or not isinstance(max_catchup, int):
        raise ConfigError(f"max_catchup must be a whole number, not {max_catchup!r}")
    if not 1 <= max_catchup <= MAX_CATCHUP:
        raise ConfigError(f"max_catchup must be between 1 and {MAX_CATCHUP}, not {max_catchup}")
    window = None
    if catchup_window is not None:
        window = seconds(catchup_window, name="catchup_window")
        if window <= 0:
            raise ConfigError(f"catchup_window must be more than 0s, not {catchup_window!r}")
        if catchup == "none":
            raise ConfigError("catchup_window needs catchup='all' or 'latest', not 'none'")
    return Policy(catchup, max_catchup, window, overlap)


def how_many(policy: Policy) -> int:
    """The most due fires a catch-up runs: the latest this many are the candidates."""
    return policy.max_catchup if policy.catchup == "all" else 1


def runs(policy: Policy, latest: list[int], now: float, paused: bool) -> list[int]:
    """Of the candidates (`latest`: the latest due fires, latest first, at most `how_many`),
    those that run, oldest first."""
    if paused:
        return []
    keep = [t for t in latest[: how_many(policy)] if _in_time(policy, t, now)]
    return sorted(keep)


def _in_time(policy: Policy, logical: int, now: float) -> bool:
    late = now - logical
    if policy.catchup == "none":
        return late <= ON_TIME
    return policy.catchup_window is None or late <= policy.catchup_window


def missed_reason(
    policy: Policy, logical: int, now: float, paused: bool, ran: list[int], candidate: bool
) -> str:
    """Why the due fire at `logical` does not run (`ran`: those that do; `candidate`: it was one
    of the latest `how_many`)."""
    late = _duration(now - logical)
    if paused:
        return "missed: the schedule was paused"
    if policy.catchup == "none":
        return f"missed: catchup=none and the fire was {late} late (on time: {ON_TIME:.0f}s)"
    window = policy.catchup_window
    if window is not None and now - logical > window:
        return f"missed: {late} late, beyond catchup_window={_duration(window)}"
    if policy.catchup == "latest":
        return "missed: catchup=latest, a later fire ran instead"
    if not candidate:
        return f"missed: beyond max_catchup={policy.max_catchup} ({len(ran)} later fires ran)"
    return "missed"  # pragma: no cover - every branch above covers a fire that does not run


def overlap_action(policy: Policy, previous_running: bool, buffered: bool) -> Action:
    """What a fire due now does, given whether the previous run is unfinished and whether a
    fire is held already (buffer_one)."""
    if not previous_running or policy.overlap == "allow":
        return "run"
    if policy.overlap == "cancel_previous":
        return "cancel_previous"
    if policy.overlap == "buffer_one" and not buffered:
        return "buffer"
    return "skip"


def skipped_reason(policy: Policy, spec: Spec, previous: float, held: float | None) -> str:
    """Why a fire is skipped: the fire still running (and the fire held, for buffer_one)."""
    when = _local(spec, previous)
    if policy.overlap == "buffer_one" and held is not None:
        return (
            f"skipped: overlap=buffer_one, the fire of {when} is still running and the fire "
            f"of {_local(spec, held)} is held already"
        )
    return f"skipped: overlap={policy.overlap}, the fire of {when} is still running"


def _local(spec: Spec, when: float) -> str:
    moment: datetime = local_time(spec, when)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(total: float) -> str:
    whole = int(total)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size or (unit == "s" and not parts):
            parts.append(f"{whole // size}{unit}")
            whole %= size
        if len(parts) == 2:
            break
    return "".join(parts)
