"""When a schedule fires: the pure timing rules (no I/O, no clock; "now" is always a parameter).

A schedule is a cron expression read in an IANA time zone (`Cron`), or an interval of real
elapsed time (`Every`). Its fires are instants, UNIX seconds as integers: the *logical times*.

The rule for cron schedules and daylight-saving time:

- The expression is matched against the zone's local *wall* times, minute by minute.
- A wall time that happens once fires at that instant.
- A wall time that does not exist (the clocks spring forward over it) fires once, at the first
  valid instant after the gap: the instant of the transition. Several missing wall times that
  match (`*/15 2 * * *` on the night of the change) still make one fire there, shared with the
  wall time just after the gap if that one matches too.
- A wall time that happens twice (the clocks fall back over it) fires once, at its first
  occurrence; the repeated hour makes no second fire.

Each local day therefore gets each of its daily fires exactly once. Interval schedules count real
elapsed time and ignore time zones and DST: fires at `anchor + k * seconds` (anchor 0, the UNIX
epoch, unless the schedule gives its own), so `every="15m"` fires at :00, :15, :30 and :45 UTC.

A fire's *data interval* is the span the run is responsible for: from the previous fire to this
one, `[previous, logical)`, both UTC.

The cost of `next_fire` is a few steps of the cron iterator, not a scan: the mapping from wall
times to instants is monotone, so the first matching wall time after `after`'s own wall time is
the answer except inside a repeated hour, where at most an hour of matches is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..durations import Duration, seconds
from ..errors import ConfigError

MAX_INTERVAL = 366 * 86400
"""The longest `every` accepted: a year and a day."""


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression read in the zone `tz`."""

    expr: str
    tz: str = "UTC"

    @property
    def text(self) -> str:
        return f"cron {self.expr}"


@dataclass(frozen=True)
class Every:
    """Every `seconds` of real elapsed time, counted from `anchor` (UNIX seconds)."""

    seconds: int
    anchor: int = 0
    tz: str = "UTC"
    """Only for showing fires in local time; the fires themselves ignore it."""

    @property
    def text(self) -> str:
        return f"every {_duration_text(self.seconds)}"


Spec = Cron | Every


def _duration_text(total: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0s"


def zone(name: str, *, field: str = "tz") -> ZoneInfo:
    """The IANA zone `name`; a ConfigError naming `field` if there is none."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{field} must be an IANA time zone name like 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"{field}: unknown time zone {name!r} (an IANA name like 'Europe/Berlin' or 'UTC')"
        ) from None


def parse(
    *,
    cron: str | None = None,
    every: Duration | None = None,
    tz: str = "UTC",
    anchor: float | None = None,
) -> Spec:
    """The spec a schedule declares: exactly one of `cron` and `every`; a ConfigError naming the
    field otherwise."""
    zone(tz)
    if (cron is None) == (every is None):
        raise ConfigError("a schedule needs exactly one of cron= and every=")
    if cron is not None:
        return Cron(check_cron(cron), tz)
    assert every is not None
    total = seconds(every, name="every")
    if total < 1 or total != int(total):
        raise ConfigError(f"every must be a whole number of seconds, at least 1s, not {every!r}")
    if total > MAX_INTERVAL:
        raise ConfigError(f"every must be at most 366d, not {every!r}")
    return Every(int(total), 0 if anchor is None else int(anchor), tz)


def check_cron(expr: str) -> str:
    """`expr` normalised (single spaces) if it is a valid five-field cron expression."""
    if not isinstance(expr, str):
        raise ConfigError(f"cron must be a string like '0 2 * * *', not {expr!r}")
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(
            f"cron: {expr!r} must have five fields (minute hour day-of-month month day-of-week)"
        )
    text = " ".join(fields)
    try:
        next(CronSim(text, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration, ValueError) as exc:
        raise ConfigError(f"cron: invalid expression {expr!r}: {exc}") from None
    return text


def _instant(wall: datetime, tz: ZoneInfo) -> int:
    """The instant a matching wall time fires at (the DST rule in the module docstring)."""
    first = wall.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return int(utc.timestamp())  # it exists; fold=0 is its first occurrence
    # In a gap: fold=0 reads it with the offset before the change, which lands after the gap;
    # fold=1 with the offset after it, which lands before. The transition lies in between.
    second = wall.replace(tzinfo=tz, fold=1)
    low = int(second.astimezone(UTC).timestamp())
    high = int(utc.timestamp())
    after = second.utcoffset()
    while low + 1 < high:  # the first instant whose offset is the one after the change
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    return high


def _walls(expr: str, start: datetime, reverse: bool) -> Iterator[datetime]:
    return iter(CronSim(expr, start, reverse=reverse))


def next_fire(spec: Spec, after: float) -> int:
    """The first logical time strictly after `after`."""
    if isinstance(spec, Every):
        k = (int(after) - spec.anchor) // spec.seconds + 1
        while spec.anchor + k * spec.seconds <= after:
            k += 1
        return spec.anchor + k * spec.seconds
    tz = zone(spec.tz)
    wall = datetime.fromtimestamp(int(after), tz).replace(tzinfo=None)
    for candidate in _walls(spec.expr, wall, reverse=False):
        when = _instant(candidate, tz)
        if when > after:
            return when
    raise ConfigError(f"cron: {spec.expr!r} never fires")  # pragma: no cover - cronsim checks


def previous_fire(spec: Spec, before: float) -> int:
    """The last logical time strictly before `before`."""
    if isinstance(spec, Every):
        k = -((spec.anchor - int(before)) // spec.seconds) - 1
        while spec.anchor + k * spec.seconds >= before:
            k -= 1
        while spec.anchor + (k + 1) * spec.seconds < before:
            k += 1
        return spec.anchor + k * spec.seconds
    tz = zone(spec.tz)
    # The wall time a little after `before`: a gap fire's instant reads as a later wall time.
    wall = datetime.fromtimestamp(int(before) + 1, tz).replace(tzinfo=None) + timedelta(hours=3)
    for candidate in _walls(spec.expr, wall, reverse=True):
        when = _instant(candidate, tz)
        if when < before:
            return when
    raise ConfigError(f"cron: {spec.expr!r} never fires")  # pragma: no cover


def fires(spec: Spec, after: float, until: float, limit: int) -> list[int]:
    """The logical times in (`after`, `until`], at most `limit` of them, oldest first."""
    out: list[int] = []
    when = float(after)
    while len(out) < limit:
        nxt = next_fire(spec, when)
        if nxt > until:
            break
        out.append(nxt)
        when = nxt
    return out


def count_fires(spec: Spec, after: float, until: float, limit: int) -> int:
    """How many logical times lie in (`after`, `until`], counting up to `limit` + 1 at most."""
    if isinstance(spec, Every):
        if until <= after:
            return 0
        first = next_fire(spec, after)
        if first > until:
            return 0
        return min(limit + 1, (int(until) - first) // spec.seconds + 1)
    return len(fires(spec, after, until, limit + 1))


def data_interval(spec: Spec, logical: int) -> tuple[int, int]:
    """The span a fire at `logical` is responsible for: from the previous fire to it."""
    return previous_fire(spec, logical), logical


def local_time(spec: Spec, when: float) -> datetime:
    """`when` in the schedule's own zone, timezone-aware."""
    return datetime.fromtimestamp(when, zone(spec.tz))
