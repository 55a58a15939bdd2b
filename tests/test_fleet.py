"""The fleet through the CLI and the server's registry, and the server's command-line side: tokens,
the install hint. (The fleet verbs in process: ``tests/operations/test_fleet.py``.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from lastgood.rows import Consumer
from tests.conftest import LASTGOOD, Workspace, eventually
from tests.test_web import signed_in


def consumer_rows(page: str) -> dict[str, str]:
    """The web page's consumer table: each row's name, with the words of its tags."""
    table = page.split("<h2>Consumers</h2>", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr class=\"[^\"]*\">\s*<td>(.*?)</td>", table, re.S)
    words = [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]
    return {text.split()[0]: text for text in words}


def test_status_shows_the_fleet_of_a_served_environment(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(target="served")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    project = ws.project()
    live = project.target("staging").live()
    assert live is not None
    project.store.save_consumers(
        [Consumer(env="staging", consumer_id=f"c{i}", name=f"worker-{i}", version=live.version,
                  content_hash=live.content_hash, since=time.time(), seen_at=time.time())
         for i in range(3)]
    )  # fmt: skip
    shown = ws.run("status", "staging")
    assert shown.returncode == 0, shown.stderr
    assert "consumers     v1 live on 3/3 consumers in" in shown.stdout
    data = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert data["fleet"]["complete"] and data["fleet"]["total"] == 3


def test_token_secret_is_shown_once_and_stored_only_as_a_hash(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(target="served")
    made = ws.run("token", "create", "--name", "ci", "--role", "deployer", "--env", "staging")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("lg_") and len(secret) > 40
    assert "deployer on staging" in made.stderr and secret not in made.stderr
    listed = ws.run("token", "list")
    assert "ci" in listed.stdout and "staging" in listed.stdout and secret not in listed.stdout
    stored = b"".join(p.read_bytes() for p in (ws.root / ".lastgood").glob("store.db*"))
    assert secret.encode() not in stored
    unknown = ws.run("token", "create", "--name", "x", "--role", "viewer", "--env", "nowhere")
    assert unknown.returncode == 2 and "no environment named 'nowhere'" in unknown.stderr
    revoked = ws.run("token", "revoke", "1")
    assert revoked.returncode == 0 and "revoked token #1 'ci'" in revoked.stderr
    assert "ci" not in ws.run("token", "list").stdout
    assert ws.run("token", "revoke", "99").returncode == 2


def test_serve_without_the_server_extra_prints_the_install_hint(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(target="served")
    hide = (
        "import sys; sys.modules['fastapi'] = None; sys.argv = ['lastgood', '-C', sys.argv[1], "
        "'serve']; from lastgood.cli.fast import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", hide, str(ws.root)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "lastgood serve needs the server extra" in done.stderr
    assert "pip install 'lastgood[server]'" in done.stderr


def test_servers_on_one_store_share_their_consumers_and_silent_ones_age_out(
    store_url: str,
) -> None:
    """Two registries on one store, as two servers: each sees the other's consumers once they
    are flushed, the newer report of a consumer wins, and one silent for STALE_AFTER is gone."""
    from lastgood.operations.fleet import STALE_AFTER
    from lastgood.server.consumers import Consumers
    from lastgood.store import open_store

    store_a, store_b = open_store(store_url), open_store(store_url)
    try:
        a, b = Consumers(store_a), Consumers(store_b)
        now = time.time()
        b.report("prod", "app-1", name="app-1", version=3, content_hash="c3", now=now - 5)
        b.report("prod", "old", name="old", version=2, content_hash="c2", now=now - STALE_AFTER - 1)
        a.report("prod", "app-1", name="app-1", version=2, content_hash="c2", now=now - 10)
        assert b.flush() == 2 and a.flush() == 1  # A's older report of app-1 lands last
        a.read_shared(now=now)  # and undoes nothing: the store keeps B's newer one
        assert [(c.consumer_id, c.version) for c in a.of("prod")] == [("app-1", 3)]
        assert [c.version for c in store_a.consumers("prod") if c.name == "app-1"] == [3]
        a.report("prod", "app-1", name="app-1", version=2, content_hash="c2", now=now - 2)
        a.flush()
        a.read_shared(now=now)
        assert [(c.consumer_id, c.version) for c in a.of("prod")] == [("app-1", 2)]
        b.report("prod", "app-1", name="app-1", version=3, content_hash="c3", now=now - 1)
        b.flush()
        a.read_shared(now=now)
        assert [(c.consumer_id, c.version) for c in a.of("prod")] == [("app-1", 3)]
        assert a.of("staging") == []
    finally:
        store_a.close()
        store_b.close()


def test_a_server_reads_what_the_others_changed_and_who_left(store_url: str) -> None:
    """Servers read back only what was written since their last read: a change and a clean
    leave on one server reach the other, and a consumer read while fresh still ages out."""
    from lastgood.operations.fleet import STALE_AFTER
    from lastgood.server.consumers import Consumers
    from lastgood.store import open_store

    store_a, store_b = open_store(store_url), open_store(store_url)
    try:
        a, b = Consumers(store_a), Consumers(store_b)
        now = time.time()

        def fleet_of_a(at: float) -> list[tuple[str, int | None]]:
            a.read_shared(now=at)
            return sorted((c.consumer_id, c.version) for c in a.of("prod"))

        for number in range(3):
            b.report("prod", f"app-{number}", name="app", version=1, content_hash="c1", now=now)
        assert b.flush() == 3
        assert fleet_of_a(now) == [("app-0", 1), ("app-1", 1), ("app-2", 1)]
        b.report("prod", "app-0", name="app", version=2, content_hash="c2", now=now + 1)
        b.flush()
        assert b.leave("prod", "app-1", now=now + 1)
        b.flush()
        assert fleet_of_a(now + 1) == [("app-0", 2), ("app-2", 1)]
        assert fleet_of_a(now + STALE_AFTER + 0.5) == [("app-0", 2)]  # app-2: silent since now
        assert fleet_of_a(now + STALE_AFTER + 2) == []
    finally:
        store_a.close()
        store_b.close()


def test_a_consumer_that_left_stays_gone_when_an_older_report_is_read_back(
    store_url: str,
) -> None:
    """A consumer heard by two servers says on A that it stops: a report B flushed before that,
    read by A before or after A writes the leave, does not bring it back; a newer one does."""
    from lastgood.operations.fleet import STALE_AFTER
    from lastgood.server.consumers import Consumers
    from lastgood.store import open_store

    store_a, store_b = open_store(store_url), open_store(store_url)
    try:
        a, b = Consumers(store_a), Consumers(store_b)
        now = time.time()

        def on_a(at: float = now) -> list[tuple[str, int | None]]:
            """The consumers A counts (the fleet view leaves out those not heard from within
            STALE_AFTER: a leave sets the time back past it)."""
            a.read_shared(now=at)
            return [(c.consumer_id, c.version) for c in a.of("prod")
                    if c.seen_at >= at - STALE_AFTER]  # fmt: skip

        a.report("prod", "x", name="x", version=1, content_hash="c1", now=now - 3)
        a.flush()
        assert on_a() == [("x", 1)]
        b.report("prod", "x", name="x", version=1, content_hash="c1", now=now - 2)
        b.flush()  # not read by A yet
        assert a.leave("prod", "x", now=now)
        assert on_a() == []  # B's report, first read after the leave, before A wrote it
        a.flush()
        assert on_a() == []  # and after: A does not read its own write back
        b.report("prod", "x", name="x", version=2, content_hash="c2", now=now + 1)
        b.flush()
        assert on_a(now + 1) == [("x", 2)]  # heard from since: back
    finally:
        store_a.close()
        store_b.close()


def test_a_consumer_that_joins_after_a_switch_is_shown_apart_not_timed(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    """A consumer first seen after a rollback never had the version it left: it is counted,
    shown as joined since, and left out of the time to all, which would otherwise be the
    moment it happened to start. The server's memory, the store (``status``, a server started
    again) and every server say the same, on SQLite and PostgreSQL."""
    from tests.serving import Server

    ws = workspace(target="served", store=store_url, bake="0s", interval="10ms")
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    server = Server(ws).start()
    try:
        token = server.token("deployer")
        with server.client(token) as http:

            def report(who: str, version: int) -> None:
                sent = {"consumer": who, "name": who, "version": version}
                assert http.post("/api/v1/envs/staging/consumers", json=sent).status_code == 204

            report("early", 2)
            back = http.post("/api/v1/envs/staging/rollback", json={"to": "v1", "wait_fleet": 0})
            assert back.status_code == 200, back.text
            report("early", 1)  # follows at once
            time.sleep(0.5)
            report("late", 1)  # starts half a second later, on the restored version
            answer = http.get("/api/v1/envs/staging/consumers").json()
        fleet = answer["fleet"]
        assert fleet["complete"] and fleet["total"] == 2 and fleet["joined_since"] == 1, fleet
        assert fleet["time_to_all"] is not None and fleet["time_to_all"] < 0.4, fleet
        assert fleet["summary"].endswith("; 1 joined since the switch"), fleet
        first_seen = {c["name"]: c["first_seen"] for c in answer["consumers"]}
        switched = back.json()["deployment"]["activated_at"]
        assert first_seen["early"] < switched < first_seen["late"], (first_seen, switched)
        with signed_in(server, token) as page:  # the web page's table marks the late one
            rows = consumer_rows(page.get("/envs/staging").text)
        assert rows == {"early": "early", "late": "late joined since the switch"}, rows
    finally:
        server.stop()  # writes what it holds to the store
    stored = json.loads(ws.run("status", "staging", "--json").stdout)[0]["fleet"]
    assert (stored["joined_since"], stored["time_to_all"]) == (1, fleet["time_to_all"])
    again = Server(ws).start()  # a server started again reads its memory from the store
    try:
        with again.client(token) as http:
            shown = http.get("/api/v1/envs/staging/consumers").json()
        assert shown["fleet"]["time_to_all"] == fleet["time_to_all"], shown["fleet"]
        assert {c["name"]: c["first_seen"] for c in shown["consumers"]} == first_seen
    finally:
        again.close()


STEP_TRIPS_ON_DEMAND = """
[env.staging]
target = { type = "served", path = "../app", keep = 5 }
bake = "0s"
interval = "50ms"
failures = 1
verify_rounds = 1

[[env.staging.check]]
name = "no-trip-file"
type = "command"
run = 'test ! -e "../trip-$LASTGOOD_VERSION"'
timeout = "5s"

[env.staging.rollout]
steps = ["50%", "100%"]
step_bake = "30s"
"""


def test_a_failed_steps_fleet_is_timed_from_the_unlink_when_its_last_report_comes_late(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    """After a rollout's step fails, the fleet is timed from the removal of the pointer (the
    automatic rollback's ``requested_at``), whichever comes first: the last consumer's report
    or the ledger's restore record. A report after the record's ``activated_at`` (here, once
    the deploy has exited) used to be timed from ``activated_at``, dropping the time between
    the unlink and the record, while one before it was timed from the unlink: one kind of
    event, two starting moments. On SQLite and PostgreSQL."""
    from tests.serving import Server

    ws = workspace(target="served", store=store_url)
    (ws.root / "lastgood.toml").write_text(STEP_TRIPS_ON_DEMAND)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0  # nothing live yet: everyone at once
    server = Server(ws).start()
    ws.healthy("two")
    rolling = _deploy_in_background(ws)
    try:
        with server.client(server.token("deployer")) as http:

            def report(who: str, version: int) -> None:
                sent = {"consumer": who, "name": who, "version": version}
                assert http.post("/api/v1/envs/staging/consumers", json=sent).status_code == 204

            who = _in_first_step(ws)
            report(who, 2)  # it follows v2 in the step's cohort
            (ws.base / "trip-v2").touch()  # the step's next round fails
            _, stderr = rolling.communicate(timeout=60)
            assert rolling.returncode == 3, stderr
            report(who, 1)  # back on v1, reported after the deploy exited
            answer = http.get("/api/v1/envs/staging/consumers").json()
    finally:
        if rolling.poll() is None:
            rolling.kill()
            rolling.communicate()
        server.stop()
    fleet, since = answer["fleet"], answer["consumers"][0]["since"]
    restore = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"][0]
    assert restore["kind"] == "auto-rollback" and restore["source"] == "rollout", restore
    assert restore["requested_at"] < restore["activated_at"] < since, (restore, since)
    assert fleet["complete"] and fleet["version"] == 1, fleet
    assert fleet["time_to_all"] == pytest.approx(since - restore["requested_at"]), fleet


def _deploy_in_background(ws: Workspace) -> subprocess.Popen[str]:
    command = [LASTGOOD, "-C", str(ws.root), "--store", str(ws.store), "deploy", "staging"]
    env = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def _in_first_step(ws: Workspace) -> str:
    """Once the rollout's pointer is on the target, a consumer id in its first step's cohort."""
    from lastgood.rollout import POINTER, gets_new

    path = ws.base / "app" / POINTER
    pointer = eventually(lambda: path.exists() and json.loads(path.read_text()))
    salt, percent = str(pointer["salt"]), float(pointer["percent"])
    return next(f"c{n}" for n in range(1000) if gets_new("staging", f"c{n}", percent, salt))
