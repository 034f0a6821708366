"""corral web's authentication, on both backends: tokens (hashed, scoped, expiring, revoked),
sessions with CSRF and Origin checks, the install's own secret, the audit log, the security
headers. The route-by-route matrix is tests/test_web_authz.py."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from web_support import BASE, web

import corral
from corral.clock import ManualClock
from corral.errors import ConfigError
from corral.read_model import TaskFilter
from corral.readside import ReadSide
from corral.web import WebSettings
from corral.web.auth import Tokens, split
from corral.web.sessions import COOKIE


@pytest.fixture
def site(app: corral.App) -> Any:
    @app.task
    def noop(ctx: Any) -> None:
        return None

    return web(app)


def _submit(app: corral.App, group: str) -> int:
    return app.task_type("noop").submit(group=group)


def test_every_api_route_but_health_and_sign_in_says_401_without_credentials(site: Any) -> None:
    assert site.client.get("/api/v1/health").json() == {"status": "ok"}
    for method, path in [("GET", "/api/v1/tasks"), ("GET", "/api/v1/tasks/1"),
                         ("POST", "/api/v1/tasks/1/cancel"), ("GET", "/api/v1/openapi.json"),
                         ("GET", "/api/v1/session")]:  # fmt: skip
        response = site.client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_stored_as_a_prefix_and_a_hash_never_the_secret(site: Any) -> None:
    made = site.tokens.create("operator", name="loader", scope=("client-7/*",), expires="30d")
    assert split(made.secret) == made.row.prefix and made.row.prefix.startswith("crl_")
    row = site.app.store.token_by_prefix(made.row.prefix)
    assert row.secret_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    assert made.secret not in repr(site.tokens.list())
    assert row.scope == ("client-7/*",) and row.role == "operator"
    assert row.expires_at == pytest.approx(time.time() + 30 * 86400, abs=60)
    actions = [r.entry.action for r in site.app.store.audit_page(None, 10)]
    assert "token.create" in actions


@pytest.mark.parametrize(
    ("options", "field"),
    [({"role": "root"}, "role"), ({"role": "viewer", "scope": ("a*b",)}, "scope"),
     ({"role": "viewer", "scope": ("*",)}, "scope"), ({"role": "viewer", "expires": "0s"},
     "expires"), ({"role": "viewer", "expires": "soon"}, "expires")],
)  # fmt: skip
def test_a_bad_token_request_names_its_field(site: Any, options: dict[str, Any], field: str
                                             ) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match=field):
        site.tokens.create(**options)
    assert site.tokens.list() == []


def test_a_forged_revoked_or_expired_token_is_refused(site: Any) -> None:
    good = site.token("viewer")
    assert site.client.get("/api/v1/tasks", headers=site.headers("viewer")).status_code == 200
    forged = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    for bad in (forged, "crl_zzzzzzzz_x", "nonsense", good + "x"):
        response = site.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad
    site.client.get("/api/v1/tasks", headers={"Authorization": good})  # no scheme
    assert site.client.get("/api/v1/tasks", headers={"Authorization": good}).status_code == 401
    past = Tokens(site.app.store, ManualClock(time.time() - 100))
    expired = past.create("admin", expires=10).secret
    response = site.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    site.tokens.revoke(split(good) or "")
    assert site.client.get("/api/v1/tasks", headers=site.headers("viewer")).status_code == 401


def test_roles_rank_viewer_operator_admin(site: Any) -> None:
    task_id = _submit(site.app, "g")
    response = site.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=site.headers("viewer"))
    assert response.status_code == 403 and "operator" in response.json()["detail"]
    assert site.app.get(task_id).state == "ready"
    response = site.client.post(f"/api/v1/tasks/{task_id}/cancel",
                                headers=site.headers("operator"))  # fmt: skip
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    entry = site.app.store.audit_page(None, 1)[0].entry
    assert (entry.action, entry.target, entry.changed, entry.role) == (
        "task.cancel",
        f"task:{task_id}",
        1,
        "operator",
    )


def test_a_scoped_token_sees_and_touches_only_its_groups(site: Any) -> None:
    mine = [_submit(site.app, "client-7/loads"), _submit(site.app, "client-7/checks")]
    theirs = [_submit(site.app, "client-70"), _submit(site.app, "client-8/loads")]
    scoped = site.headers("operator", ("client-7/*",))
    listed = site.client.get("/api/v1/tasks", headers=scoped).json()["tasks"]
    assert sorted(t["id"] for t in listed) == sorted(mine)
    by_group = site.client.get("/api/v1/tasks?group=client-70", headers=scoped).json()["tasks"]
    assert by_group == []
    for task_id in theirs:
        assert site.client.get(f"/api/v1/tasks/{task_id}", headers=scoped).status_code == 404
        response = site.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=scoped)
        assert response.status_code == 404
        assert site.app.get(task_id).state == "ready"
    assert site.client.get(f"/api/v1/tasks/{mine[0]}", headers=scoped).status_code == 200
    exact = site.headers("viewer", ("client-70",))
    assert [t["id"] for t in site.client.get("/api/v1/tasks", headers=exact).json()["tasks"]] == [
        theirs[0]
    ]


def test_the_store_scope_takes_a_prefix_literally(app: corral.App) -> None:
    @app.task
    def noop(ctx: Any) -> None:
        return None

    odd = noop.submit(group="a%b_/x")
    noop.submit(group="aXbY/x")
    reads = ReadSide(app.store, app.clock)
    page = reads.tasks(TaskFilter(scope=("a%b_/*",)))
    assert [t.id for t in page.tasks] == [odd]
    with pytest.raises(ConfigError, match="scope"):
        reads.tasks(TaskFilter(scope=("a*b",)))


def test_a_session_needs_its_csrf_token_and_our_origin_for_unsafe_requests(site: Any) -> None:
    task_id = _submit(site.app, "g")
    csrf = site.login("operator")
    assert site.client.cookies.get(COOKIE)
    me = site.client.get("/api/v1/session").json()
    assert me["role"] == "operator" and me["csrf_token"] == csrf
    cancel = f"/api/v1/tasks/{task_id}/cancel"
    refused = [
        {"Origin": BASE},  # no CSRF token
        {"Origin": BASE, "X-CSRF-Token": "0" * 64},  # a wrong one
        {"Origin": "https://evil.example", "X-CSRF-Token": csrf},  # a foreign origin
        {"X-CSRF-Token": csrf},  # no Origin or Referer at all
        {"Referer": "https://evil.example/page", "X-CSRF-Token": csrf},
    ]
    for headers in refused:
        response = site.client.post(cancel, headers=headers)
        assert response.status_code == 403, headers
        assert site.app.get(task_id).state == "ready"
    response = site.client.post(cancel, headers={"Origin": BASE, "X-CSRF-Token": csrf})
    assert response.status_code == 200 and site.app.get(task_id).state == "cancelled"


def test_revoking_a_token_ends_its_sessions(site: Any) -> None:
    site.login("viewer")
    assert site.client.get("/api/v1/tasks").status_code == 200
    site.tokens.revoke(split(site.token("viewer")) or "")
    assert site.client.get("/api/v1/tasks").status_code == 401


def test_sign_in_refuses_a_bad_token_and_another_origin(site: Any) -> None:
    response = site.client.post("/api/v1/session", json={"token": "crl_abcdefgh_nope"})
    assert response.status_code == 401 and response.json()["field"] == "token"
    assert COOKIE not in site.client.cookies
    response = site.client.post("/api/v1/session", json={"token": site.token("viewer")},
                                headers={"Origin": "https://evil.example"})  # fmt: skip
    assert response.status_code == 403 and COOKIE not in site.client.cookies


def test_the_session_cookie_is_httponly_strict_and_secure_under_tls(app: corral.App) -> None:
    plain = web(app)
    response = plain.client.post("/api/v1/session", json={"token": plain.token("viewer")})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    tls = web(app, WebSettings(public_origin="https://corral.example.com"))
    response = tls.client.post("/api/v1/session", json={"token": tls.token("viewer")},
                               headers={"Origin": "https://corral.example.com"})  # fmt: skip
    assert "secure" in response.headers["set-cookie"].lower()


def test_every_web_process_of_an_install_signs_with_the_same_secret(
    app: corral.App, app_url: str, tmp_path: Any
) -> None:
    other_app = corral.App(app_url)  # another process's store on the same database
    try:
        one, two = web(app), web(other_app)
        one.login("viewer")
        two.client.cookies.set(COOKIE, one.client.cookies[COOKIE])
        assert two.client.get("/api/v1/session").status_code == 200
    finally:
        other_app.close()
    elsewhere = corral.App(f"sqlite:///{tmp_path}/another-install.db")
    try:  # another install's secret is its own: the cookie means nothing there
        three = web(elsewhere)
        three.client.cookies.set(COOKIE, one.client.cookies[COOKIE])
        assert three.client.get("/api/v1/session").status_code == 401
    finally:
        elsewhere.close()


def test_every_response_carries_the_security_headers_and_no_cors(site: Any) -> None:
    response = site.client.get("/api/v1/tasks", headers=site.headers("viewer") | {
        "Origin": "https://evil.example"})  # fmt: skip
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in response.headers
    preflight = site.client.options("/api/v1/tasks", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers


def test_errors_are_problem_documents_naming_the_field(site: Any) -> None:
    h = site.headers("viewer")
    for query, field in [("limit=0", "limit"), ("state=bogus", "state"),
                         ("workflow=-1", "workflow"), ("after=garbage", "after")]:  # fmt: skip
        response = site.client.get(f"/api/v1/tasks?{query}", headers=h)
        assert response.status_code == 422, query
        body = response.json()
        assert body["field"] == field and body["status"] == 422, body
    response = site.client.get("/api/v1/tasks/999999", headers=h)
    assert response.status_code == 404 and "999999" in response.json()["detail"]
    response = site.client.get("/api/v1/nowhere", headers=h)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_admin_manages_tokens_over_the_api_and_reads_the_audit_log(site: Any) -> None:
    admin = site.headers("admin")
    made = site.client.post("/api/v1/tokens", headers=admin,
                            json={"role": "viewer", "groups": ["client-7/*"], "expires": "1d",
                                  "name": "client seven"})  # fmt: skip
    assert made.status_code == 201, made.text
    secret, prefix = made.json()["token"], made.json()["details"]["prefix"]
    assert made.json()["details"]["scope"] == ["client-7/*"]
    listed = site.client.get("/api/v1/tokens", headers=admin).json()
    assert prefix in [t["prefix"] for t in listed] and secret not in str(listed)
    viewer = {"Authorization": f"Bearer {secret}"}
    assert site.client.get("/api/v1/tasks", headers=viewer).status_code == 200
    assert site.client.delete(f"/api/v1/tokens/{prefix}", headers=admin).json()["status"] == (
        "revoked"
    )
    assert site.client.get("/api/v1/tasks", headers=viewer).status_code == 401
    bad = site.client.post("/api/v1/tokens", headers=admin, json={"role": "viewer",
                                                                  "groups": ["a*b"]})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["field"] == "groups"
    assert site.client.delete("/api/v1/tokens/crl_nonesuch", headers=admin).status_code == 404
    scoped_admin = site.headers("admin", ("client-7/*",))
    refused = site.client.post("/api/v1/tokens", headers=scoped_admin, json={"role": "admin"})
    assert refused.status_code == 403
    page = site.client.get("/api/v1/audit?limit=2", headers=admin).json()
    assert len(page["entries"]) == 2
    entries = site.client.get("/api/v1/audit?limit=10", headers=admin).json()["entries"]
    revoke = next(e for e in entries if e["action"] == "token.revoke")
    assert (revoke["target"], revoke["changed"]) == (f"token:{prefix}", 1)
    assert page["next"] is not None
    older = site.client.get(f"/api/v1/audit?before={page['next']}", headers=admin).json()
    assert all(e["id"] < page["next"] for e in older["entries"])


def test_the_web_process_serves_the_cluster_metrics_to_an_unscoped_token(site: Any) -> None:
    _submit(site.app, "client-7/loads")
    assert site.client.get("/metrics").status_code == 401
    assert site.client.get("/metrics", headers=site.headers("viewer", ("client-7/*",))
                           ).status_code == 403  # fmt: skip
    response = site.client.get("/metrics", headers=site.headers("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'corral_tasks{pool="default",state="ready"} 1.0' in response.text
