"""Bad input gets a clear error that names what is wrong, and nothing is written."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import corral
from corral import ConfigError, DatabaseError, PayloadError, UnknownTaskError
from corral.model import NEW_TASK_FIELDS, NewTask, TaskQuery
from corral.store import open_store


def assert_nothing_written(app: corral.App) -> None:
    assert app.store.task_list(TaskQuery()) == []
    assert app.store.event_fetch_after(0, 10) == []


@pytest.fixture
def load(app: corral.App) -> Iterator[corral.TaskType[Any, Any]]:
    @app.task(max_runtime="1m")
    def load(ctx: corral.Context, table: str, limit: int = 10) -> None: ...

    yield load
    assert_nothing_written(app)  # whatever the test tried, after its error


# -- submitting --------------------------------------------------------------------------------


def test_unknown_task_name_is_named_in_the_error(
    app: corral.App, load: corral.TaskType[Any, Any]
) -> None:
    with pytest.raises(UnknownTaskError, match=r"'nope'.*registered: load"):
        app.submit("nope")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((object(),), {}), (("t",), {"limit": {1, 2}}), (("t", math.nan), {}), ((b"bytes",), {})],
    ids=["object", "set", "nan", "bytes"],
)
def test_arguments_that_are_not_json_are_refused(
    load: corral.TaskType[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(PayloadError, match="arguments of load"):
        load.submit(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (("t", 1, 2), {}), (("t",), {"colour": "red"}), ((), {"limit": 3}),
     (("t",), {"table": "u"}), (("t", 1), {"limit": 2})],
    ids=["missing", "too-many", "unknown-keyword", "missing-with-keyword", "twice", "twice-later"],
)  # fmt: skip
def test_arguments_that_do_not_fit_the_handler_are_refused(
    load: corral.TaskType[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match="bad arguments for task 'load'"):
        load.submit(*args, **kwargs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": -1}, "priority must be a whole number from 0 to 2147483647"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"run_at": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"run_at": "tomorrow"}, "run_at"),
        ({"delay": "soon"}, "delay must be a duration"),
        ({"delay": -5}, "delay must not be negative"),
        ({"delay": 5, "run_at": 1e10}, "not both"),
        ({"dedup_key": ""}, "dedup_key"),
        ({"group": ""}, "group"),
        ({"depends_on": ["1"]}, "depends_on takes task ids"),
        ({"depends_on": [424242]}, "424242"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_bad_submit_options_are_refused(
    load: corral.TaskType[Any, Any], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load.submit("t", **options)


def test_a_batch_with_one_bad_call_writes_nothing(
    app: corral.App, load: corral.TaskType[Any, Any]
) -> None:
    good = load.prepare("t", dedup_key="k")
    bad = load.prepare("u", depends_on=[999])
    with pytest.raises(ConfigError, match="999"):
        app.submit_many([good, bad])


# -- registering -------------------------------------------------------------------------------


@pytest.fixture
def local_app(tmp_path: Path) -> Iterator[corral.App]:
    """Registering never touches the database, so one backend is enough here."""
    app = corral.App(f"sqlite:///{tmp_path}/corral.db")
    yield app
    app.close()


def handler(ctx: corral.Context) -> None: ...


def plain(ctx: corral.Context, a: int, b: int, c: int = 3) -> None: ...


def keyword_only(ctx: corral.Context, a: int, *, b: int = 2) -> None: ...


def varargs(ctx: corral.Context, a: int, *rest: int, **more: int) -> None: ...


def positional_only(ctx: corral.Context, a: int, /, b: int = 2) -> None: ...


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1, 2, 3, 4), {}),
    ((), {"a": 1, "b": 2}), ((1,), {"b": 2}), ((1,), {"a": 2}), ((1, 2), {"c": 3}),
    ((1, 2), {"b": 3}), ((1,), {"c": 3}), ((1, 2), {"d": 4}), ((), {"a": 1, "b": 2, "c": 3}),
    ((1,), {"b": 2, "rest": 3}), ((), {"b": 2}),
]  # fmt: skip


@pytest.mark.parametrize("fn", [plain, keyword_only, varargs, positional_only])
def test_a_call_is_accepted_exactly_when_it_binds_to_the_handler(
    local_app: corral.App, fn: Any
) -> None:
    """prepare checks a call's arguments against a plain signature without binding it: it must
    accept and refuse what binding would."""
    task = local_app.task(fn)
    for args, kwargs in CALLS:
        try:
            inspect.signature(fn).bind(None, *args, **kwargs)
            binds = True
        except TypeError:
            binds = False
        if binds:
            assert task.prepare(*args, **kwargs).task.args == json.dumps(list(args)).replace(
                " ", ""
            )
        else:
            with pytest.raises(ConfigError, match=f"bad arguments for task '{fn.__name__}'"):
                task.prepare(*args, **kwargs)


def test_a_prepared_task_has_every_field_of_a_new_task(local_app: corral.App) -> None:
    """prepare builds its NewTask from a dict of every field (model.new_task), not __init__."""
    task = local_app.task(plain, priority=3).prepare(1, 2, group="g", dedup_key="k").task
    assert set(vars(task)) == NEW_TASK_FIELDS
    assert task == NewTask(**vars(task))
    assert (task.group, task.priority, task.level, task.dedup_key) == ("g", 3, 3, "k")


async def async_handler(ctx: corral.Context) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("fn", "options", "message"),
    [
        (handler, {"priority": -1}, "priority must be a whole number from 0 to 2147483647"),
        (handler, {"max_retries": -1}, "max_retries must be a whole number from 0 to 2147483647"),
        (handler, {"max_retries": 2.5}, "max_retries"),
        (handler, {"on_timeout": "explode"}, "on_timeout must be one of"),
        (handler, {"executor": "gpu"}, "executor must be one of"),
        (handler, {"executor": "async"}, "needs an `async def` handler"),
        (async_handler, {"executor": "thread"}, "can't use 'thread'"),
        (handler, {"max_runtime": "10 parsecs"}, "max_runtime must be a duration"),
        (handler, {"max_runtime": "1h30"}, "max_runtime must be a duration"),
        (handler, {"max_runtime": "-5s"}, "max_runtime must be a duration"),
        (handler, {"max_runtime": -5}, "max_runtime must not be negative"),
        (handler, {"max_runtime": 0}, "max_runtime must be > 0"),
        (handler, {"max_runtime": timedelta(0)}, "max_runtime must be > 0"),
        (handler, {"on_timeout": "continue"}, "needs a max_runtime"),
        (handler, {"pool": ""}, "pool must be a non-empty string"),
        (handler, {"aging": "linear"}, "aging must be an ageing function"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_bad_task_options_are_refused_at_registration(
    local_app: corral.App, fn: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        local_app.task(fn, **options)
    assert local_app.tasks == {}
    assert_nothing_written(local_app)


def test_a_task_name_registers_once(local_app: corral.App) -> None:
    local_app.task(handler)
    with pytest.raises(ConfigError, match="'handler' is already registered"):
        local_app.task(handler)


# -- groups --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_parallel": 0}, "max_parallel must be a whole number from 1 to 2147483647"),
        ({"max_parallel": -3}, "max_parallel"),
        ({"max_parallel": 2.5}, "max_parallel"),
        ({"max_parallel": True}, "max_parallel"),
        ({"weight": 0}, "weight must be a finite number > 0"),
        ({"weight": -1.5}, "weight must be a finite number > 0"),
        ({"weight": "heavy"}, "weight"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_bad_group_settings_are_refused(
    app: corral.App, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        app.groups.configure("pipeline", **options)
    assert app.store.group_get("pipeline") is None
    assert_nothing_written(app)


def test_group_needs_a_name(app: corral.App) -> None:
    with pytest.raises(ConfigError, match="group name"):
        app.groups.configure("", max_parallel=2)
    assert app.store.group_list() == []


# -- database URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x", "unknown database URL 'mysql://x'"),
        ("sqlite://relative.db", "bad SQLite URL 'sqlite://relative.db'"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("sqlite:///t.db?journal=off", r"unknown SQLite URL option\(s\) \['journal'\]"),
        ("sqlite:///t.db?busy_timeout=soon", "busy_timeout must be a number"),
        ("sqlite:///t.db?synchronous=sometimes", "unknown SQLite synchronous mode"),
    ],
)
def test_bad_database_urls_are_refused(
    url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseError, match=message):
        open_store(url)
    assert list(tmp_path.iterdir()) == []  # no file was created


def test_database_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(DatabaseError, match=r"folder .*folder does not exist"):
        open_store(f"sqlite:///{missing}/corral.db")
    assert not (tmp_path / "no").exists()


def test_file_that_is_not_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    with pytest.raises(DatabaseError, match=r"notes\.db"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == b"these are my notes, not a database\n" * 100


def test_app_with_a_bad_url_fails_on_first_use_with_a_clear_error() -> None:
    app = corral.App("mysql://db.example.com/corral")  # importing an App touches no database

    @app.task
    def noop(ctx: corral.Context) -> None: ...

    with pytest.raises(DatabaseError, match="unknown database URL"):
        noop.submit()
