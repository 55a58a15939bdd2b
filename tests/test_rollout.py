"""Gradual rollout end to end: a real server, real SDK consumers with chosen ids (so each one's
cohort is known), the real CLI deploying, promoting, aborting and being killed mid-step.

``step_bake`` is long (30 s) wherever a test steers the steps with ``rollout promote``, so what
each consumer sees at each step is deterministic; a bad version trips in two rounds of 0.1 s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lastgood.client import LiveConfig
from lastgood.config import load
from lastgood.errors import ConfigError
from lastgood.rollout import POINTER, cohort, gets_new, new_salt, parse_pointer
from tests.conftest import LASTGOOD, Workspace, config_text, eventually
from tests.serving import Server
from tests.test_cli_remote import remote
from tests.test_web import csrf_of, signed_in

ROLLOUT = """
[env.staging.rollout]
steps = ["5%", "25%", "100%"]
step_bake = "{step_bake}"
"""


def _first(low: float, high: float, salt: str = "") -> str:
    """A consumer id whose cohort on staging lies in [low, high) in the rollout with ``salt``."""
    return next(f"c{n}" for n in range(10_000) if low <= cohort("staging", f"c{n}", salt) < high)


def cohorts(salt: str = "") -> tuple[str, str, str]:
    """Ids in the 5 %, the 25 % (not the 5 %) and the rest, in the rollout with ``salt``."""
    return _first(0, 5, salt), _first(5, 25, salt), _first(25, 100, salt)


EARLY, MIDDLE, LATE = cohorts()  # of a pointer without a salt (the feed's test writes one)


def salt_of(ws: Workspace) -> str:
    """The salt of the rollout under way (each rollout draws its own)."""
    salt = (pointer_of(ws) or {}).get("salt")
    assert isinstance(salt, str) and salt, pointer_of(ws)
    return salt


def rolling_workspace(
    make: Callable[..., Workspace], store: str | None = None, step_bake: str = "30s"
) -> Workspace:
    ws = make(target="served", store=store)
    (ws.root / "lastgood.toml").write_text(
        config_text(target="served") + ROLLOUT.format(step_bake=step_bake)
    )
    return ws


STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_deploy_left() -> Iterator[None]:
    """A failed test leaves no deploy running behind it."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def start_deploy(ws: Workspace, *args: str, failpoint: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    if failpoint:
        env["LASTGOOD_FAILPOINT"] = failpoint
    store = ["--store", ws.store] if ws.store else []
    command = [LASTGOOD, "-C", str(ws.root), *store, "deploy", "staging", *args]
    process = subprocess.Popen(command,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)  # fmt: skip
    STARTED.append(process)
    return process


def pointer_of(ws: Workspace) -> dict[str, object] | None:
    path = ws.base / "app" / POINTER
    return json.loads(path.read_text()) if path.exists() else None


def wait_for_step(ws: Workspace, step: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (pointer_of(ws) or {}).get("step") != step:
        assert time.monotonic() < deadline, f"the rollout never reached step {step}"
        time.sleep(0.02)


Consumers = Callable[..., dict[str, LiveConfig]]


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Consumers]:
    """``consumers(server, token, ids)``: SDK consumers named by ``ids`` (an early, a middle
    and a late one of some rollout's cohorts, in that order; default: unsalted ones)."""
    opened: list[LiveConfig] = []

    def open_all(
        server: Server, token: str, ids: tuple[str, str, str] = (EARLY, MIDDLE, LATE)
    ) -> dict[str, LiveConfig]:
        made = {
            who: LiveConfig(
                server.url,
                "staging",
                token=token,
                consumer_id=who,
                name=who,
                cache=False,
                wait=5,
                poll=0.2,
            )
            for who in ids
        }
        opened.extend(made.values())
        return made

    yield open_all
    for live in opened:
        live.close()


def versions(live: dict[str, LiveConfig]) -> list[int | None]:
    return [one.version for one in live.values()]


def settle(live: dict[str, LiveConfig], wanted: list[int]) -> None:
    for one, version in zip(live.values(), wanted, strict=True):
        one.wait_for_version(version, timeout=10)


def test_cohorts_are_stable_and_grow_with_the_percentage() -> None:
    ids = [f"app-{n}" for n in range(2000)]
    five = {i for i in ids if gets_new("prod", i, 5)}
    quarter = {i for i in ids if gets_new("prod", i, 25)}
    assert five <= quarter  # the 5 % cohort stays in at 25 %
    assert 50 <= len(five) <= 150 and 400 <= len(quarter) <= 600
    assert all(gets_new("prod", i, 100) for i in ids)
    assert not gets_new("prod", None, 99) and not gets_new("prod", "", 99)
    assert cohort("prod", "app-1") == cohort("prod", "app-1") != cohort("staging", "app-1")


def test_each_rollout_salts_its_cohorts() -> None:
    """Cohorts used to be unsalted: the same consumers went first in every rollout. Within one
    rollout (one salt) a consumer keeps its place; another salt sends others first; a pointer
    from before salts (none) keeps the unsalted hash."""
    ids = [f"app-{n}" for n in range(2000)]
    first, second = new_salt(), new_salt()
    assert first != second
    early = {i for i in ids if gets_new("prod", i, 5, first)}
    assert early <= {i for i in ids if gets_new("prod", i, 25, first)}
    assert 50 <= len(early) <= 150
    assert early != {i for i in ids if gets_new("prod", i, 5, second)}
    assert cohort("prod", "app-1", first) != cohort("prod", "app-1", second)
    assert cohort("prod", "app-1", "") == cohort("prod", "app-1")
    old = json.dumps({"release": "v2-ab", "version": 2, "stable": "v1-cd", "stable_version": 1,
                      "percent": 5, "step": 1, "steps": [5, 100], "started_at": 1.0,
                      "step_started_at": 1.0, "deployment": None}).encode()  # fmt: skip
    pointer = parse_pointer(old, Path("rollout.json"))
    unsalted_early = next(i for i in ids if cohort("prod", i) < 5)
    assert pointer.salt == "" and pointer.includes("prod", unsalted_early)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('steps = ["5%", "100%"]\nstep_bake = "1s"', None),
        ('steps = ["25%", "5%", "100%"]', "must rise step by step"),
        ('steps = ["5%", "50%"]', 'must end at "100%"'),
        ('steps = ["100%"]', "has no step below 100%"),
        ('steps = [5, "100%"]', "is not a percentage"),
        ('steps = ["0%", "100%"]', "above 0% and up to 100%"),
        ('steps = ["5%", "100%"]\nstep_bake = "soon"', "step_bake = 'soon' is not a duration"),
        ('steps = ["5%", "100%"]\nspeed = 2', "unknown key env.staging.rollout.speed"),
        ("", "steps is missing in"),  # told apart from an empty list, and from a string
        ("steps = []", "is empty"),
        ('steps = "5%"', "must be a list of percentages"),
        ('steps = ["5%", "100%"]\nsalt = 7', "salt in"),
        ('steps = ["5%", "100%"]\nsalt = "a\\u0007b"', "must be printable text"),
        ('steps = ["5%", "100%"]\nsalt = ""', "1 to 64 characters, not ''"),
        ('steps = ["5%", "100%"]\nsalt = "  "', "1 to 64 characters, not '  '"),
    ],
)
def test_rollout_settings_are_checked_when_read(
    tmp_path: Path, table: str, message: str | None
) -> None:
    (tmp_path / "lastgood.toml").write_text(
        config_text(target="served") + f"\n[env.staging.rollout]\n{table}\n"
    )
    if message is None:
        plan = load(tmp_path).environment("staging").rollout
        assert plan is not None and plan.steps == (5.0, 100.0) and plan.step_bake == 1.0
        assert plan.salt == ""  # a new random one per rollout
        return
    with pytest.raises(ConfigError, match=r"env\.staging\.rollout") as caught:
        load(tmp_path)
    assert message in caught.value.message


def test_a_rollout_needs_a_served_target(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text(
        config_text() + '\n[env.staging.rollout]\nsteps = ["5%", "100%"]\n'
    )
    with pytest.raises(ConfigError, match="needs a served target, not 'directory'"):
        load(tmp_path)
    (tmp_path / "lastgood.toml").write_text(
        config_text(target="served") + '\n[env.staging.rollout]\nsteps = ["5%", "100%"]\n'
    )
    assert load(tmp_path).environment("staging").rollout.step_bake == 0.3  # type: ignore[union-attr]


def test_rollout_steps_promote_fail_and_abort_with_real_consumers(
    workspace: Callable[..., Workspace],
    consumers: Consumers,
    store_url: str,
) -> None:
    """On PostgreSQL the server hears each step announced (its poll slows to the safety
    interval while it listens); on SQLite its 50 ms poll sees them."""
    ws = rolling_workspace(workspace, store_url)
    ws.healthy("one")
    first = ws.run("deploy", "staging")  # nothing live yet: everyone at once
    assert first.returncode == 0, first.stderr
    assert pointer_of(ws) is None
    server = Server(ws, "--poll", "0.05").start()
    try:
        token = server.token("deployer", "staging")
        salt, live = steps_promoted_to_everyone(ws, server, token, consumers)
        bad_version_stopped_at_five_percent(ws, live)
        rollback_during_a_rollout_aborts_it(ws, server, token, consumers, salt)
    finally:
        server.close()


def steps_promoted_to_everyone(
    ws: Workspace, server: Server, token: str, consumers: Consumers
) -> tuple[str, dict[str, LiveConfig]]:
    """The first rollout, steered step by step; its salt, and its consumers (an early, a
    middle and a late one in its cohorts, opened once it drew the salt)."""
    ws.healthy("two")
    plan = ws.run("deploy", "staging", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert (
        "rollout    a new version to 5% → 25% → 100% of the consumers (the others keep v1)"
        in plan.stdout
    )
    deploying = start_deploy(ws)
    wait_for_step(ws, 1)
    salt = salt_of(ws)
    live = consumers(server, token, cohorts(salt))  # this rollout's early, middle and late
    settle(live, [2, 1, 1])
    shown = ws.run("rollout", "status", "staging")
    assert shown.returncode == 0, shown.stderr
    assert "rolling out v2 on staging: step 1/3 (5%)" in shown.stdout
    assert "the others get v1" in shown.stdout
    with server.client(token) as http:
        status = http.get("/api/v1/envs/staging/rollout").json()
        assert status["pointer"]["percent"] == 5 and status["pointer"]["stable_version"] == 1
        assert status["new"] == {"version": 2, "total": 1, "following": 1}
        assert status["stable"] == {"version": 1, "total": 2, "following": 2}
        fleet = http.get("/api/v1/envs/staging/consumers").json()["fleet"]
        assert fleet["complete"], fleet  # the stable cohort is not "behind"
        assert fleet["summary"].startswith("v2 or v1 by cohort (step 1/3 (5%)) on 3/3")
    with signed_in(server, token) as browser:  # the page shows the step and promotes it
        page = browser.get("/envs/staging").text
        assert "rolling out v2 on staging: step 1/3 (5%)" in page and "Abort rollout" in page
        assert "behind</span>" not in page  # each consumer is on its cohort's version
        back = browser.get("/envs/staging/rollback", follow_redirects=False)
        assert back.status_code == 303  # no rollback form: the page offers Abort instead
        assert "rolling out v2" in browser.get("/").text
        promoted = browser.post("/envs/staging/rollout/promote", data={"csrf": csrf_of(page)})
        assert promoted.status_code == 303, promoted.text
    wait_for_step(ws, 2)
    settle(live, [2, 2, 1])
    status_shows_the_rollout(ws, server, token)
    through_server = remote(server, token, "rollout", "promote", "staging", cwd=ws.base)
    assert through_server.returncode == 0, through_server.stderr
    assert "leaves step 2/3 (25%) after its next green round" in through_server.stdout
    wait_for_step(ws, 3)  # 100 %: everyone on v2 through the pointer, current still v1
    settle(live, [2, 2, 2])
    assert "step 3/3 (100%)" in ws.run("rollout", "status", "staging").stdout
    assert ws.run("rollout", "promote", "staging").returncode == 0
    out, err = deploying.communicate(timeout=30)
    assert deploying.returncode == 0, err
    assert "v2 is live on staging and passed its bake" in out + err
    assert pointer_of(ws) is None
    settle(live, [2, 2, 2])
    state = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert state["live_version"] == 2 and state["last_good"] == 2
    assert timeline(ws)[0][0]["detail"].startswith("rolled out 5% → 25% → 100% in ")
    kinds = [e["kind"] for e in timeline(ws)[1]]
    assert kinds.count("rollout-step") == 3 and kinds.count("rollout-promoted") == 3
    scrape = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'lastgood_rollout_percent{env="staging"} 0.0' in scrape
    assert "lastgood_rollout_version{" not in scrape
    return salt, live


def status_shows_the_rollout(ws: Workspace, server: Server, token: str) -> None:
    """At step 2: ``lastgood status`` has a rollout line (it had none), locally and through
    the server (with the server's own count of each cohort), and /metrics has the gauges."""
    shown = ws.run("status", "staging")  # the deploy holds the lease: nothing reconciled
    assert shown.returncode == 0, shown.stderr
    assert "  rollout       v2 to 25% of consumers at step 2/3 since " in shown.stdout
    assert "the others get v1" in shown.stdout
    through = remote(server, token, "status", "staging", cwd=ws.base)
    assert through.returncode == 0, through.stderr
    assert "v2 on 2/2 of its cohort, v1 on 1/1 of its cohort" in through.stdout, through.stdout
    scrape = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'lastgood_rollout_percent{env="staging"} 25.0' in scrape
    assert 'lastgood_rollout_version{env="staging"} 2.0' in scrape


def bad_version_stopped_at_five_percent(ws: Workspace, live: dict[str, LiveConfig]) -> None:
    ws.broken("three")
    done = ws.run("deploy", "staging")
    assert done.returncode == 3, done.stderr
    assert "v3 failed 'health-file-ok' on staging" in done.stdout
    assert "at step 1/3 (5%); restored v2" in done.stdout
    assert pointer_of(ws) is None
    settle(live, [2, 2, 2])
    history, events = timeline(ws)
    kinds = [e["kind"] for e in events]
    stopped = kinds.index("rollout-stopped")  # everyone back on v2 first, then the ledger
    # the pointer went (the event follows the unlink) within one check interval of the trip
    assert 0 <= float(events[stopped]["at"]) - float(history[1]["failed_at"]) < 0.1  # type: ignore[arg-type]
    assert stopped < kinds.index("deploy-failed") < kinds.index("auto-rolled-back")
    assert history[0]["kind"] == "auto-rollback" and history[0]["status"] == "succeeded"
    assert history[1]["status"] == "failed-restored" and "at step 1/3 (5%)" in history[1]["detail"]


def rollback_during_a_rollout_aborts_it(
    ws: Workspace, server: Server, token: str, consumers: Consumers, earlier: str
) -> None:
    ws.healthy("four")
    deploying = start_deploy(ws)
    wait_for_step(ws, 1)
    assert salt_of(ws) != earlier  # another rollout: other consumers go first
    live = consumers(server, token, cohorts(salt_of(ws)))
    settle(live, [4, 2, 2])
    back = ws.run("rollback", "staging", "-m", "errors in the canary")
    assert back.returncode == 0, back.stderr
    assert "tester aborted the rollout of v4 on staging at step 1/3 (5%)" in back.stdout
    assert "every consumer is back on v2" in back.stdout
    assert pointer_of(ws) is None
    settle(live, [2, 2, 2])
    out, err = deploying.communicate(timeout=30)
    assert deploying.returncode == 3, err  # not live: exit 0 would read as a release
    assert "was aborted at step 1/3 (5%)" in out + err
    history = timeline(ws)[0]
    assert history[0]["to_version"] == 4 and history[0]["status"] == "aborted"
    nothing = ws.run("rollout", "abort", "staging")
    assert nothing.returncode != 0 and "no rollout is under way on staging" in nothing.stderr


def test_a_deploy_killed_mid_step_loses_nothing_and_the_next_command_ends_it(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = rolling_workspace(workspace, store_url)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    killed = start_deploy(ws, failpoint="rollout.mid-step")
    killed.communicate(timeout=30)
    assert killed.returncode == -9
    assert (pointer_of(ws) or {}).get("percent") == 5
    assert timeline(ws)[0][0]["detail"] == "rolling out: step 1/3 (5%)"
    server = Server(ws, "--poll", "0.05").start()  # a server started now keeps the cohorts
    try:
        token = server.token("viewer", "staging")
        early, _, late = cohorts(salt_of(ws))
        assert served_to(server, token, early) == 2
        assert served_to(server, token, late) == 1
        assert served_to(server, token, None) == 1
        looked = only_looking(server, ws)  # reads: the page, the API's status and rollout
        assert (pointer_of(ws) or {}).get("percent") == 5  # nobody ended it by looking
        assert timeline(ws)[0][0]["status"] == "running"
        assert (
            "rollout of v2 on staging interrupted at step 1/3 (5%): its deploy is no "
            "longer running" in looked
        )
        shown = ws.run("status", "staging")  # the next command reconciles
        assert shown.returncode == 0, shown.stderr
        assert pointer_of(ws) is None
        assert eventually(lambda: served_to(server, token, early) == 1, 5)  # back to v1
    finally:
        server.stop()
    history, events = timeline(ws)
    assert history[0]["to_version"] == 2 and history[0]["status"] == "interrupted"
    ended = [e for e in events if e["kind"] == "rollout-interrupted"]
    assert ended and "interrupted" in ended[0]["message"] and "step 1/3 (5%)" in ended[0]["message"]


def test_a_deploy_killed_as_a_failed_step_sends_everyone_back_leaves_the_version_judged(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    """SIGKILL in the instant after a tripped step's unlink (everyone back on last known good)
    used to leave the version unjudged: its record ``interrupted``, the version free to be
    deployed again as if nothing had failed. It is judged before the unlink now, so killed
    just after the unlink or just before it (the pointer then still there), the next command
    finds the version bad, the record closed saying it had failed, and nothing ``running``."""
    ws = rolling_workspace(workspace, store_url)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    for number, point in ((2, "rollout.after-stop"), (3, "rollout.after-verdict")):
        ws.broken(f"bad-{number}")
        killed = start_deploy(ws, failpoint=point)
        killed.communicate(timeout=30)
        assert killed.returncode == -9, point
        assert (pointer_of(ws) is None) == (point == "rollout.after-stop"), point
        shown = ws.run("status", "staging", "--json")  # the next command reconciles
        assert shown.returncode == 0, shown.stderr
        assert pointer_of(ws) is None  # everyone on v1
        state = json.loads(shown.stdout)[0]
        assert (state["live_version"], state["last_good"]) == (1, 1), (point, state)
        assert ws.project().store.verdicts("staging").get(number) == "bad", point
        history, _ = timeline(ws)
        assert all(record["status"] != "running" for record in history), history
        record = history[0]
        assert (record["to_version"], record["status"]) == (number, "interrupted"), record
        assert f"v{number} had failed its checks (marked bad)" in str(record["detail"]), record
        again = ws.run("deploy", "staging")  # the same content: refused as what failed here
        assert again.returncode == 5 and f"v{number} failed" in again.stderr, again.stderr


def only_looking(server: Server, ws: Workspace) -> str:
    """What someone looking sees of staging on the web page and through the API's reads (which used
    to reconcile, ending an orphaned rollout in the name of whoever looked); the page's text."""
    secret = server.token("deployer", "staging", name="looker")  # who could also act
    headers = {"Authorization": f"Bearer {secret}"}
    for path in ("/api/v1/envs", "/api/v1/envs/staging", "/api/v1/envs/staging/rollout"):
        answer = httpx.get(server.url + path, headers=headers, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
    with signed_in(server, secret) as http:
        assert http.get("/").status_code == 200
        page = http.get("/envs/staging")
    assert page.status_code == 200, page.text
    assert "Promote to the next step" not in page.text  # nothing would act on it
    return page.text


def test_a_deploy_stopped_with_sigterm_ends_its_rollout_on_the_way_out(
    workspace: Callable[..., Workspace],
) -> None:
    ws = rolling_workspace(workspace)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    running = start_deploy(ws)
    wait_for_step(ws, 1)
    running.send_signal(signal.SIGTERM)
    running.communicate(timeout=30)
    assert running.returncode != 0
    assert pointer_of(ws) is None  # everyone on v1 again, before anyone reconciles
    history, events = timeline(ws)
    assert history[0]["to_version"] == 2 and history[0]["status"] == "interrupted"
    stopped = [e["message"] for e in events if e["kind"] == "rollout-interrupted"]
    assert stopped == ["the rollout of v2 on staging was stopped (SIGTERM or Ctrl-C); every "
                       "consumer now gets v1"]  # fmt: skip


def test_a_deploy_killed_at_random_moments_of_its_rollout_leaves_complete_versions(
    workspace: Callable[..., Workspace],
) -> None:
    """SIGKILL at a moment drawn at random over a whole rollout (before, during or after any
    step): what ``current`` and the pointer name are complete releases, and the next command
    leaves no pointer, no record ``running`` and a ledger that says what the target serves."""
    ws = rolling_workspace(workspace, step_bake="0.3s")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    rng = random.Random(1616)
    for marker in ("two", "three"):
        ws.healthy(marker)
        running = start_deploy(ws)
        delay = rng.uniform(0.3, 1.2)
        time.sleep(delay)
        running.kill()
        running.communicate(timeout=10)
        context = f"{marker}: killed after {delay:.2f} s (exit {running.returncode})"
        project = ws.project()
        target = project.target("staging")
        live, pointer = target.live(), target.rollout()
        assert live is not None, context
        assert target.actual_hash() == project.store.version(live.version).content_hash, context
        if pointer is not None:
            assert target.store.is_retained(target.store.release(pointer.release)), context
        assert ws.run("status", "staging").returncode == 0, context  # reconciles
        assert pointer_of(ws) is None, context
        history, _ = timeline(ws)
        assert all(record["status"] != "running" for record in history), context
        state = json.loads(ws.run("status", "staging", "--json").stdout)[0]
        assert state["live_version"] == target.live().version, context  # type: ignore[union-attr]


def test_a_server_killed_while_it_runs_a_rollout_loses_nothing(
    workspace: Callable[..., Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy runs inside the server (``deploy --server``); the server dies (SIGKILL, by a
    failpoint armed in its own environment) right after it wrote step 1's pointer. Started
    again, it serves the same cohorts; the next command ends the rollout truthfully."""
    ws = rolling_workspace(workspace)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    assert ws.run("snapshot", "-m", "two").returncode == 0
    monkeypatch.setenv("LASTGOOD_FAILPOINT", "rollout.after-pointer")
    doomed = Server(ws, "--poll", "0.05").start()
    monkeypatch.delenv("LASTGOOD_FAILPOINT")
    token = doomed.token("deployer", "staging")
    sent = remote(doomed, token, "deploy", "staging", "--version", "v2", cwd=ws.base)
    assert sent.returncode == 1  # the server died under the request: said so, not httpx's words
    assert (
        f"the lastgood server at {doomed.url} closed the connection before it answered the "
        "deploy of staging" in sent.stderr
    ), sent.stderr
    assert "whether it happened is unknown from here" in sent.stderr
    assert "'lastgood status staging'" in sent.stderr
    assert doomed.process is not None and doomed.process.wait(10) == -9
    assert (pointer_of(ws) or {}).get("step") == 1
    server = Server(ws, "--poll", "0.05").start()
    try:
        ids = cohorts(salt_of(ws))
        assert [served_to(server, token, who) for who in ids] == [2, 1, 1]
        shown = ws.run("rollout", "status", "staging")
        assert (
            "rollout of v2 on staging interrupted at step 1/3 (5%): its deploy is no longer "
            "running; abort it" in shown.stdout
        ), shown.stderr
        refused = ws.run("rollout", "promote", "staging")
        assert refused.returncode != 0 and "nothing would act on a promote" in refused.stderr
        assert ws.run("status", "staging").returncode == 0  # reconciles
        assert pointer_of(ws) is None
        assert eventually(lambda: served_to(server, token, ids[0]) == 1, 5)  # back to v1
    finally:
        server.stop()
    history, events = timeline(ws)
    assert history[0]["to_version"] == 2 and history[0]["status"] == "interrupted"
    assert history[0]["source"] == "server"
    assert "rollout-interrupted" in [e["kind"] for e in events]


def test_a_server_stopped_while_it_runs_a_rollout_ends_it_and_says_so(
    workspace: Callable[..., Workspace],
) -> None:
    """SIGTERM to a server whose deploy is baking step 1: the deploy stops at once (it used to
    go on in its thread until the process ended, leaving the pointer and its cohort on the
    unbaked version), ends the rollout and answers why; nobody needs to reconcile."""
    ws = rolling_workspace(workspace)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    assert ws.run("snapshot", "-m", "two").returncode == 0
    server = Server(ws, "--poll", "0.05").start()
    token = server.token("deployer", "staging")
    command = [LASTGOOD, "--server", server.url, "--token", token, "deploy", "staging",
               "--version", "v2"]  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    sent = subprocess.Popen(command, cwd=ws.base, env={**clean, "NO_COLOR": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_step(ws, 1)
    server.stop()
    _out, err = sent.communicate(timeout=30)
    assert sent.returncode == 1
    assert "the server stopped during this deploy on staging" in err, err
    assert "every consumer is back on the stable version" in err
    assert "'lastgood status staging'" in err and "ask again when it is back" not in err
    assert pointer_of(ws) is None  # before anyone reconciles
    history, events = timeline(ws)
    assert history[0]["to_version"] == 2 and history[0]["status"] == "interrupted"
    assert "rollout-interrupted" in [e["kind"] for e in events]


# what the early cohort earns: it asks the server for the rollout's salt, reads the config as
# an id of the first 5 % in that rollout (any id before one starts) and prints the score its
# weight gives (40 times the weight), so a version that halves the weight halves the score
SCORE = """
import json, os, urllib.request
from lastgood.rollout import cohort
def get(path, consumer=None):
    headers = {"Authorization": "Bearer " + os.environ["LG_TOKEN"]}
    if consumer:
        headers["X-Lastgood-Consumer"] = consumer
    request = urllib.request.Request(os.environ["LG_URL"] + path, headers=headers)
    return json.load(urllib.request.urlopen(request, timeout=5))
pointer = get("/api/v1/envs/staging/rollout")["pointer"]
salt = pointer["salt"] if pointer else ""
canary = next(f"c{n}" for n in range(10_000) if cohort("staging", f"c{n}", salt) < 5)
files = get("/api/v1/envs/staging/config", canary)["files"]
print(40 * float(files["scoring/weight.txt"]["content"]))
"""

CANARY_CHECK = """
[[env.staging.check]]
name = "canary-score"
type = "command"
run = ["{python}", "../score.py"]
value = "last-line"
max_drop = "20%"
timeout = "5s"
"""


def test_a_version_that_halves_the_canary_cohorts_score_is_stopped_at_five_percent(
    workspace: Callable[..., Workspace],
) -> None:
    """The issue's own case: the score measured for the 5 % cohort falls by half against the
    baseline measured before the switch (``max_drop``), the step trips, everyone is back."""
    ws = rolling_workspace(workspace)
    ws.healthy("one")
    ws.write("scoring/weight.txt", "1\n")
    assert ws.run("deploy", "staging").returncode == 0
    server = Server(ws, "--poll", "0.05").start()
    try:
        token = server.token("viewer", "staging")
        (ws.base / "score.py").write_text(SCORE)
        config = ws.root / "lastgood.toml"
        config.write_text(config.read_text() + CANARY_CHECK.format(python=sys.executable))
        ws.write("scoring/weight.txt", "0.5\n")
        done = ws.run("deploy", "staging", env={"LG_URL": server.url, "LG_TOKEN": token})
        assert done.returncode == 3, done.stdout + done.stderr
        assert "v2 failed 'canary-score' on staging" in done.stdout
        assert "40 → 20 (-50%, over max_drop 20%)" in done.stdout
        assert "at step 1/3 (5%); restored v1" in done.stdout
        assert pointer_of(ws) is None
        assert [served_to(server, token, who) for who in (EARLY, MIDDLE, LATE)] == [1, 1, 1]
        # (no pointer is left to salt them: every id reads the stable version)
    finally:
        server.close()


def timeline(ws: Workspace) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The ledger records, newest first, and the events, oldest first."""
    shown = ws.run("history", "staging", "-n", "100", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    events = sorted(data["events"], key=lambda e: e["id"])
    return data["deployments"], events


def served_to(server: Server, token: str, consumer: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if consumer:
        headers["X-Lastgood-Consumer"] = consumer
    answer = httpx.get(f"{server.url}/api/v1/envs/staging/config", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["version"])


def test_the_rollout_page_example_parses(tmp_path: Path) -> None:
    page = (Path(__file__).parents[1] / "docs" / "rollout.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "lastgood.toml").write_text(example)
    plan = load(tmp_path).environment("production").rollout
    assert plan is not None and plan.steps == (5.0, 25.0, 100.0) and plan.step_bake == 600.0
    assert plan.describe() == "5% → 25% → 100%"
