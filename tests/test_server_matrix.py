"""Every API endpoint, every kind of caller, every environment, against one real server.

The table :data:`ENDPOINTS` says, for each operation of the OpenAPI document, the role it needs,
whether it belongs to an environment (and only to served ones), and what a permitted call
answers. :func:`expected` turns that into the exact status of every combination, so a change in
who may do what shows up as a failing case, not as a silently wider door. A refused call must
change nothing: the ledger, the versions and the tokens are compared before and after it. And
:func:`test_every_endpoint_is_in_the_matrix` reads ``/openapi.json``, so a new endpoint cannot
slip in without a row here.

State-changing calls are chosen to be harmless and repeatable, so the expectations hold in any
order: a deploy and a rollback of the version that is already live (a recorded no-op), a drill
on staging (it restores the live version itself) and a refused one on the protected production,
an upload of the files of a recorded version, revoking a token made for the purpose, a revert
of a file to what the live version holds already (refused: nothing to change). Change
requests are opened for the version already live (refused: nothing to change), and every step
is taken on a request withdrawn before the server started (refused: it is closed), so what a
role may do is tested without a request ever changing; the flows are in
``tests/test_server_requests.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.record import Record
from tests.conftest import CHECK_OK, Workspace
from tests.serving import Server

CONFIG = f"""
[env.staging]
target = {{ type = "served", path = "../app", keep = 5 }}
bake = "0.3s"
interval = "0.1s"
failures = 2
verify_rounds = 1

[[env.staging.check]]
name = "health-file-ok"
type = "command"
run = '{CHECK_OK}'
timeout = "5s"

[env.production]
target = {{ type = "directory", path = "../live", keep = 5 }}
bake = "0s"
protected = true

[[env.production.check]]
name = "health-file-ok"
type = "command"
run = '{CHECK_OK}'
timeout = "5s"
"""

ROLES = ("none", "unknown", "viewer", "deployer", "deployer@staging", "approver@staging", "admin")
ENVS = ("staging", "production", "nope")  # served, directory, not in lastgood.toml
LIVE = {"staging": "v2", "production": "v1", "nope": "v1"}
RANK = {"viewer": 0, "deployer": 1, "approver": 2, "admin": 3}
# the withdrawn request of each environment (made by the fixture); no request has number 999
REQUEST = {"staging": 1, "production": 2, "nope": 999}
BOTH = ("staging", "production")


class Endpoint(Record):
    """One operation of the API and what it takes to call it."""

    method: str
    path: str  # as in the OpenAPI document
    need: str | None  # the role; None: public (no token)
    per_env: bool = False  # takes an environment: the token's scope applies
    served_only: bool = False  # 404 on an environment that is not served
    ok: int = 200
    refused_on: tuple[str, ...] = ()  # environments where a permitted call is refused (409)


ENDPOINTS = (
    Endpoint("GET", "/api/v1/envs", "viewer"),
    Endpoint("GET", "/api/v1/envs/{env}", "viewer", per_env=True),
    Endpoint("GET", "/api/v1/envs/{env}/history", "viewer", per_env=True),
    Endpoint("GET", "/api/v1/envs/{env}/consumers", "viewer", per_env=True, served_only=True),
    Endpoint(
        "POST", "/api/v1/envs/{env}/consumers", "viewer", per_env=True, served_only=True, ok=204
    ),
    Endpoint("POST", "/api/v1/envs/{env}/deploy", "deployer", per_env=True),
    Endpoint("POST", "/api/v1/envs/{env}/rollback", "deployer", per_env=True),
    Endpoint("GET", "/api/v1/envs/{env}/rollout", "viewer", per_env=True, served_only=True),
    # no rollout is under way on staging: there is none to abort (404, nothing changes)
    Endpoint(
        "POST", "/api/v1/envs/{env}/rollout", "deployer", per_env=True, served_only=True, ok=404
    ),
    # taking health.txt back from the version that is live changes nothing: refused
    Endpoint("POST", "/api/v1/envs/{env}/revert", "deployer", per_env=True, refused_on=BOTH),
    Endpoint("POST", "/api/v1/envs/{env}/check", "deployer", per_env=True),
    # production is protected: a drill there needs override_protection, which we do not send
    Endpoint(
        "POST", "/api/v1/envs/{env}/drill", "deployer", per_env=True, refused_on=("production",)
    ),
    Endpoint("GET", "/api/v1/envs/{env}/config", "viewer", per_env=True, served_only=True),
    Endpoint(
        "GET", "/api/v1/envs/{env}/config/files/{path}", "viewer", per_env=True, served_only=True
    ),
    Endpoint("GET", "/api/v1/envs/{env}/config/stream", "viewer", per_env=True, served_only=True),
    Endpoint("GET", "/api/v1/report", "viewer", per_env=True),  # ?env=
    Endpoint("GET", "/api/v1/versions", "viewer"),
    Endpoint("POST", "/api/v1/versions", "deployer"),
    Endpoint("GET", "/api/v1/versions/{ref}", "viewer"),
    Endpoint("GET", "/api/v1/versions/{ref}/files/{path}", "viewer"),
    Endpoint("GET", "/api/v1/diff", "viewer"),
    Endpoint("POST", "/api/v1/envs/{env}/requests", "deployer", per_env=True, refused_on=BOTH),
    Endpoint("GET", "/api/v1/requests", "viewer", per_env=True),  # ?env=
    # {number} is the environment's withdrawn request: every step on it is refused (409)
    Endpoint("GET", "/api/v1/requests/{number}", "viewer", per_env=True),
    Endpoint(
        "POST", "/api/v1/requests/{number}/approve", "approver", per_env=True, refused_on=BOTH
    ),
    Endpoint("POST", "/api/v1/requests/{number}/reject", "approver", per_env=True, refused_on=BOTH),
    Endpoint("POST", "/api/v1/requests/{number}/update", "deployer", per_env=True, refused_on=BOTH),
    Endpoint(
        "POST", "/api/v1/requests/{number}/withdraw", "deployer", per_env=True, refused_on=BOTH
    ),
    Endpoint("POST", "/api/v1/requests/{number}/apply", "deployer", per_env=True, refused_on=BOTH),
    Endpoint(
        "POST", "/api/v1/requests/{number}/signoff", "approver", per_env=True, refused_on=BOTH
    ),
    Endpoint("GET", "/api/v1/tokens", "admin"),
    Endpoint("POST", "/api/v1/tokens", "admin"),
    Endpoint("DELETE", "/api/v1/tokens/{token_id}", "admin"),
    Endpoint("GET", "/healthz", None),
    Endpoint("GET", "/metrics", None),
)


def expected(endpoint: Endpoint, role: str, env: str | None) -> int:
    """The one status this caller must get from this endpoint on this environment."""
    if endpoint.need is None:
        return endpoint.ok
    if role in ("none", "unknown"):
        return 401  # authentication comes before anything else, the environment included
    if env == "nope":
        return 404
    base, _, scope = role.partition("@")
    if RANK[base] < RANK[endpoint.need] or (endpoint.per_env and scope and scope != env):
        return 403
    if endpoint.served_only and env != "staging":
        return 404
    if env in endpoint.refused_on:
        return 409
    return endpoint.ok


def cases() -> Iterator[Any]:
    for endpoint in ENDPOINTS:
        for role in ROLES:
            for env in ENVS if endpoint.per_env else (None,):
                name = f"{endpoint.method} {endpoint.path} as {role}"
                name += f" on {env}" if env else ""
                yield pytest.param(endpoint, role, env, id=name)


class Matrix:
    """The server, a client per role, and the ids the calls need."""

    def __init__(self, server: Server, clients: dict[str, httpx.Client], victim: int) -> None:
        self.server = server
        self.clients = clients
        self.victim = victim

    def request(self, endpoint: Endpoint, role: str, env: str | None) -> httpx.Response:
        """Make the call; for the event stream, only read until the first event."""
        env = env or "staging"
        url = endpoint.path.format(env=env, ref="v1", path="health.txt", token_id=self.victim,
                                   number=REQUEST[env])  # fmt: skip
        params, body = self._input(endpoint.path, env)
        http = self.clients[role]
        if endpoint.path.endswith("/stream"):
            with http.stream("GET", url, timeout=10) as answer:
                answer.read() if answer.status_code != 200 else next(answer.iter_lines())
                return answer
        return http.request(endpoint.method, url, params=params, json=body)

    def _input(self, path: str, env: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        live = LIVE[env]
        bodies: dict[str, dict[str, Any]] = {
            "/api/v1/envs/{env}/consumers": {"consumer": "matrix-1", "version": 2},
            "/api/v1/envs/{env}/deploy": {"version": live, "message": "matrix"},
            "/api/v1/envs/{env}/rollback": {"to": live, "message": "matrix", "wait_fleet": 0},
            "/api/v1/envs/{env}/drill": {"message": "matrix"},
            "/api/v1/envs/{env}/rollout": {"action": "abort", "message": "matrix"},
            "/api/v1/envs/{env}/revert": {"paths": ["health.txt"], "from": live, "message": "m"},
            "/api/v1/versions": {"files": {"health.txt": {"content": "ok\n"}}, "message": "m"},
            "/api/v1/tokens": {"name": "made-by-matrix", "role": "viewer", "envs": ["staging"]},
            "/api/v1/envs/{env}/requests": {"version": live, "message": "matrix"},
            "/api/v1/requests/{number}/approve": {"message": "matrix"},
            "/api/v1/requests/{number}/reject": {"message": "matrix"},
            "/api/v1/requests/{number}/update": {"version": live, "message": "matrix"},
            "/api/v1/requests/{number}/withdraw": {"message": "matrix"},
            "/api/v1/requests/{number}/signoff": {"message": "matrix"},
        }
        params = {"/api/v1/diff": {"old": "v1", "new": "v2"}, "/api/v1/report": {"env": env},
                  "/api/v1/requests": {"env": env}}  # fmt: skip
        return params.get(path, {}), bodies.get(path)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything a refused call might have changed: ledger, events, versions, tokens,
        change requests and their timelines."""
        admin = self.clients["admin"]
        ledger = [
            admin.get(f"/api/v1/envs/{env}/history", params={"limit": 1000}).json()
            for env in ("staging", "production")
        ]
        versions = admin.get("/api/v1/versions", params={"limit": 1000}).json()
        tokens = admin.get("/api/v1/tokens").json()
        requests = admin.get("/api/v1/requests", params={"limit": 1000}).json()
        return (
            [(r["number"], r["status"], len(r["timeline"])) for r in requests],
            [len(x["deployments"]) for x in ledger],
            [len(x["events"]) for x in ledger],
            [v["number"] for v in versions],
            [(t["id"], t["revoked_at"]) for t in tokens],
        )


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    ws = Workspace(tmp_path_factory.mktemp("matrix"), CONFIG)
    ws.healthy("one")
    for env in ("staging", "production"):
        assert ws.run("deploy", env, "-m", "first").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    for env, other in (("staging", "v1"), ("production", "v2")):  # requests #1 and #2
        assert ws.run("request", env, "--version", other, "-m", "matrix").returncode == 0
    for number in ("1", "2"):
        assert ws.run("request", "withdraw", number).returncode == 0
    server = Server(ws).start()
    secrets_by_role = {
        "viewer": server.token("viewer"),
        "deployer": server.token("deployer"),
        "deployer@staging": server.token("deployer", "staging"),
        "approver@staging": server.token("approver", "staging"),
        "admin": server.token("admin"),
        "unknown": "lg_" + secrets.token_urlsafe(32),
    }
    server.token("viewer", name="victim")
    clients = {role: server.client(secret) for role, secret in secrets_by_role.items()}
    clients["none"] = server.client()
    victim = next(t["id"] for t in clients["admin"].get("/api/v1/tokens").json()
                  if t["name"] == "victim")  # fmt: skip
    try:
        yield Matrix(server, clients, victim)
    finally:
        for http in clients.values():
            http.close()
        server.stop()
        ws.close()
        log = server.log.read_text()
        assert "Traceback" not in log, log
        for secret in secrets_by_role.values():
            assert secret not in log


@pytest.mark.parametrize(("endpoint", "role", "env"), list(cases()))
def test_matrix(matrix: Matrix, endpoint: Endpoint, role: str, env: str | None) -> None:
    want = expected(endpoint, role, env)
    changes = endpoint.method != "GET"
    before = matrix.fingerprint() if changes and want >= 400 else None
    answer = matrix.request(endpoint, role, env)
    assert answer.status_code == want, answer.text
    if want >= 400:
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()
        assert isinstance(error["error"], str) and error["error"], error
        assert error["exit_code"] in (2, 5), error
    if before is not None:
        assert matrix.fingerprint() == before, "a refused call changed something"


def test_every_endpoint_is_in_the_matrix(matrix: Matrix) -> None:
    document = matrix.clients["none"].get("/openapi.json").json()
    served = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    covered = {(e.method, e.path) for e in ENDPOINTS}
    assert served - covered == set(), "endpoints with no row in ENDPOINTS: add them"
    assert covered - served == set(), "rows in ENDPOINTS for endpoints that no longer exist"


def test_a_scoped_token_sees_only_its_environments(matrix: Matrix) -> None:
    scoped = matrix.clients["deployer@staging"]
    assert [e["env"] for e in scoped.get("/api/v1/envs").json()] == ["staging"]
    every = matrix.clients["viewer"].get("/api/v1/envs").json()
    assert [e["env"] for e in every] == ["staging", "production"]
    # the digest of every environment includes one it may not see
    refused = scoped.get("/api/v1/report")
    assert refused.status_code == 403 and "'production'" in refused.json()["error"]


def test_permitted_changes_are_recorded_under_the_token_name(matrix: Matrix) -> None:
    http = matrix.clients["deployer@staging"]
    done = http.post("/api/v1/envs/staging/deploy", json={"version": "v2", "message": "again"})
    assert done.status_code == 200 and done.json()["deployment"]["actor"] == "deployer-staging"
    assert done.json()["deployment"]["status"] == "unchanged"


def test_the_matrix_touches_no_file_it_should_not(matrix: Matrix) -> None:
    live = Path(matrix.server.ws.base / "live" / "current")
    assert (live / "scoring" / "thresholds.yaml").read_text().endswith("marker: one\n")
    config = matrix.clients["viewer"].get("/api/v1/envs/staging/config").json()
    assert config["version"] == 2
