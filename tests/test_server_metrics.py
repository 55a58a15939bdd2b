"""``/metrics`` and ``/healthz`` of a real ``lastgood serve``.

The exposition is parsed with prometheus_client's own parser, so a malformed line fails here
just as it would fail a scrape, and every value is checked against what happened: deploys (one
through the CLI, which the server never saw), an automatic rollback, a rollback through the API,
and consumers reporting over the config endpoint. ``/healthz`` must say 503 with a JSON error
when the store is gone: a PostgreSQL database dropped under the running server.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PG_ADMIN, Workspace
from tests.serving import Server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) → value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def consumer(http: httpx.Client, name: str, serving: str) -> None:
    headers = {"X-Lastgood-Consumer": name, "X-Lastgood-Serving": serving}
    assert http.get("/api/v1/envs/staging/config", headers=headers).status_code == 200


def test_metrics_count_what_happened(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = workspace(target="served")
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    server = serve(ws)
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0  # outside the server
    ws.broken()
    assert ws.run("deploy", "staging", "-m", "bad").returncode == 3  # rolled back by itself
    with server.client(server.token("deployer")) as http:
        done = http.post("/api/v1/envs/staging/rollback",
                         json={"to": "v1", "message": "back", "wait_fleet": 0})  # fmt: skip
        assert done.status_code == 200 and done.json()["version"] == 1, done.text
        consumer(http, "a", "1:x")
        consumer(http, "b", "1:x")
        consumer(http, "c", "2:y")
        consumer(http, "d", "none")
        history = http.get("/api/v1/envs/staging/history", params={"limit": 100}).json()
        scrape = httpx.get(f"{server.url}/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    got = samples(scrape.text)
    kinds = {(d["kind"], d["status"]) for d in history["deployments"]}
    assert kinds == {("deploy", "succeeded"), ("deploy", "failed-restored"),
                     ("auto-rollback", "succeeded"), ("rollback", "succeeded")}  # fmt: skip
    env = ("env", "staging")
    deployments = "lastgood_deployments_total"
    assert got[(deployments, (env, ("kind", "deploy"), ("status", "succeeded")))] == 2
    assert got[(deployments, (env, ("kind", "deploy"), ("status", "failed-restored")))] == 1
    assert got[(deployments, (env, ("kind", "auto-rollback"), ("status", "succeeded")))] == 1
    assert got[(deployments, (env, ("kind", "rollback"), ("status", "succeeded")))] == 1
    restores = [d["time_to_active"] for d in history["deployments"]
                if d["kind"] in ("rollback", "auto-rollback")]  # fmt: skip
    assert got[("lastgood_restore_seconds_count", (env,))] == 2
    assert abs(got[("lastgood_restore_seconds_sum", (env,))] - sum(restores)) < 1e-6
    assert got[("lastgood_restore_seconds_bucket", (env, ("le", "+Inf")))] == 2
    assert got[("lastgood_restore_seconds_bucket", (env, ("le", "300.0")))] == 2
    failed = sum(1 for e in history["events"] if e["kind"] == "check-failed")
    assert got[("lastgood_check_failures_total", (env,))] >= max(failed, 1)
    assert got[("lastgood_consumers", (env, ("version", "1")))] == 2
    assert got[("lastgood_consumers", (env, ("version", "2")))] == 1
    assert got[("lastgood_consumers", (env, ("version", "none")))] == 1
    assert got[("lastgood_live_version", (env,))] == 1


def test_healthz_says_ok_then_503_when_the_store_is_gone(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], pg_url: str
) -> None:
    ws = workspace(target="served", store=pg_url)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    server = serve(ws)
    ok = httpx.get(f"{server.url}/healthz")
    assert ok.status_code == 200 and ok.json() == {"ok": True, "served": {"staging": 1}}
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    gone = httpx.get(f"{server.url}/healthz", timeout=30)
    assert gone.status_code == 503, gone.text
    assert gone.headers["content-type"] == "application/json"
    assert gone.json()["error"] and gone.json()["exit_code"] == 1
    assert "Traceback" not in gone.text
    assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 503
