"""``[git] refs = true``: every switch moves ``refs/lastgood/ENV/live`` and ``…/last-good``.

Real repositories in temporary folders, the real ``git``, the real CLI (and a real server):
the refs are read back with ``git for-each-ref`` after each command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import FAST, Workspace
from tests.test_git import commit_all, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

LIVE = "refs/lastgood/staging/live"
LAST_GOOD = "refs/lastgood/staging/last-good"


def refs_repo(make: Callable[..., Workspace], refs: bool = True, **options: str) -> Workspace:
    """A workspace in ``ws/`` of a git repository, with ``[git] refs = true`` (by default);
    versions judged in one round (FAST) unless ``options`` say otherwise."""
    ws = make(**{**FAST, **options})
    if refs:
        with (ws.root / "lastgood.toml").open("a") as config:
            config.write("\n[git]\nrefs = true\n")
    git(ws.base, "init", "-q", "-b", "main")
    (ws.base / "README.md").write_text("not configuration: outside the workspace\n")
    commit_all(ws, "start")
    return ws


def refs_of(ws: Workspace) -> dict[str, str]:
    """Every ref lastgood keeps, by name: the commit it names."""
    out = git(ws.base, "for-each-ref", "--format=%(refname) %(objectname)", "refs/lastgood/")
    return dict(line.split() for line in out.splitlines())


def deployed(ws: Workspace, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = ws.run("deploy", "staging", *args)
    assert done.returncode == code, done.stderr
    return done


def events_of(ws: Workspace, kind: str) -> list[dict[str, object]]:
    shown = json.loads(ws.run("history", "staging", "--json").stdout)
    return [event for event in shown["events"] if event["kind"] == kind]


def test_every_switch_moves_the_environment_refs(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = refs_repo(workspace, store=store_url)
    ws.healthy("one")
    first = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}
    ws.healthy("two")
    second = commit_all(ws, "two")
    deployed(ws, "--commit", "HEAD")
    assert refs_of(ws) == {LIVE: second, LAST_GOOD: second}

    ws.broken("three")
    commit_all(ws, "three")
    deployed(ws, "--commit", "HEAD", code=3)  # the automatic rollback puts the refs back too
    assert refs_of(ws) == {LIVE: second, LAST_GOOD: second}

    back = ws.run("rollback", "staging")
    assert back.returncode == 0, back.stderr
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}  # v2 withdrawn: last good is v1
    decorated = git(ws.base, "log", "--oneline", "--decorate", "--all", "--clear-decorations")
    assert f"{first[:7]} ({LIVE}, {LAST_GOOD}) one" in decorated, decorated
    assert events_of(ws, "git-refs-failed") == []


def test_a_version_no_commit_holds_exactly_deletes_its_ref(
    workspace: Callable[..., Workspace],
) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    first = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    ws.healthy("not committed")
    deployed(ws)  # the folder: a version of HEAD with uncommitted changes (git_dirty)
    assert refs_of(ws) == {}
    assert ws.run("rollback", "staging").returncode == 0
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}
    reverted = ws.run("revert", "staging", "scoring/thresholds.yaml", "--from", "v2", "-m", "why")
    assert reverted.returncode == 0, reverted.stderr  # a new version, taken from no commit
    assert refs_of(ws) == {}


def test_an_applied_change_request_moves_the_refs(workspace: Callable[..., Workspace]) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    first = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    with (ws.root / "lastgood.toml").open("a") as config:
        config.write('\n[env.staging.approval]\napprovers = ["sam"]\n')
    ws.healthy("two")
    second = commit_all(ws, "two")
    opened = ws.run("request", "staging", "--version", "git:HEAD", "-m", "two")
    assert opened.returncode == 0, opened.stderr
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}  # a proposal moves nothing
    assert ws.run("request", "approve", "1", env={"LASTGOOD_AUTHOR": "sam"}).returncode == 0

    applied = ws.run("request", "apply", "1")

    assert applied.returncode == 0, applied.stderr
    assert refs_of(ws) == {LIVE: second, LAST_GOOD: second}


def test_a_switch_through_a_server_moves_the_servers_refs(
    workspace: Callable[..., Workspace], serve: Callable[..., object]
) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    head = commit_all(ws, "one")
    server = serve(ws)
    token = server.token("deployer")  # type: ignore[attr-defined]
    remote = {"LASTGOOD_SERVER": server.url, "LASTGOOD_TOKEN": token}  # type: ignore[attr-defined]
    done = ws.run("deploy", "staging", "--commit", "HEAD", env=remote)
    assert done.returncode == 0, done.stderr
    assert refs_of(ws) == {LIVE: head, LAST_GOOD: head}


def test_a_git_failure_never_fails_a_rollback_and_status_catches_up(
    workspace: Callable[..., Workspace],
) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    first = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    ws.healthy("two")
    second = commit_all(ws, "two")
    deployed(ws, "--commit", "HEAD")
    lock = ws.base / ".git" / "refs" / "lastgood" / "staging" / "live.lock"
    lock.write_text("")  # another git holds the ref: every update of it fails

    back = ws.run("rollback", "staging")

    assert back.returncode == 0, back.stderr
    assert "restored v1 on staging" in back.stdout
    assert "git-refs-failed: refs/lastgood/staging/* not updated" in back.stderr
    assert "Traceback" not in back.stderr
    assert refs_of(ws) == {LIVE: second, LAST_GOOD: second}  # behind the ledger, never ahead
    [warning] = events_of(ws, "git-refs-failed")
    assert "live.lock" in str(warning["message"])
    lock.unlink()
    status = ws.run("status", "staging")
    assert status.returncode == 0, status.stderr
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}


def test_an_offline_rollback_moves_no_ref_until_the_ledger_records_it(
    workspace: Callable[..., Workspace],
) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    first = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    ws.healthy("two")
    second = commit_all(ws, "two")
    deployed(ws, "--commit", "HEAD")
    offline = ws.run("rollback", "staging", "--offline")
    assert offline.returncode == 0, offline.stderr
    assert refs_of(ws) == {LIVE: second, LAST_GOOD: second}  # no store, no project, no git
    # the next deploy records it in the ledger first; v1 is then live already: no switch
    again = deployed(ws, "--version", "v1")
    assert "recorded the offline rollback on staging: v2 → v1" in again.stderr
    assert "v1 is already live" in again.stdout
    assert refs_of(ws) == {LIVE: first, LAST_GOOD: first}


def test_status_says_when_the_refs_cannot_be_set(workspace: Callable[..., Workspace]) -> None:
    ws = workspace()  # refs asked for, but the workspace is in no repository
    with (ws.root / "lastgood.toml").open("a") as config:
        config.write("\n[git]\nrefs = true\n")
    ws.healthy("one")
    done = deployed(ws)
    assert done.stderr.count("git-refs-failed") == 1, done.stderr  # once, not at every event
    assert "not a git repository" in done.stderr
    status = ws.run("status", "staging")
    assert status.returncode == 0 and "not updated" in status.stdout, status.stdout


def test_a_commit_the_repository_lost_deletes_its_ref_and_says_to_fetch(
    workspace: Callable[..., Workspace],
) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    commit_all(ws, "one")
    git(ws.base, "checkout", "-q", "-b", "side")
    ws.healthy("side")
    side = commit_all(ws, "on a branch deleted later")
    deployed(ws, "--commit", "HEAD")
    git(ws.base, "checkout", "-q", "main")
    git(ws.base, "branch", "-q", "-D", "side")
    for ref in (LIVE, LAST_GOOD):
        git(ws.base, "update-ref", "-d", ref)
    git(ws.base, "reflog", "expire", "--expire=now", "--all")
    git(ws.base, "gc", "-q", "--prune=now")

    status = ws.run("status", "staging")

    assert status.returncode == 0, status.stderr
    assert f"does not hold commit {side[:12]}" in status.stdout and "git fetch" in status.stdout
    assert refs_of(ws) == {}


def test_a_drill_moves_the_refs_once_when_it_ends(workspace: Callable[..., Workspace]) -> None:
    ws = refs_repo(workspace)
    ws.healthy("one")
    head = commit_all(ws, "one")
    deployed(ws, "--commit", "HEAD")
    trace = ws.base / "git-trace.txt"

    done = ws.run("drill", "staging", env={"GIT_TRACE": str(trace)})

    assert done.returncode == 0, done.stderr
    updates = [line for line in trace.read_text().splitlines() if "git update-ref" in line]
    assert len(updates) == 1, updates  # not at the variant's switch, nor at its rollback
    assert refs_of(ws) == {LIVE: head, LAST_GOOD: head}


def test_refs_are_off_unless_asked_for_and_cost_a_rollback_nothing(
    workspace: Callable[..., Workspace],
) -> None:
    """Without ``refs = true`` a rollback loads nothing of git; with it, the one module."""
    for refs in (False, True):
        ws = refs_repo(workspace, refs=refs)
        ws.healthy("one")
        commit_all(ws, "one")
        deployed(ws, "--commit", "HEAD")
        ws.healthy("two")
        commit_all(ws, "two")
        deployed(ws, "--commit", "HEAD")

        done = ws.run("rollback", "staging", env={"PYTHONPROFILEIMPORTTIME": "1"})

        assert done.returncode == 0, done.stderr
        loaded = {
            line.split("|")[-1].strip()
            for line in done.stderr.splitlines()
            if "import time:" in line
        }
        assert ("lastgood.gitrefs" in loaded) is refs
        assert ("lastgood.gitrepo" in loaded) is refs
        assert bool(refs_of(ws)) is refs


def test_a_long_lived_process_sets_the_refs_at_every_switch(
    workspace: Callable[..., Workspace],
) -> None:
    """One project for many switches, as the watcher and the server hold: what it wrote
    before never stops it from setting the refs again when a new switch ends."""
    from lastgood.operations.deploy import deploy
    from lastgood.operations.drill import drill

    ws = refs_repo(workspace)
    ws.healthy("one")
    head = commit_all(ws, "one")
    project = ws.project()  # type: ignore[no-untyped-call]
    assert deploy(project, "staging", ref="git:HEAD").exit_code == 0
    assert refs_of(ws) == {LIVE: head, LAST_GOOD: head}
    for ref in (LIVE, LAST_GOOD):  # someone removes them; the ledger has not moved
        git(ws.base, "update-ref", "-d", ref)

    assert drill(project, "staging").passed

    assert refs_of(ws) == {LIVE: head, LAST_GOOD: head}
