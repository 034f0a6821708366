"""The dashboard's pages over a TestClient, on both backends: sign-in and sign-out, each page
showing what its store holds (and only a scoped token's groups), the live refresh of a page's
body, no inline script or style (the CSP), every action pointing at an /api/v1 route, the live
feed's messages; and the pure parts (the DAG's layout, the backfill's grid)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from markupsafe import escape
from web_server import serve
from web_support import BASE, WebHarness, web

import corral
from corral.lifecycle import State
from corral.model import TaskRecord
from corral.scheduler.why import why
from corral.schedules import spec as timing
from corral.store.contract.schedules import BackfillRow, FireRow
from corral.web.dashboard import graph, grid, live
from corral.web.dashboard.signin import safe_next

PAGE = {"Accept": "text/html"}


@pytest.fixture
def site(app: corral.App) -> WebHarness:
    @app.task
    def noop(ctx: Any) -> None:
        return None

    app.schedules.add("daily", noop, cron="0 2 * * *")
    app.schedules.sync()
    return web(app)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def tags(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


def submit(app: corral.App, group: str = "g1") -> int:
    return app.task_type("noop").submit(group=group)


def test_a_browser_without_a_session_goes_to_the_sign_in_page_and_signs_in(site: WebHarness
                                                                           ) -> None:  # fmt: skip
    client = site.client
    for path in ("/", "/groups", "/tasks", "/tasks/1", "/schedules", "/workers", "/alerts"):
        response = client.get(path, headers=PAGE, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"
    assert client.get("/events/stream").status_code == 401  # not a page: a problem
    filtered = client.get("/tasks?state=dead&type=x", headers=PAGE, follow_redirects=False)
    assert filtered.headers["location"] == "/login?next=/tasks%3Fstate%3Ddead%26type%3Dx"
    page = client.get("/login?next=/groups")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert 'name="next" value="/groups"' in page.text
    bad = client.post("/login", data={"token": "crl_nope", "next": "/groups"},
                      headers={"Origin": BASE})  # fmt: skip
    assert bad.status_code == 401 and "unknown, revoked or expired" in bad.text
    assert client.get("/groups", headers=PAGE, follow_redirects=False).status_code == 303
    good = client.post("/login", data={"token": site.token("viewer"), "next": "/groups"},
                       headers={"Origin": BASE}, follow_redirects=False)  # fmt: skip
    assert good.status_code == 303 and good.headers["location"] == "/groups"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/groups").status_code == 200
    actions = [r.entry.action for r in site.app.store.audit_page(None, 10)]
    assert "session.create" in actions


def test_sign_in_from_another_origin_is_refused(site: WebHarness) -> None:
    response = site.client.post("/login", data={"token": site.token("viewer")},
                                headers={"Origin": "https://evil.example"})  # fmt: skip
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_sign_in_goes_back_to_this_site_only() -> None:
    assert safe_next("/tasks?state=dead") == "/tasks?state=dead"
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "", None):
        assert safe_next(target) == "/"


def test_sign_out_needs_the_csrf_token(site: WebHarness) -> None:
    csrf = site.login("viewer")
    refused = site.client.post("/logout", headers={"Origin": BASE}, follow_redirects=False)
    assert refused.status_code == 403
    done = site.client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": BASE},
                            follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/login"
    site.client.cookies.clear()  # what the browser does with the expired cookie
    assert site.client.get("/", headers=PAGE, follow_redirects=False).status_code == 303


def test_every_page_has_no_inline_script_or_style_and_acts_only_through_the_api(
    site: WebHarness,
) -> None:
    app = site.app
    task = submit(app)
    wf = app.workflow("wf", group="g1")
    first = wf.add("noop")
    wf.add("noop", after=[first])
    workflow_id = wf.submit()
    backfill = app.backfill("daily", start="2026-11-01", end="2026-11-03")
    csrf = site.login("operator")
    paths = ["/", "/groups", "/tasks", f"/tasks/{task}", f"/workflows/{workflow_id}", "/schedules",
             f"/backfills/{backfill.id}", "/workers", "/alerts", "/login"]  # fmt: skip
    for path in paths:
        response = site.client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "script-src 'self'" in response.headers["content-security-policy"]
        parsed = tags(response.text)
        assert not parsed.script_text, path
        for tag, attrs in parsed.tags:
            assert "style" not in attrs, (path, tag)
            assert not [a for a in attrs if a.startswith("on")], (path, tag, attrs)
            assert not [a for a in attrs if a.startswith("hx-on")], (path, tag, attrs)
            if tag == "script":
                assert str(attrs["src"]).startswith("/static/"), path
            if tag == "style":
                raise AssertionError(f"{path}: a <style> element")
            for verb in ("hx-post", "hx-put", "hx-delete", "hx-patch"):
                if verb in attrs:
                    assert str(attrs[verb]).startswith("/api/v1/"), (path, attrs)
            if tag == "form" and (attrs.get("method") or "get").lower() == "post":
                assert attrs["action"] in ("/login", "/logout"), (path, attrs)
        if path != "/login":
            body = next(a for t, a in parsed.tags if t == "body")
            assert json.loads(str(body["hx-headers"])) == {"X-CSRF-Token": csrf}
            assert re.fullmatch(r"/events/stream\?after=\d+", str(body["sse-connect"]))
    for name in ("htmx.min.js", "ext/sse.js", "dashboard.js", "corral.css"):
        assert site.client.get(f"/static/{name}").status_code == 200, name


def test_the_live_refresh_answers_the_body_alone(site: WebHarness) -> None:
    task = submit(site.app)
    site.login("viewer")
    full = site.client.get("/tasks")
    body = site.client.get("/tasks", headers={"HX-Request": "true"})
    assert "<html" in full.text and 'hx-trigger="sse:task delay:300ms"' in full.text
    assert "<html" not in body.text and f'data-task="{task}"' in body.text
    detail = site.client.get(f"/tasks/{task}")
    assert f'hx-trigger="sse:task-{task} delay:200ms"' in detail.text


def test_the_task_list_filters_pages_and_names_a_bad_filter(site: WebHarness) -> None:
    app = site.app
    ones = [submit(app, "g1") for _ in range(3)]
    twos = [submit(app, "g2") for _ in range(2)]
    app.cancel(ones[0])
    site.login("viewer")

    def shown(query: str) -> list[int]:
        text = site.client.get(f"/tasks?{query}").text
        return [int(i) for i in re.findall(r'data-task="(\d+)"', text)]

    assert shown("") == sorted(ones + twos, reverse=True)
    assert shown("group=g2") == twos[::-1]
    assert shown("state=cancelled") == [ones[0]]
    assert shown("state=ready&group=g1") == ones[:0:-1]
    assert shown("type=other") == []
    bad = site.client.get("/tasks?state=bogus")
    assert bad.status_code == 422 and "states: unknown state &#39;bogus&#39;" in bad.text


def test_the_task_list_pages_by_keyset(site: WebHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.web.dashboard import tasks as task_pages

    monkeypatch.setattr(task_pages, "PAGE", 2)
    ids = [submit(site.app) for _ in range(5)]
    site.login("viewer")
    seen: list[int] = []
    url = "/tasks?group=g1"
    while url:
        text = site.client.get(url).text
        seen += [int(i) for i in re.findall(r'data-task="(\d+)"', text)]
        found = re.search(r'id="next-page" href="([^"]+)"', text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == ids[::-1]


def test_a_task_page_shows_its_attempts_logs_events_and_why(site: WebHarness) -> None:
    app = site.app
    task = submit(app)
    site.login("operator")
    text = site.client.get(f"/tasks/{task}").text
    assert 'data-state="ready"' in text
    _, reasons = why(app.store, task, app.clock.now())
    assert reasons and all(f"<code>{r.code}</code> {escape(r.text)}" in text for r in reasons)
    events = app.store.event_list(task)
    assert events and all(f'<td class="num">{e.id}</td>' in text for e in events)
    assert f'hx-post="/api/v1/tasks/{task}/cancel"' in text
    assert f'hx-post="/api/v1/tasks/{task}/retry"' not in text  # a ready task is not retried
    app.cancel(task)
    text = site.client.get(f"/tasks/{task}").text
    assert 'data-state="cancelled"' in text and "<code>ended</code>" in text
    assert f'hx-post="/api/v1/tasks/{task}/retry"' in text
    assert "cancel-task" not in text


def test_a_viewer_gets_no_buttons(site: WebHarness) -> None:
    task = submit(site.app)
    site.login("viewer")
    for path in (f"/tasks/{task}", "/tasks", "/schedules"):
        text = site.client.get(path).text
        assert "hx-post" not in text, path


def test_a_scoped_token_sees_its_groups_only(site: WebHarness) -> None:
    app = site.app
    mine, theirs = submit(app, "client-7/loads"), submit(app, "client-8/loads")
    app.schedules.add("hourly-7", app.task_type("noop"), every="1h", group="client-7/loads")
    app.schedules.sync()
    own = app.backfill("hourly-7", start="2026-11-01T00:00", end="2026-11-01T02:00")
    other = app.backfill("daily", start="2026-11-01", end="2026-11-02")  # the default group's
    wf = app.workflow("wf", group="client-8/loads")
    wf.add("noop")
    other_workflow = wf.submit()
    site.login("viewer", scope=("client-7/*",))
    listed = site.client.get("/tasks").text
    assert f'data-task="{mine}"' in listed and f'data-task="{theirs}"' not in listed
    assert site.client.get(f"/tasks/{mine}").status_code == 200
    assert site.client.get(f"/tasks/{theirs}").status_code == 404
    assert site.client.get(f"/workflows/{other_workflow}").status_code == 404
    groups = site.client.get("/groups").text
    assert 'data-group="client-7/loads"' in groups and "client-8" not in groups
    for path in ("/workers", "/alerts"):
        text = site.client.get(path).text
        assert "a token scoped to groups" in text, path
    schedules = site.client.get("/schedules").text
    assert 'data-schedule="hourly-7"' in schedules and 'data-schedule="daily"' not in schedules
    assert f'href="/backfills/{own.id}"' in schedules
    assert f'href="/backfills/{other.id}"' not in schedules
    assert site.client.get(f"/backfills/{own.id}").status_code == 200
    assert site.client.get(f"/backfills/{other.id}").status_code == 404
    overview = site.client.get("/").text
    assert "client-8" not in overview and 'id="pools"' not in overview


def test_the_groups_page_shows_shares_caps_and_waits(site: WebHarness) -> None:
    app = site.app
    app.groups.configure("g1", max_parallel=3, weight=2)
    for group in ("g1", "g1", "g2"):
        submit(app, group)
    site.login("viewer")
    text = site.client.get("/groups").text
    row = re.search(r'<tr data-group="g1">(.*?)</tr>', text, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[1] == "2.0" and cells[4] == "3"  # weight, cap
    assert "67%" in cells[2]  # entitled: weight 2 of 3, both groups have ready tasks
    assert cells[8] == "2"  # ready


def test_the_overview_counts_what_ended_in_the_window(site: WebHarness, services: Any) -> None:
    app = site.app
    ids = [submit(app) for _ in range(3)]
    services(app)
    for task in ids:
        app.wait(task, timeout=20)
    site.login("viewer")
    text = site.client.get("/").text
    assert '<div class="value" id="succeeded">3</div>' in text
    assert re.search(r"<td>default</td><td class=\"num\">1</td>", text)  # the worker's pool


def test_a_workflow_page_draws_its_dag_coloured_by_state(site: WebHarness) -> None:
    app = site.app
    wf = app.workflow("nightly", group="g1")
    head = wf.add("noop")
    loads = [wf.add("noop", after=[head]) for _ in range(2)]
    wf.add("noop", after=loads)
    workflow_id = wf.submit()
    assert wf.ids is not None
    site.login("viewer")
    text = site.client.get(f"/workflows/{workflow_id}").text
    nodes = re.findall(r'<g data-task="(\d+)" data-state="(\w+)">', text)
    assert sorted(int(i) for i, _ in nodes) == sorted(wf.ids)
    states = dict((int(i), s) for i, s in nodes)
    assert states[wf.ids[0]] == "ready" and states[wf.ids[3]] == "waiting"
    assert len(re.findall(r'marker-end="url\(#arrow\)"', text)) == 4
    assert 'id="cancel-workflow"' not in text  # a viewer
    assert site.client.get(f"/workflows/{workflow_id + 1}").status_code == 404
    site.login("operator")
    text = site.client.get(f"/workflows/{workflow_id}").text
    assert f'hx-post="/api/v1/workflows/{workflow_id}/cancel"' in text


def test_the_schedules_and_backfill_pages(site: WebHarness) -> None:
    app = site.app
    made = app.backfill("daily", start="2026-11-01", end="2026-11-04")
    site.login("operator")
    text = site.client.get("/schedules").text
    assert 'data-schedule="daily"' in text and "cron 0 2 * * *" in text
    assert 'hx-post="/api/v1/schedules/daily/pause"' in text
    assert 'hx-post="/api/v1/backfills"' in text and f'href="/backfills/{made.id}"' in text
    page = site.client.get(f"/backfills/{made.id}").text
    cells = re.findall(r'data-cell="(\w+)"', page)
    assert cells == ["pending"] * made.total == ["pending"] * 4
    assert f'hx-post="/api/v1/backfills/{made.id}/cancel"' in page
    assert site.client.get(f"/backfills/{made.id + 1}").status_code == 404


# -- the live feed ---------------------------------------------------------------------------------


class Visitor:
    """A stand-in for the request: it goes away after `polls` checks."""

    def __init__(self, polls: int) -> None:
        self.polls = polls

    async def is_disconnected(self) -> bool:
        self.polls -= 1
        return self.polls < 0


def feed(site: WebHarness, scope: tuple[str, ...], cursor: int, polls: int) -> list[str]:
    state = site.client.app.state.web  # type: ignore[attr-defined]
    principal = site.tokens.authenticate(site.token("viewer", scope))
    assert principal is not None

    async def collect() -> list[str]:
        got = live.feed(Visitor(polls), state, principal, cursor, 0.01)  # type: ignore[arg-type]
        return [m async for m in got]

    return asyncio.run(collect())


def test_the_live_feed_sends_what_changed_and_stops_when_the_client_leaves(
    site: WebHarness,
) -> None:
    app = site.app
    reads = site.client.app.state.web.reads  # type: ignore[attr-defined]
    head = reads.event_head()
    mine, theirs = submit(app, "client-7/a"), submit(app, "client-8/a")
    messages = feed(site, (), head, polls=3)
    assert messages[0].startswith("retry:")
    last = reads.event_head()
    assert f"id: {last}\nevent: task\ndata: 2\n\n" in messages
    assert f"event: task-{mine}\ndata: {mine}\n\n" in messages
    assert f"event: task-{theirs}\ndata: {theirs}\n\n" in messages
    scoped = feed(site, ("client-7/*",), head, polls=3)
    assert f"event: task-{mine}\ndata: {mine}\n\n" in scoped
    assert not [m for m in scoped if f"task-{theirs}" in m]
    assert f"id: {last}\nevent: task\ndata: 1\n\n" in scoped
    nothing = feed(site, (), last, polls=2)
    assert nothing == ["retry: 2000\n\n"]  # the client left: the stream ended


def test_the_live_feed_ends_when_the_browser_goes_away(site: WebHarness) -> None:
    with serve(site.app) as served:
        headers = site.headers("viewer") | {"Accept": "text/event-stream"}
        with (
            httpx.Client(base_url=served.base, timeout=10) as client,
            client.stream("GET", "/events/stream", headers=headers) as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_text()
            assert next(chunks).startswith("retry:")
            assert served.open_requests() == 1  # the stream stays open
            submit(site.app)
            seen = ""
            for chunk in chunks:
                seen += chunk
                if "event: task\n" in seen:
                    break
        deadline = time.monotonic() + 5
        while served.open_requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.open_requests() == 0  # gone with its client, long before MAX_AGE


def test_the_stream_route_needs_a_session_and_is_an_event_stream(site: WebHarness) -> None:
    assert site.client.get("/events/stream?after=0").status_code == 401
    assert site.client.get("/events/stream?after=-1",
                           headers=site.headers("viewer")).status_code == 422  # fmt: skip


# -- pure parts ------------------------------------------------------------------------------------


def record(task_id: int, state: str = "ready") -> TaskRecord:
    return TaskRecord(
        id=task_id, name="job", pool="default", group="g", state=State(state), priority=0,
        level=0, args="[]", kwargs="{}", dedup_key=None, attempt=0, failures=0, max_retries=0,
        max_runtime=None, on_timeout="retry", created_at=0.0, enqueued_at=0.0, run_at=None,
        ready_at=None, first_started_at=None, started_at=None, finished_at=None,
        worker_id=None, cancel_requested=False, checkpoint=None, shared=None, result=None,
        error=None, rank=0, exclusive=False, rate_key=None,
    )  # fmt: skip


def test_the_dag_is_layered_by_longest_chain() -> None:
    # 1 -> 2 -> 4, 1 -> 3 -> 4, 1 -> 4, 5 alone
    edges = [(2, 1), (3, 1), (4, 2), (4, 3), (4, 1)]
    assert graph.depths([1, 2, 3, 4, 5], edges) == {1: 0, 2: 1, 3: 1, 4: 2, 5: 0}
    drawn = graph.layout([record(i) for i in range(1, 6)], edges)
    at = {n.id: n for n in drawn.nodes}
    assert at[1].x == at[5].x < at[2].x == at[3].x < at[4].x
    assert at[2].y != at[3].y and len(drawn.edges) == 5
    assert all(e.x1 < e.x2 for e in drawn.edges)  # every edge runs left to right
    assert drawn.width >= at[4].x + graph.NODE_W
    assert drawn.height >= max(n.y for n in drawn.nodes) + graph.NODE_H
    # an edge to a task not shown is left out; a cycle (never stored) leaves depth 0
    assert graph.depths([1, 2], [(2, 1), (3, 2), (1, 2)]) == {1: 0, 2: 0}
    assert graph.layout([], []).nodes == []


def test_the_dag_orders_a_layer_by_its_dependencies() -> None:
    # roots 1 and 2; 3 depends on 2, 4 on 1: 4 is drawn beside 1, 3 beside 2
    drawn = graph.layout([record(i) for i in range(1, 5)], [(3, 2), (4, 1)])
    at = {n.id: n for n in drawn.nodes}
    assert at[4].y == at[1].y and at[3].y == at[2].y


def test_the_backfill_grid_cells() -> None:
    spec = timing.parse(cron="0 2 * * *", every=None, tz="UTC")
    day = 86400
    start = 1_764_554_400  # 2025-12-01 02:00 UTC
    row = BackfillRow(1, "daily", start, start + 4 * day, "none", True, "bf", "running",
                      start + 2 * day, 5, 3, 0.0, 0.0)  # fmt: skip
    times = grid.planned(spec, row)
    assert times == [start + i * day for i in range(5)]

    def fire(t: int, ids: list[int]) -> FireRow:
        return FireRow("daily", float(t), None, "backfill", "fired", None, ids, None, 1, 1, 0.0)

    fires = [fire(times[0], [1]), fire(times[1], [2])]
    states = {1: State.SUCCEEDED, 2: State.RUNNING}
    cells = grid.cells(spec, row, times, fires, states)
    assert [c.outcome for c in cells] == ["done", "running", "left", "pending", "pending"]
    assert cells[0].task_ids == (1,) and cells[2].task_ids == ()
    assert cells[0].local.hour == 2
    counts = grid.tally(cells)
    assert (counts["done"], counts["pending"], counts["failed"]) == (1, 2, 0)
    dead = grid.cells(spec, row, times[:1], [fire(times[0], [1])], {1: State.DEAD})
    assert dead[0].outcome == "failed"
    backwards = BackfillRow(2, "daily", start, start + 4 * day, "none", False, "bf", "running",
                            start + 3 * day, 5, 2, 0.0, 0.0)  # fmt: skip
    back = grid.cells(spec, backwards, grid.planned(spec, backwards), [], {})
    assert [c.outcome for c in back] == ["left", "left", "pending", "pending", "pending"]


def test_the_groups_page_lists_the_busiest_and_finds_the_rest_by_name(
    site: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.web.dashboard import cluster

    monkeypatch.setattr(cluster, "GROUPS_SHOWN", 2)
    app = site.app
    for group, n in (("quiet", 1), ("busy", 3), ("middling", 2)):
        for _ in range(n):
            submit(app, group)
    site.login("viewer")

    def listed(query: str = "") -> list[str]:
        return re.findall(r'<tr data-group="([^"]+)">', site.client.get(f"/groups{query}").text)

    assert listed() == ["busy", "middling"]
    assert listed("?name=qui") == ["quiet"]
    assert "2 shown, the busiest first" in site.client.get("/groups").text  # the bounded read
    assert "1 shown of 1 matching (3 in all)" in site.client.get("/groups?name=qui").text


def test_the_stream_route_gives_a_client_that_is_no_browser_one_read(site: WebHarness) -> None:
    reads = site.client.app.state.web.reads  # type: ignore[attr-defined]
    head = reads.event_head()
    task = submit(site.app)
    response = site.client.get(f"/events/stream?after={head}", headers=site.headers("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert f"event: task-{task}\ndata: {task}\n\n" in response.text
    again = site.client.get("/events/stream", headers=site.headers("viewer")).text
    assert again == "retry: 2000\n\n"  # from the head now: nothing new
    resume = site.headers("viewer") | {"Last-Event-ID": str(head)}
    resumed = site.client.get("/events/stream", headers=resume)
    assert f"event: task-{task}\n" in resumed.text


def test_the_sign_in_form_without_a_token_says_so(site: WebHarness) -> None:
    response = site.client.post("/login", data={"token": " "}, headers={"Origin": BASE})
    assert response.status_code == 422 and "Enter an API token." in response.text


def test_every_button_is_an_api_route_that_takes_the_session_and_its_csrf_token(
    site: WebHarness,
) -> None:
    app = site.app
    waiting = app.task_type("noop").submit(group="g1", delay=3600)
    dead = submit(app)
    app.cancel(dead)
    wf = app.workflow("wf", group="g1")
    wf.add("noop")
    workflow_id = wf.submit()
    backfill = app.backfill("daily", start="2026-11-01", end="2026-11-02")
    csrf = site.login("operator")
    pages = ["/tasks?state=cancelled", f"/tasks/{waiting}", f"/tasks/{dead}",
             f"/workflows/{workflow_id}", "/schedules", f"/backfills/{backfill.id}"]  # fmt: skip
    buttons: list[tuple[str, str]] = []
    for path in pages:
        for _, attrs in tags(site.client.get(path).text).tags:
            if "hx-post" in attrs:
                json_body = attrs.get("hx-ext") == "corral-json"
                buttons.append((str(attrs["hx-post"]), "json" if json_body else "form"))
    targets = {url for url, _ in buttons}
    assert {f"/api/v1/tasks/{waiting}/cancel", f"/api/v1/tasks/{dead}/retry",
            f"/api/v1/workflows/{workflow_id}/cancel", "/api/v1/schedules/daily/pause",
            "/api/v1/schedules/daily/trigger", "/api/v1/backfills",
            f"/api/v1/backfills/{backfill.id}/cancel", "/api/v1/tasks/bulk/retry",
            "/api/v1/tasks/bulk/cancel"} <= targets  # fmt: skip
    headers = {"Origin": BASE, "X-CSRF-Token": csrf, "HX-Request": "true"}
    for url, kind in sorted(set(buttons)):
        if kind == "json":  # the forms: the API names what the empty form lacks
            response = site.client.post(url, json={}, headers=headers)
            assert response.status_code in (200, 201, 409, 422), (url, response.text)
            continue
        response = site.client.post(url, headers=headers)
        ok = 200 <= response.status_code < 300 or response.status_code == 409  # 409: it ended
        assert ok, (url, response.status_code, response.text)
    assert app.get(waiting).state == State.CANCELLED
    assert app.schedules.get("daily").row.paused


def test_the_groups_page_pauses_and_resumes_for_an_operator(site: WebHarness) -> None:
    app = site.app
    submit(app, "crm")
    site.login("viewer")
    assert "/api/v1/paused-groups/crm" not in site.client.get("/groups").text  # a viewer can't
    csrf = site.login("operator")
    text = site.client.get("/groups").text
    row = re.search(r'<tr data-group="crm">(.*?)</tr>', text, re.S)
    assert row is not None and 'hx-put="/api/v1/paused-groups/crm"' in row.group(1)
    # the button's request: the session cookie, the page's CSRF header, no body
    forged = site.client.put("/api/v1/paused-groups/crm", headers={"Origin": BASE})
    assert forged.status_code == 403 and app.groups.paused() == []
    done = site.client.put("/api/v1/paused-groups/crm",
                           headers={"X-CSRF-Token": csrf, "Origin": BASE})  # fmt: skip
    assert done.status_code == 200, done.text
    row = re.search(r'<tr data-group="crm">(.*?)</tr>', site.client.get("/groups").text, re.S)
    assert row is not None and ">paused</strong>" in row.group(1)
    assert 'hx-delete="/api/v1/paused-groups/crm"' in row.group(1)
