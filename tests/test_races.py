"""One deploy or rollback per environment at a time, through a lease that expires; a rollback is
never blocked by a dead or stuck deploy.

Real ``lastgood`` processes race on real workspaces (see ``conftest_crash_helpers``), on SQLite
and PostgreSQL: the loser of a lock race is refused with exit 5 naming the holder; a rollback
breaks a live deploy's lease only with ``--force`` (recorded), takes over a dead or expired one
without it, and the deploy that lost its lease stops without touching the target again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest_crash_helpers import (
    ENV,
    Running,
    Workspace,
    assert_recovered,
    drop_template_databases,
    make_workspace,
    write_config,
)

MakeWorkspace = Callable[..., Workspace]
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", autouse=True)
def _drop_template_databases() -> Iterator[None]:
    yield
    drop_template_databases()


@pytest.fixture
def workspace_factory(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeWorkspace]:
    templates = tmp_path_factory.getbasetemp() / "crash-templates"
    with contextlib.ExitStack() as stack:

        def make(kind: str = "directory", store: str = "sqlite", stage: str = "v1") -> Workspace:
            return make_workspace(stack, tmp_path / "t", templates, kind, store, stage)

        yield make


@pytest.fixture
def background() -> Iterator[list[Running]]:
    """Processes a test starts; any still running at the end are continued and killed."""
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                running.process.send_signal(signal.SIGCONT)
            running.kill()
            running.finish()


def _target_state(workspace: Workspace) -> dict[str, object]:
    """Everything on the directory target a process could change, to prove nobody did."""
    live = workspace.live
    return {
        "current": os.readlink(live / "current"),
        "current_mtime": os.lstat(live / "current").st_mtime_ns,
        "releases": sorted(os.listdir(live / "releases")),
        "meta": {p.name: p.read_bytes() for p in sorted((live / "meta").iterdir())},
    }


def _assert_serves(workspace: Workspace, ref: str, context: str) -> None:
    """The live folder holds exactly ``ref``'s files (per ``lastgood show``)."""
    shown = workspace.ok("show", ref, "--json").json()
    expected = {path: text.encode() for path, text in shown["files"].items()}
    assert workspace.served() == expected, f"{context}: the live folder is not {ref}"


def _start_baking_deploy(
    workspace: Workspace, background: list[Running], label: str = "v2"
) -> Running:
    """Start deploying a good ``label`` and return once its first bake round is done."""
    workspace.write(label, good=True)
    deploy = workspace.start("deploy", ENV, "-m", label)
    background.append(deploy)
    deploy.wait_for_line("bake round 1")
    return deploy


# ---- two deploys at once ---------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_two_deploys_at_once_exactly_one_proceeds(
    workspace_factory: MakeWorkspace, background: list[Running], store: str
) -> None:
    workspace = workspace_factory(store=store)
    write_config(workspace.root, "directory", bake="1.5s")
    workspace.write("v2", good=True)
    workspace.ok("snapshot", "-m", "v2")
    first = workspace.start("deploy", ENV, "--version", "v2")
    second = workspace.start("deploy", ENV, "--version", "v2")
    background += [first, second]
    results = {first.process.pid: first.finish(), second.process.pid: second.finish()}
    codes = sorted(result.code for result in results.values())
    assert codes == [0, 5], "\n".join(r.describe() for r in results.values())
    (winner,) = [pid for pid, result in results.items() if result.code == 0]
    loser = next(result for result in results.values() if result.code == 5)
    assert f"locked by crash-test (deploy, pid {winner} " in loser.err, loser.describe()
    assert "--force" in loser.err, loser.describe()
    _assert_serves(workspace, "v2", "after the race")
    deploys = [d for d in workspace.history()["deployments"] if d["to_version"] == 2]
    assert [(d["kind"], d["status"]) for d in deploys] == [("deploy", "succeeded")], deploys


@pytest.mark.postgres
def test_two_folder_deploys_at_once_on_postgresql(
    workspace_factory: MakeWorkspace, background: list[Running]
) -> None:
    """Both snapshot at the same instant (held at the blobs table, then let go together)."""
    import psycopg

    workspace = workspace_factory(store="postgresql")
    write_config(workspace.root, "directory", bake="1.5s")
    workspace.write("v2", good=True)
    assert workspace.store is not None
    with psycopg.connect(workspace.store, connect_timeout=3) as gate:
        gate.execute("LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE")
        first = workspace.start("deploy", ENV, "-m", "v2")
        second = workspace.start("deploy", ENV, "-m", "v2")
        background += [first, second]
        _wait_for_lock_waiters(workspace.store, "blobs", 2)
        gate.rollback()
    results = [first.finish(), second.finish()]
    assert sorted(r.code for r in results) == [0, 5], "\n".join(r.describe() for r in results)
    loser = next(r for r in results if r.code == 5)
    assert "locked by crash-test (deploy, pid" in loser.err, loser.describe()


def _wait_for_lock_waiters(url: str, table: str, count: int, timeout: float = 10) -> None:
    """Until ``count`` processes wait to read ``table`` (or give up: a fixed store may not)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "select count(*) from pg_locks where not granted and relation = %s::regclass",
                (table,),
            ).fetchone()
            if waiting and waiting[0] >= count:
                return
            time.sleep(0.05)


# ---- a rollback while a deploy is baking -----------------------------------------------------


def test_rollback_during_a_bake_needs_force_and_the_deploy_stops(
    workspace_factory: MakeWorkspace, background: list[Running]
) -> None:
    workspace = workspace_factory()
    write_config(workspace.root, "directory", bake="10s")
    deploy = _start_baking_deploy(workspace, background)

    refused = workspace.run("rollback", ENV, "-m", "scores look wrong")
    assert refused.code == 5, refused.describe()
    assert f"locked by crash-test (deploy, pid {deploy.process.pid} " in refused.err
    assert "--force" in refused.err, refused.describe()
    _assert_serves(workspace, "v2", "after the refused rollback")

    forced = workspace.run("rollback", ENV, "--force", "-m", "scores look wrong")
    assert forced.code == 0, forced.describe()
    assert forced.seconds < 5, forced.describe()
    after_rollback = _target_state(workspace)
    stopped = deploy.finish(timeout=5)
    assert stopped.code not in (0, 3, 4), stopped.describe()
    assert "lost the lease" in stopped.err, stopped.describe()
    assert stopped.seconds < 10, "the deploy went on baking after it lost its lease"
    assert _target_state(workspace) == after_rollback, "the deploy touched the target after"
    _assert_serves(workspace, "v1", "after the forced rollback")

    broken = workspace.events("lease-broken")
    assert len(broken) == 1, broken
    assert broken[0]["data"]["purpose"] == "deploy", broken
    assert broken[0]["data"]["pid"] == deploy.process.pid, broken
    assert assert_recovered(workspace, "after the forced rollback") == "v1"
    report = workspace.status()
    assert (report["live_version"], report["last_good"]) == (1, 1), report


@pytest.mark.parametrize("good", [True, False], ids=["good-version", "failing-version"])
def test_a_deploy_that_lost_its_lease_in_its_last_pause_claims_nothing(
    workspace_factory: MakeWorkspace, background: list[Running], good: bool
) -> None:
    """Bake 2 s, interval 3 s: one round, one pause, the final round; break it in the pause."""
    workspace = workspace_factory()
    write_config(workspace.root, "directory", bake="2s", interval="3s")
    workspace.write("v2", good=good)
    deploy = workspace.start("deploy", ENV, "-m", "v2")
    background.append(deploy)
    deploy.wait_for_line("bake round 1")
    forced = workspace.run("rollback", ENV, "--force", "-m", "v2 looks wrong, not waiting")
    assert forced.code == 0, forced.describe()
    after_rollback = _target_state(workspace)
    stopped = deploy.finish(timeout=10)
    report = workspace.status()
    assert (report["live_version"], report["last_good"]) == (1, 1), (report, stopped.describe())
    assert _target_state(workspace) == after_rollback, "the deploy touched the target after"
    assert stopped.code not in (0, 3, 4), stopped.describe()
    assert "lost the lease" in stopped.err, stopped.describe()
    again = workspace.run("rollback", ENV, "-m", "once more")
    _assert_serves(workspace, "v1", f"a later rollback brought v2 back: {again.describe()}")


# ---- a dead or stuck deploy never blocks a rollback ------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_rollback_takes_over_from_a_deploy_killed_mid_bake(
    workspace_factory: MakeWorkspace, background: list[Running], store: str
) -> None:
    workspace = workspace_factory(store=store)
    write_config(workspace.root, "directory", bake="10s")
    deploy = _start_baking_deploy(workspace, background)
    assert deploy.kill()
    deploy.finish()
    rollback = workspace.run("rollback", ENV, "-m", "the deploy died")
    assert rollback.code == 0, rollback.describe()
    assert rollback.seconds < 5, rollback.describe()
    _assert_serves(workspace, "v1", "after taking over from a dead deploy")
    taken = workspace.events("lease-taken-over")
    assert taken and taken[-1]["data"]["pid"] == deploy.process.pid, taken
    assert not workspace.events("lease-broken")
    assert assert_recovered(workspace, "after the takeover") == "v1"


def test_rollback_takes_over_the_expired_lease_of_a_stuck_deploy(
    workspace_factory: MakeWorkspace, background: list[Running]
) -> None:
    """A deploy frozen (SIGSTOP) past its lease: rollback without --force; the deploy, thawed,
    finds its lease gone and stops without touching the target."""
    workspace = workspace_factory()
    # lease lifetime: max(lease, 3 * interval + slowest check timeout) = 2.5 s
    write_config(workspace.root, "directory", bake="10s", interval="0.5s", lease="1s", timeout="1s")
    # its first round is recorded and printed: from there to its pause between rounds it holds
    # no store transaction, so freezing it now never blocks the store
    deploy = _start_baking_deploy(workspace, background)
    deploy.process.send_signal(signal.SIGSTOP)
    try:
        refused = workspace.run("rollback", ENV)
        assert refused.code == 5, f"the lease was not live yet?\n{refused.describe()}"
        time.sleep(2.8)  # the thing under test: the frozen deploy's lease expires by time
        rollback = workspace.run("rollback", ENV, "-m", "the deploy is stuck")
        assert rollback.code == 0, rollback.describe()
        after_rollback = _target_state(workspace)
    finally:
        deploy.process.send_signal(signal.SIGCONT)
    stopped = deploy.finish(timeout=10)
    assert stopped.code not in (0, 3, 4), stopped.describe()
    assert "lost the lease" in stopped.err, stopped.describe()
    assert _target_state(workspace) == after_rollback, "the thawed deploy touched the target"
    _assert_serves(workspace, "v1", "after taking over from a stuck deploy")
    taken = workspace.events("lease-taken-over")
    assert taken and taken[-1]["data"]["pid"] == deploy.process.pid, taken
    assert not workspace.events("lease-broken")
    assert assert_recovered(workspace, "after the takeover") == "v1"


def test_status_during_a_deploy_reports_the_lock_and_changes_nothing(
    workspace_factory: MakeWorkspace, background: list[Running]
) -> None:
    """status is not a deploy: it does not wait for the lease, and says who holds it."""
    workspace = workspace_factory()
    write_config(workspace.root, "directory", bake="10s")
    deploy = _start_baking_deploy(workspace, background)
    before = _target_state(workspace)
    report = workspace.status()
    assert report["lock"] and "deploy" in report["lock"], json.dumps(report)
    assert report["live_version"] == 2, report
    assert _target_state(workspace) == before
    deploy.kill()
    deploy.finish()


def test_a_status_in_progress_does_not_refuse_a_rollback(
    workspace_factory: MakeWorkspace, background: list[Running]
) -> None:
    """A status that takes one second to reconcile (frozen while it holds the lease, so the
    window is the same on every run); a rollback asked for meanwhile still rolls back."""
    workspace = workspace_factory(stage="v1v2")
    status = _status_caught_holding_the_lease(workspace, background)
    if status is None:  # status no longer holds the lease: nothing can refuse the rollback
        rollback = workspace.run("rollback", ENV, "-m", "scores dropped to zero")
    else:
        resume = threading.Timer(1.0, status.process.send_signal, (signal.SIGCONT,))
        resume.start()
        try:
            rollback = workspace.run("rollback", ENV, "-m", "scores dropped to zero")
        finally:
            resume.join()
        assert status.finish().code == 0
    assert rollback.code == 0, rollback.describe()
    _assert_serves(workspace, "v1", "after the rollback")


def _status_caught_holding_the_lease(
    workspace: Workspace, background: list[Running]
) -> Running | None:
    """Start ``status`` until one is frozen (SIGSTOP) while it holds the environment's lease;
    None when none of them was ever seen holding it."""
    database = workspace.root / ".lastgood" / "store.db"
    for _attempt in range(20):
        status = workspace.start("status", ENV, "--json")
        background.append(status)
        pid = status.process.pid
        while status.process.poll() is None:
            if _lease_holder(database) == pid:
                status.process.send_signal(signal.SIGSTOP)
                if _lease_holder(database) == pid:
                    return status
                status.process.send_signal(signal.SIGCONT)
            time.sleep(0.001)
        status.finish()
    return None


def _lease_holder(database: Path) -> int | None:
    """The pid holding ``env:staging`` now, read straight from the SQLite store."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        ) as db:
            row = db.execute("select pid from leases where name = 'env:staging'").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])
