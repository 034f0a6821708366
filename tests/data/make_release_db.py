"""Make a SQLite database the way a released corral left it, for the upgrade test
(tests/test_sqlite_prefix.py). Run it with the release's code on the path, never this checkout's:

    git worktree add /tmp/release f144d8a
    PYTHONPATH=/tmp/release/src python tests/data/make_release_db.py tests/data/release-f144d8a.db

It holds a bit of everything an upgrade must keep: finished, failed, waiting and ready tasks,
dependencies, a workflow, attempts, events, logs, a group's settings, a rate limit, a retention
setting and a consumer's cursor."""

from __future__ import annotations

import os
import sys

import corral
from corral.testing import harness

app = corral.App()


@app.task(max_retries=0)
def load(ctx: corral.Context, table: str) -> str:
    ctx.logger.info("loading %s", table)
    if table == "broken":
        raise ValueError("no such table")
    return f"loaded {table}"


def main(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
    with harness(app, url=f"sqlite:///{path}", start=1_780_000_000.0) as h:
        app.groups.configure("billing", max_parallel=3, weight=2)
        app.rate_limits.configure("warehouse", "10/minute")
        app.retention.configure(default="14d", per_type={"load": "30d"})
        done = load.submit("orders", group="billing")
        load.submit("broken", group="billing")
        wf = app.workflow("nightly", group="etl")
        first = wf.add(load, "customers")
        wf.add(load, "invoices", after=[first])
        wf.submit()
        h.drain()
        load.submit("later", delay="1h")
        load.submit("after", depends_on=[done])  # its upstream succeeded
        print("tasks:", len(h.submitted()))


if __name__ == "__main__":
    main(sys.argv[1])
