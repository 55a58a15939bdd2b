"""``lastgood watch`` as a real process: health with its guard window, drift, scheduled drills,
one watcher per store, a clean stop on SIGTERM, and the watcher watching itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood import schedule
from lastgood.events import Event, EventKind
from lastgood.watch.alerts import Problems
from tests.conftest import LASTGOOD, Workspace

Factory = Callable[..., Workspace]

# Healthy unless ../outage-<marker of the live version> exists: one version can be broken while
# the others stay fine, the way a bad change breaks only itself.
CHECK = (
    'grep -qx ok "$LASTGOOD_PATH/health.txt" && '
    'test ! -e "../outage-$(cat "$LASTGOOD_PATH/marker")"'
)


def watch_config(env_extra: str = "", top_extra: str = "", check: str = CHECK) -> str:
    return textwrap.dedent(
        f"""
        [env.staging]
        target = {{ type = "directory", path = "../live", keep = 5 }}
        bake = "0.2s"
        interval = "0.1s"
        failures = 2
        verify_rounds = 3
        {env_extra}

        [[env.staging.check]]
        name = "health"
        type = "command"
        run = '{check}'
        timeout = "5s"

        [watch]
        interval = "0.2s"
        alert_every = "1h"
        {top_extra}
        """
    )


class Watching:
    """A workspace with v1 and v2 deployed (markers one, two) and a watcher to start."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.process: subprocess.Popen[str] | None = None
        self.log = ws.base / "watch.log"
        self.stdout = ws.base / "watch.out"

    def deploy(self, marker: str) -> None:
        self.ws.write("health.txt", "ok\n")
        self.ws.write("marker", f"{marker}\n")
        result = self.ws.run("deploy", "staging", "-m", marker)
        assert result.returncode == 0, result.stderr

    def start(self, *args: str) -> subprocess.Popen[str]:
        command = [LASTGOOD, "-C", str(self.ws.root)]
        if self.ws.store:
            command += ["--store", self.ws.store]
        env = {**os.environ, "LASTGOOD_AUTHOR": "watcher", "NO_COLOR": "1"}
        with open(self.log, "w") as log, open(self.stdout, "w") as out:
            self.process = subprocess.Popen(
                [*command, "watch", *args], stdout=out, stderr=log, text=True, env=env
            )
        return self.process

    def reports(self) -> list[dict[str, Any]]:
        """The ``--json`` cycle reports printed so far."""
        return [json.loads(line) for line in self.stdout.read_text().splitlines()]

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen; watcher said:\n{self.output()}")

    def cycles(self) -> int:
        """How many cycles have ended (one ``--json`` line each)."""
        return self.stdout.read_text().count("\n") if self.stdout.exists() else 0

    def wait_cycles(self, count: int) -> None:
        """Until ``count`` more cycles have ended: the watcher had that many chances to act
        (started with ``--json``)."""
        until = self.cycles() + count
        self.wait_for(lambda: self.cycles() >= until, f"{count} more watch cycles")

    def events(self, kind: str) -> list[Any]:
        project = self.ws.project()
        return project.store.events("staging", kind=kind, limit=None) + (
            project.store.events(None, kind=kind, limit=None) if kind.startswith("watch") else []
        )

    def events_anywhere(self, kind: str) -> list[Any]:
        return self.ws.project().store.events(None, kind=kind, limit=None)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def watching(workspace: Factory) -> Iterator[Callable[..., Watching]]:
    made: list[Watching] = []

    def make(env_extra: str = "", top_extra: str = "", *, store: str | None = None,
             check: str = CHECK) -> Watching:  # fmt: skip
        ws = workspace(store=store)
        (ws.root / "lastgood.toml").write_text(watch_config(env_extra, top_extra, check))
        made.append(Watching(ws))
        made[-1].deploy("one")
        made[-1].deploy("two")
        return made[-1]

    yield make
    for w in made:
        if w.process is not None and w.process.poll() is None:
            w.process.kill()
            w.process.wait()


def live_marker(w: Watching) -> str:
    return (w.ws.base / "live" / "current" / "marker").read_text().strip()


def latest(w: Watching, env: str = "staging") -> Any:
    return w.ws.project().store.deployments(env, limit=1)[0]


# ---- health and the guard window --------------------------------------------------------------


def test_a_failure_within_the_guard_window_rolls_back_by_itself(
    watching: Callable[..., Watching],
) -> None:
    w = watching('guard = "1h"')
    w.start()
    w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
    (w.ws.root / "../outage-two").resolve().touch()
    record = w.wait_for(
        lambda: (r := latest(w)).kind == "auto-rollback" and r.status == "succeeded" and r,
        "an automatic rollback",
    )
    assert (record.from_version, record.to_version, record.actor) == (2, 1, "lastgood")
    assert "within the guard window" in record.reason
    assert live_marker(w) == "one"
    assert record.trigger_at <= record.activated_at  # timed from the policy's decision
    w.wait_for(lambda: w.events("health-recovered"), "health-recovered")
    assert w.stop() == 0
    out = w.output()
    assert "health-failed" in out and "auto-rolled-back: restored v1 on staging" in out
    assert "watch-stopped" in out


def test_outside_the_guard_window_the_default_is_to_alert_and_touch_nothing(
    watching: Callable[..., Watching],
) -> None:
    w = watching('guard = "1ms"')
    w.start("--json")
    w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
    (w.ws.root / "../outage-two").resolve().touch()
    alerts = w.wait_for(lambda: w.events("health-failed"), "a health-failed alert")
    assert "outside the guard window, and on_failure = alert" in alerts[0].message
    assert "lastgood rollback staging" in alerts[0].message
    w.wait_cycles(3)  # several more cycles: still alert-only, and the alert is not repeated
    assert live_marker(w) == "two"
    assert latest(w).kind == "deploy"
    assert len(w.events("health-failed")) == 1
    (w.ws.root / "../outage-two").resolve().unlink()
    w.wait_for(lambda: w.events("health-recovered"), "health-recovered")
    assert w.stop() == 0


def test_on_failure_rollback_acts_outside_the_guard_window_too(
    watching: Callable[..., Watching],
) -> None:
    w = watching('guard = "1ms"\non_failure = "rollback"')
    w.start()
    (w.ws.root / "../outage-two").resolve().touch()
    record = w.wait_for(
        lambda: (r := latest(w)).kind == "auto-rollback" and r.finished_at and r, "a rollback"
    )
    assert "on_failure = rollback" in record.reason
    assert live_marker(w) == "one"
    assert w.stop() == 0


def test_after_an_automatic_rollback_it_does_not_walk_back_further(
    watching: Callable[..., Watching],
) -> None:
    """When everything fails (the world is broken, not the change), one rollback, then alerts."""
    w = watching('guard = "1h"\non_failure = "rollback"')
    for marker in ("one", "two"):
        (w.ws.root / f"../outage-{marker}").resolve().touch()
    w.start("--json")
    w.wait_for(lambda: latest(w).kind == "auto-rollback", "the first rollback")
    w.wait_cycles(3)  # three more chances to roll back again, all declined
    rollbacks = [r for r in w.ws.project().store.deployments("staging") if r.is_rollback]
    assert len(rollbacks) == 1
    assert rollbacks[0].status == "unverified"
    assert w.events("restore-failed")
    assert w.stop() == 0


# ---- drift ------------------------------------------------------------------------------------


def test_drift_is_reported_with_its_diff_and_left_alone_by_default(
    watching: Callable[..., Watching],
) -> None:
    w = watching()
    w.start("--json")
    live = w.ws.base / "live" / "current"
    (live / "marker").write_text("two\nhand edit\n")
    found = w.wait_for(lambda: w.events("drift-detected"), "drift-detected")
    data = json.loads(found[0].data)
    assert data["modified"] == ["marker"] and data["action"] == "alert"
    assert "+hand edit" in data["diff"] and "--- ledger/marker" in data["diff"]
    w.wait_cycles(3)
    assert len(w.events("drift-detected")) == 1  # the same drift is reported once
    assert (live / "marker").read_text() == "two\nhand edit\n"
    assert w.stop() == 0


def test_on_drift_restore_puts_the_ledgers_bytes_back(watching: Callable[..., Watching]) -> None:
    w = watching('on_drift = "restore"')
    w.start()
    live = w.ws.base / "live" / "current"
    (live / "marker").write_text("edited\n")
    (live / "stray.txt").write_text("not ours\n")
    w.wait_for(lambda: w.events("drift-repaired"), "drift-repaired")
    assert (live / "marker").read_text() == "two\n"
    assert not (live / "stray.txt").exists()
    data = json.loads(w.events("drift-detected")[0].data)
    assert (data["modified"], data["extra"], data["action"]) == (["marker"], ["stray.txt"],
                                                                 "restore")  # fmt: skip
    status = json.loads(w.ws.run("status", "staging", "--json").stdout)[0]
    assert not status["drifted"]
    assert w.stop() == 0


# ---- drills on a schedule ---------------------------------------------------------------------


def test_a_scheduled_drill_runs_when_its_time_has_passed(watching: Callable[..., Watching]) -> None:
    w = watching(
        'drill_schedule = "0 3 * * *"\n[env.staging.drill]\n'
        'files = { "health.txt" = "drills/broken.txt" }'
    )
    w.ws.write("drills/broken.txt", "fail\n")
    store = w.ws.project().store
    two_days_ago = time.time() - 2 * 86400
    store.begin_deployment(
        env="staging", kind="drill", status="passed", actor="t", source="drill",
        requested_at=two_days_ago, finished_at=two_days_ago,
    )  # fmt: skip
    w.start("--cycles", "2")
    assert w.process is not None and w.process.wait(timeout=60) == 0, w.output()
    drills = [r for r in store.deployments("staging") if r.kind == "drill"]
    assert [d.status for d in drills] == ["passed", "passed"]
    assert drills[0].reason == "scheduled drill (0 3 * * *)"
    assert live_marker(w) == "two"


def test_an_overdue_drill_is_announced_once(watching: Callable[..., Watching]) -> None:
    w = watching('drill_every = "1d"')
    w.start("--cycles", "3")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    overdue = w.events("drill-overdue")
    assert len(overdue) == 1 and "last successful drill never" in overdue[0].message


def test_a_protected_environment_is_never_drilled_by_the_watcher(
    watching: Callable[..., Watching],
) -> None:
    w = watching('protected = true\ndrill_schedule = "* * * * *"')
    w.start("--once", "--json")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    report = w.reports()[0]
    assert report["drills"] == {"staging": "protected"}
    assert not w.events("drill-overdue")


# ---- one watcher, clean stops, and watching itself ------------------------------------------


def test_only_one_watcher_per_store(watching: Callable[..., Watching]) -> None:
    w = watching()
    w.start()
    w.wait_for(lambda: "watch-started" in w.output(), "the first watcher starting")
    second = w.ws.run("watch", "--once")
    assert second.returncode == 5
    assert "another watcher is running on this store" in second.stderr
    assert "--wait" in second.stderr
    assert w.stop() == 0
    third = w.ws.run("watch", "--once")
    assert third.returncode == 0, third.stderr  # the lease was released on SIGTERM


def test_sigterm_ends_the_watcher_cleanly(watching: Callable[..., Watching]) -> None:
    w = watching()
    w.start("--json")
    w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
    assert w.stop() == 0
    assert w.events("watch-stopped")
    assert w.ws.project().store.lease("watch") is None


def test_checks_that_cannot_run_raise_a_watch_alert(watching: Callable[..., Watching]) -> None:
    w = watching()
    config = w.ws.root / "lastgood.toml"
    config.write_text(config.read_text().replace('type = "command"', 'type = "carrier-pigeon"'))
    w.start("--once", "--json")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    alerts = w.events("watch-alert")
    assert alerts and "the checks of staging cannot run" in alerts[0].message
    assert "carrier-pigeon" in alerts[0].message


def test_a_stalled_cycle_is_alerted_while_it_is_stuck(watching: Callable[..., Watching]) -> None:
    w = watching(top_extra='stall = "0.3s"')
    slow = CHECK + " && sleep 2"
    config = w.ws.root / "lastgood.toml"
    config.write_text(config.read_text().replace(CHECK, slow))
    w.start("--once")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    out = w.output()
    assert "watch-alert: a watch cycle has been running for" in out
    assert "in health:staging" in out
    assert "watch-recovered" in out


@pytest.mark.postgres
def test_a_store_that_goes_away_is_alerted_and_the_watcher_keeps_going(
    watching: Callable[..., Watching], pg_url: str
) -> None:
    import psycopg

    w = watching(store=pg_url)
    w.start()
    w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
    name = pg_url.rsplit("/", 1)[1]
    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")
    w.wait_for(lambda: "cannot reach the store" in w.output(), "the store alert")
    assert w.process is not None and w.process.poll() is None  # still watching
    assert w.stop() == 0
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # for the fixture's teardown


# ---- pieces -----------------------------------------------------------------------------------


def test_problems_repeat_every_period_until_resolved() -> None:
    now = [1000.0]
    seen: list[Event] = []
    problems = Problems(seen.append, alert_every=60.0, clock=lambda: now[0])
    assert problems.raise_("store", "cannot reach the store")
    assert not problems.raise_("store", "cannot reach the store")  # same period: quiet
    now[0] += 61
    assert problems.raise_("store", "cannot reach the store")
    assert "ongoing for 1m 01s" in seen[-1].message
    assert seen[0].key != seen[1].key  # a repeat is a new delivery
    assert problems.resolve("store")
    assert seen[-1].kind is EventKind.WATCH_RECOVERED
    assert not problems.resolve("store")
    assert problems.raise_("store", "again")  # a new problem after resolution
    assert seen[-1].data["repeat"] == 0


def test_cron_schedules() -> None:
    monday_0259 = 1796007540.0  # 2026-11-30 02:59 UTC, a Monday
    assert schedule.next_after("0 3 * * MON", monday_0259) == monday_0259 + 60
    assert schedule.is_due("0 3 * * MON", None, monday_0259 + 61, since=monday_0259)
    assert not schedule.is_due("0 3 * * MON", monday_0259 + 60, monday_0259 + 120, since=0)
    assert "Monday" in schedule.explain("0 3 * * MON")
    with pytest.raises(ValueError, match="it has 4 fields, not 5"):
        schedule.validate("0 3 * *")
    with pytest.raises(ValueError, match="it has 6 fields, not 5"):
        schedule.validate("0 3 * * 1 *")  # cronsim reads a sixth field; the docs promise five
    with pytest.raises(ValueError, match="bad"):
        schedule.validate("0 3 * * bad")


def test_watch_needs_a_positive_interval(tmp_path: Path, workspace: Factory) -> None:
    ws = workspace()
    result = ws.run("watch", "--interval", "0s", "--once")
    assert result.returncode == 2 and "must be more than 0" in result.stderr


# ---- documents --------------------------------------------------------------------------------


def test_the_watcher_tracks_documents_and_alerts_on_unreadable_ones(
    watching: Callable[..., Watching],
) -> None:
    w = watching(
        top_extra='\n[[watch.document]]\nname = "pricing"\npath = "../shared/pricing.csv"\n'
        '\n[[watch.document]]\nname = "partner spec"\nurl = "http://127.0.0.1:9/openapi.json"\n'
        'timeout = "1s"\n'
    )
    sheet = w.ws.base / "shared" / "pricing.csv"
    sheet.parent.mkdir()
    sheet.write_text("plan,price\nbasic,10\n")
    w.start("--json")
    w.wait_for(lambda: len(w.reports()) >= 1, "the first cycle")
    assert w.reports()[0]["documents"] == {"pricing": "baseline", "partner spec": "error"}
    sheet.write_text("plan,price\r\nbasic,10   \r\n")  # whitespace and line endings: no change
    w.wait_cycles(2)  # read at least once whole, after the write
    sheet.write_text("plan,price\nbasic,12\n")
    changed = w.wait_for(lambda: w.events_anywhere("document-changed"), "document-changed")
    assert len(changed) == 1 and "+basic,12" in json.loads(changed[0].data)["diff"]
    alerts = w.events_anywhere("watch-alert")
    assert len(alerts) == 1 and "document 'partner spec' cannot be read" in alerts[0].message
    assert w.stop() == 0


# ---- what people hear -------------------------------------------------------------------------


def test_the_watchers_alerts_reach_a_real_webhook(watching: Callable[..., Watching]) -> None:
    from tests.test_notify import Webhook

    hook = Webhook()
    try:
        w = watching(
            'guard = "1ms"',
            f'\n[[notify.route]]\nname = "ops"\nto = "{hook.url()}"\n'
            'events = ["health-failed", "health-recovered", "drift-detected"]\n',
        )
        w.start()
        w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
        (w.ws.root / "../outage-two").resolve().touch()
        w.wait_for(lambda: hook.bodies(), "a delivered alert")
        (w.ws.root / "../outage-two").resolve().unlink()
        w.wait_for(lambda: len(hook.bodies()) >= 2, "the recovery message")
        assert w.stop() == 0
        titles = [body["title"] for body in hook.bodies()]
        assert "health-failed" in titles[0] and "staging" in titles[0]
        assert "health-recovered" in titles[1]
        assert "lastgood rollback staging" in hook.bodies()[0]["message"]
    finally:
        hook.close()


def test_the_digest_is_sent_on_its_schedule(workspace: Factory) -> None:
    from lastgood.watch import Watcher
    from tests.test_notify import Webhook

    hook = Webhook()
    ws = workspace()
    try:
        (ws.root / "lastgood.toml").write_text(
            watch_config(
                top_extra='digest = "* * * * *"\n'
                f'\n[[notify.route]]\nname = "team"\nto = "{hook.url()}"\nevents = ["digest"]\n'
            )
        )
        Watching(ws).deploy("one")
        project = ws.project()
        watcher = Watcher(project, cycles=1)
        watcher.started_at -= 120  # the watcher has run through a scheduled minute
        assert watcher.run() == 0
        assert project.notifier is not None and project.notifier.flush(30)
        bodies = hook.bodies()
        assert len(bodies) == 1
        assert "staging" in bodies[0]["message"] and "1 change" in bodies[0]["message"]
        assert watcher.last_digest is not None
    finally:
        hook.close()


def test_a_hand_edit_that_breaks_the_checks_is_not_blamed_on_the_version(
    watching: Callable[..., Watching],
) -> None:
    """Within the guard window, but the live files were edited: rolling back to another version
    would withdraw an innocent one, so the watcher alerts instead."""
    w = watching('guard = "1h"')
    w.start("--json")
    w.wait_for(lambda: "watch-started" in w.output(), "the watcher starting")
    (w.ws.base / "live" / "current" / "health.txt").write_text("fail\n")
    alerts = w.wait_for(lambda: w.events("health-failed"), "a health-failed alert")
    assert "edited by hand" in alerts[0].message
    assert "lastgood deploy staging --version v2" in alerts[0].message
    w.wait_cycles(3)  # three more chances to roll back, all declined
    assert latest(w).kind == "deploy" and live_marker(w) == "two"
    assert w.stop() == 0


def test_the_watcher_ages_out_versions_of_a_document_that_stopped_changing(
    workspace: Factory,
) -> None:
    from lastgood.watch import Watcher

    ws = workspace()
    (ws.root / "lastgood.toml").write_text(
        watch_config(
            top_extra='\n[[watch.document]]\nname = "sheet"\npath = "sheet.txt"\nmax_age = "1d"\n'
        )
    )
    ws.write("sheet.txt", "now\n")
    project = ws.project()
    for content, age in ((b"then\n", 5), (b"now\n", 3)):  # the newest is what the file holds
        project.store.add_document_version(
            "sheet", content, source="sheet.txt", diff="", added=1, removed=0,
            at=time.time() - age * 86400,
        )  # fmt: skip
    assert Watcher(project, cycles=1).run() == 0
    kept = project.store.document_versions("sheet")
    assert [v.version for v in kept] == [2]  # unchanged, yet v1 aged out; the newest stays


def test_a_restarted_watcher_does_not_report_the_same_drift_or_overdue_drill_again(
    watching: Callable[..., Watching],
) -> None:
    w = watching('drill_every = "1d"')
    (w.ws.base / "live" / "current" / "marker").write_text("two\nhand edit\n")
    for _ in range(3):  # three watchers in a row, one cycle each, on the same hand edit
        w.start("--once")
        assert w.process is not None and w.process.wait(timeout=60) == 0
    assert len(w.events("drift-detected")) == 1
    assert len(w.events("drill-overdue")) == 1
    (w.ws.base / "live" / "current" / "marker").write_text("two\nanother edit\n")
    w.start("--once")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    assert len(w.events("drift-detected")) == 2  # a different edit is news
    report = json.loads(w.ws.run("report", "staging", "--json").stdout)
    assert report["envs"][0]["drift_detected"] == 2


def test_a_restarted_watcher_carries_on_with_a_health_failure(
    watching: Callable[..., Watching],
) -> None:
    """One ongoing failure, several watchers one after another (a crash, or cron running
    'watch --once'): the failure is counted across them, announced once, and its recovery is
    announced by whichever watcher sees it."""
    w = watching('guard = "1ms"')
    (w.ws.root / "../outage-two").resolve().touch()

    def once() -> None:
        w.start("--once")
        assert w.process is not None and w.process.wait(timeout=60) == 0

    once()  # round 1 of failures = 2: not yet
    assert w.events("health-failed") == []
    once()  # round 2: the streak, carried over, trips
    assert len(w.events("health-failed")) == 1
    once()
    once()
    assert len(w.events("health-failed")) == 1  # the same failure, not news
    failing = json.loads(w.ws.run("status", "staging", "--json").stdout)[0]
    assert failing["health"] == "failing: health"  # one round's names, not every watcher's
    (w.ws.root / "../outage-two").resolve().unlink()
    once()
    assert len(w.events("health-recovered")) == 1
    report = json.loads(w.ws.run("report", "staging", "--json").stdout)["envs"][0]
    assert [i["kind"] for i in report["incidents"]] == ["health-failed"]
    status = json.loads(w.ws.run("status", "staging", "--json").stdout)[0]
    assert status["health"] == "healthy"


def test_a_carried_over_failing_streak_stops_at_a_new_version(
    watching: Callable[..., Watching],
) -> None:
    """v2 failed one watch round; v3 is deployed; one failing round of v3 is its first, not
    the second of a streak that would trip (failures = 2) and roll v3 back."""
    w = watching('guard = "1h"')
    (w.ws.root / "../outage-two").resolve().touch()
    w.start("--once")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    w.ws.write("marker", "three\n")
    done = w.ws.run("deploy", "staging", "-m", "three", "--ignore-baseline")
    assert done.returncode == 0, done.stderr
    (w.ws.root / "../outage-three").resolve().touch()  # v3 has one bad moment
    w.start("--once")
    assert w.process is not None and w.process.wait(timeout=60) == 0
    assert w.events("health-failed") == []
    assert live_marker(w) == "three"


def test_the_same_hand_edit_made_again_after_a_repair_is_reported_again(
    watching: Callable[..., Watching],
) -> None:
    w = watching()
    live = w.ws.base / "live" / "current" / "marker"

    def once() -> None:
        w.start("--once")
        assert w.process is not None and w.process.wait(timeout=60) == 0

    live.write_text("two\nhand edit\n")
    once()
    once()
    assert len(w.events("drift-detected")) == 1
    assert w.ws.run("rollback", "staging").returncode == 0  # restores v2's bytes in place
    live.write_text("two\nhand edit\n")  # the very same edit, weeks later
    once()
    assert len(w.events("drift-detected")) == 2


# ---- change requests ------------------------------------------------------------------------


def test_the_watcher_shows_a_scheduled_request_held_once_and_then_applied(
    watching: Callable[..., Watching],
) -> None:
    from datetime import datetime

    w = watching()
    config = w.ws.root / "lastgood.toml"
    approval = '\n[groups]\nops = ["sam"]\n\n[env.staging.approval]\napprovers = ["ops"]\n'
    freeze = textwrap.dedent("""
        [[env.staging.freeze]]
        name = "year-end"
        from = "2000-01-01 00:00"
        until = "2100-01-01 00:00"
        """)  # fmt: skip
    config.write_text(config.read_text() + approval)
    w.ws.write("marker", "three\n")
    now = datetime.now().isoformat(timespec="seconds")
    assert w.ws.run("request", "staging", "-m", "tonight", "--at", now).returncode == 0
    assert w.ws.run("request", "approve", "1", env={"LASTGOOD_AUTHOR": "sam"}).returncode == 0
    config.write_text(config.read_text() + freeze)

    held = [w.ws.run("watch", "--once") for _ in range(2)]

    assert [run.returncode for run in held] == [0, 0], held[0].stderr
    assert "request-held: change request #1 for staging is due but held until the environment " \
           "opens again: freeze 'year-end'" in held[0].stderr  # fmt: skip
    assert "request-held" not in held[1].stderr  # once
    assert len(w.events("request-held")) == 1  # and in the ledger once

    config.write_text(config.read_text().replace(freeze, ""))
    applied = w.ws.run("watch", "--once")

    assert applied.returncode == 0, applied.stderr
    for said in ("deploy-started: deploying v2 → v3 on staging by tester",
                 "deploy-succeeded: v3 is live on staging",
                 "request-applied: change request #1 for staging applied: v3 is live"):  # fmt: skip
        assert said in applied.stderr, applied.stderr
    assert live_marker(w) == "three"
