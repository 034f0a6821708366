"""The pure timing rules of schedules (corral.schedules.spec): cron in a time zone, the DST rule,
intervals. Property tests over several zones, one with a 30-minute shift (Lord Howe), and one
whose clocks change at midnight (Santiago), against an oracle that scans every minute."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import ConfigError
from corral.schedules import spec
from corral.schedules.spec import Cron, Every

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Europe/London",
    "Asia/Kolkata",
    "UTC",
]
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


@functools.cache
def transitions(name: str) -> list[int]:
    """Every instant in 2020-2040 at which `name`'s UTC offset changes (day scan, then bisect)."""
    tz = ZoneInfo(name)
    out: list[int] = []
    t, end = ts(2020, 1, 1), ts(2040, 1, 1)

    def offset(x: int) -> timedelta | None:
        return datetime.fromtimestamp(x, tz).utcoffset()

    while t < end:
        if offset(t) != offset(t + 86400):
            low, high = t, t + 86400
            while low + 1 < high:
                mid = (low + high) // 2
                if offset(mid) == offset(t):
                    low = mid
                else:
                    high = mid
            out.append(high)
        t += 86400
    return out


def oracle(expr_minutes: set[int], expr_hours: set[int], name: str, lo: int, hi: int) -> list[int]:
    """The fires in (lo, hi] by the documented rule, found by scanning every UTC minute."""
    tz = ZoneInfo(name)
    out: set[int] = set()

    def matches(wall: datetime) -> bool:
        return wall.minute in expr_minutes and wall.hour in expr_hours and wall.second == 0

    for t in range(lo - lo % 60 + 60, hi + 1, 60):
        wall = datetime.fromtimestamp(t, tz)
        naive = wall.replace(tzinfo=None)
        first = int(naive.replace(tzinfo=tz, fold=0).astimezone(UTC).timestamp())
        if matches(naive) and first == t:  # exists, and this is its first occurrence
            out.add(t)
    for change in transitions(name):  # the gaps: a missing wall time fires at the change
        if not lo < change <= hi:
            continue
        before = datetime.fromtimestamp(change - 1, tz).replace(tzinfo=None) + timedelta(seconds=1)
        after = datetime.fromtimestamp(change, tz).replace(tzinfo=None)
        wall = before
        while wall < after:
            if matches(wall):
                out.add(change)
            wall += timedelta(minutes=1)
    return sorted(out)


def field(values: set[int], size: int) -> str:
    return "*" if len(values) == size else ",".join(str(v) for v in sorted(values))


MINUTES = st.sampled_from([{0}, {30}, {0, 30}, {15, 45}, {0, 15, 30, 45}, {59}, set(range(60))])
HOURS = st.sampled_from([{0}, {1}, {2}, {3}, {23}, {0, 1, 2, 3}, {1, 2}, set(range(24))])


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(DST_ZONES),
    index=st.integers(min_value=0, max_value=39),
    minutes=MINUTES,
    hours=HOURS,
    shift=st.integers(min_value=-86400, max_value=86400),
)
def test_cron_fires_match_the_minute_by_minute_oracle_around_transitions(
    name: str, index: int, minutes: set[int], hours: set[int], shift: int
) -> None:
    changes = transitions(name)
    change = changes[index % len(changes)]
    lo = change - 86400 + shift // 4
    hi = change + 86400 // 2
    expr = f"{field(minutes, 60)} {field(hours, 24)} * * *"
    got = spec.fires(Cron(expr, name), lo, hi, 10_000)
    assert got == oracle(minutes, hours, name, lo, hi), expr


@pytest.mark.parametrize("name", ZONES)
@pytest.mark.parametrize("hour,minute", [(0, 0), (1, 30), (2, 0), (2, 15), (2, 30), (3, 0)])
def test_a_daily_fire_happens_once_every_local_day_for_years(
    name: str, hour: int, minute: int
) -> None:
    tz = ZoneInfo(name)
    schedule = Cron(f"{minute} {hour} * * *", name)
    got = spec.fires(schedule, ts(2024, 1, 1), ts(2031, 1, 1), 10_000)
    days = [datetime.fromtimestamp(t, tz).date() for t in got]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))
    assert len(got) > 7 * 365 - 2
    for t in got:
        local = datetime.fromtimestamp(t, tz)
        if (local.hour, local.minute) == (hour, minute):
            # the first occurrence: an hour (or 30 minutes) earlier is not the same wall time
            naive = local.replace(tzinfo=None)
            assert int(naive.replace(tzinfo=tz, fold=0).astimezone(UTC).timestamp()) == t
        else:  # the wall time was missing that day: the first instant after the gap
            assert t in transitions(name), local
            assert (local.hour, local.minute) > (hour, minute)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    when=st.integers(min_value=ts(2020, 1, 1), max_value=ts(2039, 1, 1)),
    minutes=MINUTES,
    hours=HOURS,
)
def test_next_and_previous_fire_bracket_every_instant(
    name: str, when: int, minutes: set[int], hours: set[int]
) -> None:
    schedule = Cron(f"{field(minutes, 60)} {field(hours, 24)} * * *", name)
    after = spec.next_fire(schedule, when)
    before = spec.previous_fire(schedule, when)
    assert before < when < after
    assert spec.previous_fire(schedule, after) <= when  # no fire lies in (when, after)
    assert spec.next_fire(schedule, before) >= when  # none in (before, when)
    assert spec.data_interval(schedule, after) == (spec.previous_fire(schedule, after), after)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    every=st.integers(min_value=1, max_value=7 * 86400),
    anchor=st.integers(min_value=0, max_value=ts(2030, 1, 1)),
    when=st.integers(min_value=ts(2020, 1, 1), max_value=ts(2039, 1, 1)),
)
def test_intervals_count_real_elapsed_time_whatever_the_zone(
    name: str, every: int, anchor: int, when: int
) -> None:
    schedule = Every(every, anchor, name)
    got = spec.fires(schedule, when, when + 20 * every, 50)
    assert len(got) == 20
    assert all(b - a == every for a, b in itertools.pairwise(got))
    assert all((t - anchor) % every == 0 for t in got)
    assert when < got[0] <= when + every
    assert spec.previous_fire(schedule, got[0]) == got[0] - every
    assert spec.count_fires(schedule, when, when + 20 * every, 100) == 20


def test_interval_fires_ignore_dst() -> None:
    change = next(t for t in transitions("Europe/Berlin") if t > ts(2026, 3, 1))
    got = spec.fires(spec.parse(every="1h", tz="Europe/Berlin"), change - 7200, change + 7200, 9)
    assert got == [change - 3600, change, change + 3600, change + 7200]


def test_the_examples_of_the_docs() -> None:
    berlin = Cron("30 2 * * *", "Europe/Berlin")
    # spring forward 2026-03-29: 02:30 does not exist, the fire is at 03:00 CEST
    spring = spec.next_fire(berlin, ts(2026, 3, 28, 12))
    assert spec.local_time(berlin, spring).isoformat() == "2026-03-29T03:00:00+02:00"
    # fall back 2026-10-25: 02:30 happens twice, the fire is at the first (CEST)
    fall = spec.next_fire(berlin, ts(2026, 10, 24, 12))
    assert spec.local_time(berlin, fall).isoformat() == "2026-10-25T02:30:00+02:00"
    assert spec.next_fire(berlin, fall) == fall + 25 * 3600
    lord_howe = Cron("15 2 * * *", "Australia/Lord_Howe")  # 02:00-02:30 missing on 2026-10-04
    shifted = spec.next_fire(lord_howe, ts(2026, 10, 3, 12))
    assert spec.local_time(lord_howe, shifted).isoformat() == "2026-10-04T02:30:00+11:00"


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "five fields"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "0 2 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": "0s"}, "every"),
        ({"every": "1.5s"}, "whole number"),
        ({"every": "-5s"}, "every"),
        ({"every": "400d"}, "366d"),
        ({}, "exactly one"),
        ({"cron": "0 2 * * *", "every": "1h"}, "exactly one"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(kwargs: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        spec.parse(**kwargs)  # type: ignore[arg-type]
