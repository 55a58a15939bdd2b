"""``lastgood bisect``: the first bad version, found by binary search, with nothing left changed.

Versions 1..N hold ``health.txt`` ok up to a first bad one and fail after it; the preflight (or
the check, with --live) reads it. Large histories are written through the store's own API in
this process (recording 1,000 versions through the CLI would take minutes); the bisect itself
always runs as the real command.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable

from lastgood.bundle import Bundle
from tests.conftest import LASTGOOD, Workspace, eventually

PREFLIGHT = """
[[env.staging.preflight]]
name = "health-ok"
type = "command"
run = 'grep -qx ok "$LASTGOOD_PATH/health.txt"'
timeout = "5s"
"""


def history(ws: Workspace, count: int, first_bad: int) -> None:
    """Versions v1..v{count}: healthy before ``first_bad``, failing from it on."""
    project = ws.project()
    for number in range(1, count + 1):
        health = b"ok\n" if number < first_bad else b"fail\n"
        files = {"health.txt": health, "scoring/thresholds.yaml": b"marker: %d\n" % number}
        project.store.add_version(Bundle(files), author="ana", message=f"change {number}",
                                  source="cli")  # fmt: skip


def bisected(ws: Workspace, *args: str) -> dict[str, object]:
    done = ws.run("bisect", "staging", *args, "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_preflights_find_the_first_bad_version_and_nothing_live_changes(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = workspace(store=store_url, bake="0s")
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + PREFLIGHT)
    history(ws, 20, first_bad=13)
    assert ws.run("deploy", "staging", "--version", "v5").returncode == 0
    releases = sorted(p.name for p in (ws.base / "live" / "releases").iterdir())

    done = ws.run("bisect", "staging", "--good", "v1", "--bad", "v20")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("v13 is the first bad version (after v12)\n")
    assert "  by ana at " in done.stdout and "  change 13\n" in done.stdout
    assert "-ok\n+fail" in done.stdout and "-marker: 12\n+marker: 13" in done.stdout
    assert "v10: good" in done.stderr  # each round as it is judged
    assert sorted(p.name for p in (ws.base / "live" / "releases").iterdir()) == releases
    assert ws.project().store.env_state("staging").live_version == 5
    events = json.loads(ws.run("history", "staging", "--json").stdout)["events"]
    finished = [e for e in events if e["kind"] == "bisect-finished"]
    assert len(finished) == 1 and finished[0]["version"] == 13
    assert finished[0]["data"]["last_good"] == 12 and finished[0]["data"]["mode"] == "preflight"


def test_a_thousand_versions_take_at_most_eleven_rounds(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(bake="0s")
    history(ws, 1000, first_bad=637)
    run = 'grep -qx ok "$LASTGOOD_PATH/health.txt"'
    found = bisected(ws, "--good", "v1", "--bad", "v1000", "--run", run)
    assert found["first_bad"]["number"] == 637  # type: ignore[index]
    assert found["last_good"] == 636
    assert len(found["rounds"]) <= 11, found["rounds"]  # type: ignore[arg-type]
    assert found["candidates"] == 998


def test_run_skips_with_125_and_says_when_skips_leave_it_undecided(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(bake="0s")
    history(ws, 12, first_bad=7)
    skip_six = (
        'case "$LASTGOOD_VERSION" in v6) exit 125;; esac; grep -qx ok "$LASTGOOD_PATH/health.txt"'
    )
    found = bisected(ws, "--good", "v1", "--bad", "v12", "--run", skip_six)
    assert found["first_bad"]["number"] == 7  # type: ignore[index]
    skip_six_and_seven = skip_six.replace("v6)", "v6|v7)")
    found = bisected(ws, "--good", "v1", "--bad", "v12", "--run", skip_six_and_seven)
    assert found["first_bad"]["number"] == 8  # type: ignore[index]
    assert found["undecided"] == [6, 7]
    said = ws.run("bisect", "staging", "--good", "v1", "--bad", "v12", "--run", skip_six_and_seven)
    assert "v8 is the first bad version (after v5)" in said.stdout
    assert "or one of v6, v7: skipped" in said.stdout


def test_bad_requests_are_refused_before_anything_runs(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace(bake="0s")
    history(ws, 5, first_bad=3)
    backwards = ws.run("bisect", "staging", "--good", "v4", "--bad", "v2")
    assert backwards.returncode == 2 and "is not older than --bad" in backwards.stderr
    nothing = ws.run("bisect", "staging", "--good", "v1", "--bad", "v5")
    assert nothing.returncode == 2 and "no preflight checks to judge" in nothing.stderr
    assert "--run CMD" in nothing.stderr
    killed = ws.run("bisect", "staging", "--good", "v1", "--bad", "v5", "--run", "exit 200")
    assert killed.returncode == 1 and "a code above 127" in killed.stderr
    events = json.loads(ws.run("history", "staging", "--json").stdout)["events"]
    assert not [e for e in events if e["kind"] == "bisect-finished"]


def test_live_deploys_each_candidate_and_puts_back_what_was_live(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = workspace(store=store_url, bake="0.2s", interval="0.05s")
    history(ws, 9, first_bad=6)
    assert ws.run("deploy", "staging", "--version", "v3").returncode == 0
    assert ws.run("deploy", "staging", "--version", "v4").returncode == 0
    before = ws.project().store.env_state("staging")

    found = bisected(ws, "--good", "v1", "--bad", "v9", "--live")

    assert found["first_bad"]["number"] == 6  # type: ignore[index]
    assert found["restored"] == "v4"
    after = ws.project().store.env_state("staging")
    assert (after.live_version, after.last_good) == (before.live_version, before.last_good)
    assert (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text() == (
        "marker: 4\n"
    )
    assert not [d for d in ws.project().store.deployments("staging") if d.status == "running"]


def test_live_is_refused_on_a_protected_environment(workspace: Callable[..., Workspace]) -> None:
    ws = workspace(bake="0s")
    config = (ws.root / "lastgood.toml").read_text()
    (ws.root / "lastgood.toml").write_text(config.replace("bake =", "protected = true\nbake ="))
    history(ws, 4, first_bad=3)
    refused = ws.run("bisect", "staging", "--good", "v1", "--bad", "v4", "--live")
    assert refused.returncode == 5 and "staging is protected" in refused.stderr
    assert "bisect without --live" in refused.stderr


def test_live_interrupted_puts_back_what_was_live(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = workspace(store=store_url, bake="3s", interval="0.1s")
    history(ws, 9, first_bad=6)
    assert ws.run("deploy", "staging", "--version", "v2").returncode == 0
    running = subprocess.Popen(
        [LASTGOOD, "-C", str(ws.root), "--store", store_url, "bisect", "staging",
         "--good", "v1", "--bad", "v9", "--live"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    project = ws.project()
    eventually(lambda: project.store.env_state("staging").live_version not in (None, 2))
    time.sleep(0.3)  # inside the first candidate's bake
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=60)
    assert running.returncode != 0, err
    state = project.store.env_state("staging")
    assert state.live_version == 2, err
    assert (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text() == (
        "marker: 2\n"
    )
    assert not [d for d in project.store.deployments("staging") if d.status == "running"]


def test_git_ends_bisect_the_commits_between_in_historys_order(
    workspace: Callable[..., Workspace],
) -> None:
    """Versions imported after the fact are numbered after the one deployed first; a bisect
    between two commits follows the history, not the numbers."""
    from tests.test_git import commit_all, repo

    ws = repo(workspace, bake="0s")
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + PREFLIGHT)
    ws.healthy("one")
    commit_all(ws, "one")
    assert ws.run("deploy", "staging", "--commit", "HEAD").returncode == 0
    for marker in ("two", "three"):
        ws.healthy(marker)
        commit_all(ws, marker)
    ws.broken("four")
    commit_all(ws, "four breaks it")
    ws.broken("five")
    commit_all(ws, "five")
    assert ws.run("deploy", "staging", "--commit", "HEAD").returncode == 5  # preflight: v2
    assert ws.run("import-git").returncode == 0  # two, three, four: v3-v5

    found = bisected(ws, "--good", "git:HEAD~4", "--bad", "git:HEAD")

    assert found["over"] == "commits" and found["candidates"] == 3
    assert found["first_bad"]["message"] == "four breaks it"  # type: ignore[index]
    assert found["last_good"] == 4  # "three", imported as v4
