"""The dashboard in a real browser: Debian's Chromium driven by Selenium (chromedriver), against
a real uvicorn server on 127.0.0.1 and a real corral scheduler and worker (conftest `services`),
on SQLite. Nothing downloads a browser: without /usr/bin/chromium and /usr/bin/chromedriver the
module is skipped, naming the packages to install.

Each test watches the page change by itself (the live feed over SSE, htmx refreshing the body),
and checks the page was never reloaded (a marker set in the window survives) and that the
browser reported no Content-Security-Policy violation and no script error."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    why = (f"the browser tests need {CHROMIUM} and {CHROMEDRIVER}: "
           "apt-get install chromium chromium-driver")  # fmt: skip
    if os.environ.get("CORRAL_REQUIRE_BROWSER") == "1":  # set by CI: there they must run
        pytest.fail(f"CORRAL_REQUIRE_BROWSER=1 but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from web_server import serve  # noqa: E402

import corral  # noqa: E402
from corral.lifecycle import State  # noqa: E402
from corral.web import create_app  # noqa: E402
from corral.web.auth import Tokens  # noqa: E402

WAIT = 30.0


@dataclass
class Site:
    app: corral.App
    base: str
    driver: WebDriver
    gate: threading.Event
    failed_once: set[int]

    def token(self, role: str) -> str:
        return Tokens(self.app.store, self.app.clock).create(role).secret

    def wait(self, predicate: Callable[[WebDriver], Any], what: str) -> Any:
        # htmx swaps the body under the test's feet: an element found a moment ago may be gone
        patient = WebDriverWait(self.driver, WAIT, poll_frequency=0.1,
                                ignored_exceptions=[StaleElementReferenceException])  # fmt: skip
        return patient.until(predicate, what)

    def sign_in(self, path: str, role: str = "operator") -> None:
        self.driver.get(self.base + path)
        self.wait(lambda d: "/login" in d.current_url, "the sign-in page")
        self.driver.find_element(By.ID, "token").send_keys(self.token(role))
        self.driver.find_element(By.ID, "sign-in").click()
        self.wait(lambda d: d.current_url == self.base + path, f"back at {path}")
        self.mark()

    def mark(self) -> None:
        """Set a marker in the window: a reload would lose it."""
        self.driver.execute_script("window.corralMarker = 'kept';")

    def not_reloaded(self) -> None:
        assert self.driver.execute_script("return window.corralMarker;") == "kept"

    def attribute(self, element_id: str, name: str) -> str | None:
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].get_attribute(name) if found else None

    def visible(self, element_id: str) -> Any:
        def shown(d: WebDriver) -> Any:
            found = d.find_elements(By.ID, element_id)
            return found[0] if found and found[0].is_displayed() else False

        return self.wait(shown, f"#{element_id} shown")

    def accept_confirm(self) -> None:
        alert = self.wait(lambda d: _alert(d), "the confirm dialog")
        alert.accept()

    def no_csp_violation(self) -> None:
        """No Content-Security-Policy violation and no uncaught script error in the console."""
        logs = [str(e.get("message", "")) for e in self.driver.get_log("browser")]
        bad = [m for m in logs if "Content Security Policy" in m or "Uncaught" in m]
        assert not bad, bad


def _alert(driver: WebDriver) -> Any:
    try:
        return driver.switch_to.alert
    except Exception:
        return False


def browser() -> WebDriver:
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def site(tmp_path: Any) -> Iterator[Site]:
    app = corral.App(f"sqlite:///{tmp_path}/browser.db")
    gate = threading.Event()
    failed_once: set[int] = set()

    @app.task
    def gated(ctx: corral.Context) -> str:
        while not gate.wait(0.05):
            ctx.raise_if_cancelled()
        return "through"

    @app.task(max_retries=0)
    def flaky(ctx: corral.Context) -> str:
        if ctx.task_id not in failed_once:
            failed_once.add(ctx.task_id)
            raise RuntimeError("the first attempt fails")
        return "second time lucky"

    @app.task
    def load_day(ctx: corral.Context) -> None:
        return None

    app.schedules.add("daily", load_day, cron="0 2 * * *")
    app.schedules.sync()
    try:
        with serve(app) as served:
            driver = browser()
            try:
                yield Site(app, served.base, driver, gate, failed_once)
            finally:
                gate.set()
                driver.quit()  # first: its live feed ends, so the server stops at once
    finally:
        app.close()


def served(site: Site, path: str) -> bool:
    """Whether the web app's API has a POST `path` (its OpenAPI schema lists it)."""
    paths = create_app(site.app).openapi()["paths"]
    return "post" in paths.get(path, {})


def test_sign_in_and_watch_a_task_go_from_ready_to_succeeded_live(site: Site, services: Any
                                                                  ) -> None:  # fmt: skip
    task = site.app.task_type("gated").submit(group="g1")
    site.sign_in(f"/tasks/{task}")
    assert site.attribute("task-state", "data-state") == "ready"
    services(site.app)
    site.wait(lambda d: site.attribute("task-state", "data-state") == "running", "running")
    site.gate.set()
    site.wait(lambda d: site.attribute("task-state", "data-state") == "succeeded", "succeeded")
    assert site.app.get(task).state == State.SUCCEEDED
    site.not_reloaded()
    site.no_csp_violation()


def test_cancel_a_task_from_its_page(site: Site, services: Any) -> None:
    services(site.app)
    task = site.app.task_type("gated").submit(group="g1", delay=3600)
    site.sign_in(f"/tasks/{task}")
    assert site.attribute("task-state", "data-state") == "waiting"
    site.driver.find_element(By.ID, "cancel-task").click()
    site.accept_confirm()
    done = site.visible("task-done")
    assert "cancelled" in done.text
    site.wait(lambda d: site.attribute("task-state", "data-state") == "cancelled", "cancelled")
    assert site.app.get(task).state == State.CANCELLED
    site.not_reloaded()
    site.no_csp_violation()


def test_a_bulk_retry_by_filter_with_its_preview(site: Site, services: Any) -> None:
    assert served(site, "/api/v1/tasks/bulk/retry")
    services(site.app)
    ids = [site.app.task_type("flaky").submit(group="g1") for _ in range(3)]
    for task in ids:
        site.app.wait(task, timeout=WAIT)
    assert {site.app.get(t).state for t in ids} == {State.DEAD}
    site.sign_in("/tasks?state=dead&type=flaky")
    rows = site.driver.find_elements(By.CSS_SELECTOR, "#tasks tr[data-task]")
    assert sorted(int(str(r.get_attribute("data-task"))) for r in rows) == sorted(ids)
    site.driver.find_element(By.CSS_SELECTOR, "#bulk summary").click()
    site.driver.find_element(By.CSS_SELECTOR, "#bulk-retry-preview button").click()
    site.visible("bulk-retry-confirm")
    assert site.driver.find_element(By.ID, "bulk-retry-count").text == "3"
    assert site.app.get(ids[0]).state == State.DEAD  # a preview changes nothing
    site.driver.find_element(By.ID, "bulk-retry-go").click()
    done = site.visible("bulk-retry-done")
    assert done.text.startswith("Done: 3 changed")
    for task in ids:
        site.app.wait(task, timeout=WAIT)
    assert {site.app.get(t).state for t in ids} == {State.SUCCEEDED}
    site.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#tasks tr[data-task]"),
              "the dead tasks gone from the list")  # fmt: skip
    site.not_reloaded()
    site.no_csp_violation()


def test_start_a_backfill_and_watch_its_grid_fill(site: Site, services: Any) -> None:
    if not served(site, "/api/v1/backfills"):
        pytest.skip("POST /api/v1/backfills is not served yet (the API's backfills)")
    services(site.app)
    site.sign_in("/schedules")
    site.driver.find_element(By.CSS_SELECTOR, "#start-backfill summary").click()
    site.driver.find_element(By.ID, "backfill-start").send_keys("2026-11-01")
    site.driver.find_element(By.ID, "backfill-end").send_keys("2026-11-05")
    site.driver.find_element(By.ID, "backfill-go").click()
    site.accept_confirm()
    site.visible("backfill-started")
    site.driver.find_element(By.ID, "backfill-link").click()
    site.wait(lambda d: "/backfills/" in d.current_url, "the backfill's page")
    site.mark()

    def outcomes(d: WebDriver) -> list[str]:
        cells = d.find_elements(By.CSS_SELECTOR, "#backfill-grid [data-cell]")
        return [str(c.get_attribute("data-cell")) for c in cells]

    site.wait(lambda d: outcomes(d) == ["done"] * 5, "five done cells")
    assert "5/5 done" in site.driver.find_element(By.ID, "backfill-progress").text
    site.not_reloaded()
    site.no_csp_violation()


def test_a_refused_action_shows_the_problem_the_api_answered(site: Site) -> None:
    site.sign_in("/tasks?state=dead")  # nothing is dead: a bulk retry matches nothing
    site.driver.find_element(By.CSS_SELECTOR, "#bulk summary").click()
    site.driver.find_element(By.CSS_SELECTOR, "#bulk-retry-preview button").click()
    problem = site.visible("bulk-problem")
    assert problem.text == "the filter matches no task that can be retried"
    assert not site.driver.find_element(By.ID, "bulk-retry-confirm").is_displayed()
    site.not_reloaded()
    site.no_csp_violation()
