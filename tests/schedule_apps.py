"""An app with three schedules (hourly and daily with overlap allowed, an hourly catching up the
latest only) and its schedule services, for the retention and metrics tests of schedules."""

from __future__ import annotations

import corral
from corral.clock import ManualClock
from corral.schedules.backfill_service import BackfillMaker
from corral.schedules.service import ScheduleClock


def three_schedules(url: str, clock: ManualClock) -> corral.App:
    application = corral.App(url, clock=clock)

    @application.task
    def load(ctx: corral.Context) -> None:
        return None

    application.schedules.add("hourly", load, every="1h", overlap="allow")
    application.schedules.add("daily", load, cron="0 2 * * *", overlap="allow")
    application.schedules.add("latest", load, every="1h", catchup="latest")
    return application


def services(app: corral.App) -> tuple[ScheduleClock, BackfillMaker]:
    ticker, maker = app.schedules.services()
    assert isinstance(ticker, ScheduleClock) and isinstance(maker, BackfillMaker)
    return ticker, maker
