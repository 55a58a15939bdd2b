"""The ``command`` target end to end: the recipe of docs/targets.md against a real HTTP service.

Every test starts the small scoring API of ``tests/scoring_api.py`` on 127.0.0.1, writes the
recipe's ``lastgood.toml`` (taken from the docs, only its bake and interval shortened) and
drives the real ``lastgood`` CLI in subprocesses; the commands in the config are real ``curl``
runs against the service. Store: SQLite, and PostgreSQL where the ledger's truth matters.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import scoring_api
from tests.conftest_crash_helpers import KILLED
from tests.scoring_api import ScoringApi
from tests.tool_workspace import ToolWorkspace, sized_for_tests

LASTGOOD = str(Path(sys.executable).with_name("lastgood"))
DOCS = Path(__file__).resolve().parent.parent / "docs"
ENV = "production"
GOOD = b'{"threshold": 0.62}\n'
BETTER = b'{"threshold": 0.58}\n'
BAD = b'{"threshold": 1.5}\n'
DOCUMENT = "scoring/threshold.json"
ROLLED_BACK = 3  # exit code: failed its checks, last known good restored


def recipe() -> str:
    """The recipe's lastgood.toml from docs/targets.md, with test-sized bake and interval."""
    text = (DOCS / "targets.md").read_text(encoding="utf-8")
    section = text.split("## Recipe: a scoring threshold behind an HTTP API", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None, "the recipe has no toml block"
    return sized_for_tests(block.group(1))


def recipe_output() -> list[str]:
    """The output lines the recipe of docs/targets.md shows for the failing deploy, without
    the commands typed and the elided lines."""
    text = (DOCS / "targets.md").read_text(encoding="utf-8")
    section = text.split("## Recipe: a scoring threshold behind an HTTP API", 1)[1]
    block = re.search(r"What happens:\n\n```text\n(.*?)```", section, re.S)
    assert block is not None, "the recipe shows no output"
    lines = block.group(1).split('$ lastgood deploy production -m "stricter"', 1)[1]
    return [line for line in lines.splitlines()[1:] if line and line[0] not in "$…{"]


def _timeless(line: str) -> str:
    """A line of output with its clock time and durations blanked, to compare with the docs."""
    line = re.sub(r"^\d\d:\d\d:\d\d ", "", line)
    return re.sub(r"\d+ ms", "N ms", line)


@dataclass
class Setup(ToolWorkspace):
    """A workspace using the recipe against one running scoring API."""

    root: Path
    api: ScoringApi
    store: str | None = None
    author = "command-target-test"

    def tool_env(self) -> dict[str, str]:
        return {"SCORING_URL": self.api.url, "SCORING_TOKEN": scoring_api.TOKEN}

    def write(self, document: bytes) -> None:
        (self.root / DOCUMENT).write_bytes(document)

    def deploy(self, document: bytes, message: str, code: int = 0) -> str:
        self.write(document)
        return self.said("deploy", ENV, "-m", message, code=code)


def make_setup(base: Path, api: ScoringApi, config: str, store: str | None = None) -> Setup:
    root = base / "ws"
    (root / "scoring").mkdir(parents=True)
    (root / "lastgood.toml").write_text(config)
    return Setup(root, api, store)


@pytest.fixture
def api() -> Iterator[ScoringApi]:
    with scoring_api.serving() as running:
        yield running


@pytest.fixture
def setup(tmp_path: Path, api: ScoringApi) -> Setup:
    return make_setup(tmp_path, api, recipe())


def served(api: ScoringApi) -> tuple[bytes, str]:
    return api.document, api.version


# ---- the promise of the issue: a bad value caught and restored by itself ----------------------


def test_bad_threshold_is_caught_and_the_old_value_restored(
    tmp_path: Path, api: ScoringApi, store_url: str
) -> None:
    setup = make_setup(tmp_path, api, recipe(), store_url)
    setup.deploy(GOOD, "threshold 0.62")
    assert served(api) == (GOOD, "v1")
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["drifted"]) == (1, 1, False)

    said = setup.deploy(BAD, "stricter", code=ROLLED_BACK)
    assert "threshold-sane" in said and "v1" in said
    printed = [_timeless(line) for line in said.splitlines()]
    shown = [_timeless(line) for line in recipe_output()]
    assert len(shown) >= 4
    for line in shown:  # the docs show what is really printed
        assert line in printed, f"{line}\nnot in\n{said}"
    assert served(api) == (GOOD, "v1"), "the API must serve the old value again"
    assert api.writes == ["v1", "v2", "v1"]
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["live_verdict"]) == (1, 1, "good")
    assert not report["drifted"]
    restore = next(d for d in setup.history()["deployments"] if d["kind"] == "auto-rollback")
    assert restore["status"] == "succeeded" and restore["verified_at"] is not None


def test_manual_rollback_pushes_the_kept_files_again(setup: Setup, api: ScoringApi) -> None:
    setup.deploy(GOOD, "one")
    setup.deploy(BETTER, "two")
    assert served(api) == (BETTER, "v2")
    done = setup.ok("rollback", ENV, "-m", "the scorer misbehaves")
    assert "v1" in done.stdout + done.stderr
    assert served(api) == (GOOD, "v1")
    assert setup.status()["live_version"] == 1


def test_offline_rollback_uses_the_kept_versions_without_the_store(
    setup: Setup, api: ScoringApi
) -> None:
    setup.deploy(GOOD, "one")
    setup.deploy(BETTER, "two")
    store = setup.root / ".lastgood" / "store.db"
    hidden = store.with_name("elsewhere.db")
    store.rename(hidden)  # the store is unreachable; the tool is not
    try:
        done = setup.ok("rollback", ENV, "--offline", "-m", "store down")
    finally:
        hidden.rename(store)
    assert "offline" in done.stdout + done.stderr
    assert served(api) == (GOOD, "v1")
    report = setup.status()  # the next command records the offline rollback
    assert report["live_version"] == 1
    kinds = [d["kind"] for d in setup.history()["deployments"]]
    assert "offline-rollback" in kinds


# ---- drift: what the tool serves, read back -------------------------------------------------


def test_a_label_lastgood_did_not_give_shows_live_unknown(setup: Setup, api: ScoringApi) -> None:
    setup.deploy(GOOD, "one")
    api.edit_by_hand(b'{"threshold": 0.7}\n', version="published-from-admin-page")
    report = setup.status()
    assert report["live_unknown"] and report["drifted"]
    assert any(w.startswith("live: unknown (the tool serves something") for w in report["warnings"])
    text = setup.ok("status", ENV).stdout
    assert "unknown (lastgood put v1" in text
    setup.ok("deploy", ENV, "--version", "v1")  # pushes it again
    assert served(api) == (GOOD, "v1")
    assert not setup.status()["drifted"]


def test_a_value_edited_under_the_same_label_is_drift_through_fetch(
    setup: Setup, api: ScoringApi
) -> None:
    setup.deploy(GOOD, "one")
    api.edit_by_hand(b'{"threshold": 0.99}\n')  # the label still says v1
    report = setup.status()
    assert report["drifted"] and not report["live_unknown"]
    assert report["live_version"] == 1


def test_the_watcher_restores_drift_by_pushing_again(setup: Setup, api: ScoringApi) -> None:
    setup.deploy(GOOD, "one")
    api.edit_by_hand(b'{"threshold": 0.99}\n')
    done = setup.ok("watch", "--once", "--json")
    assert "restored" in done.stdout, done.stdout
    assert served(api) == (GOOD, "v1")
    events = [e for e in setup.history()["events"] if e["kind"] == "drift-detected"]
    assert events and "0.99" in events[0]["data"]["diff"]


# ---- failures: slow, broken, secret ---------------------------------------------------------


def test_a_slow_api_times_out_and_names_the_command(tmp_path: Path, api: ScoringApi) -> None:
    setup = make_setup(tmp_path, api, recipe().replace('timeout = "10s"', 'timeout = "1s"'))
    setup.deploy(GOOD, "one")
    api.mode, api.delay = "slow", 3.0
    setup.write(BETTER)
    done = setup.run("deploy", ENV, "-m", "two")
    api.mode = "normal"
    assert done.returncode != 0
    assert "the live command of production `printf" in done.stderr
    assert "gave no answer within 1 s and was stopped" in done.stderr
    assert scoring_api.TOKEN not in done.stdout + done.stderr
    assert served(api) == (GOOD, "v1")


def test_a_push_that_times_out_but_lands_later_is_recorded_truthfully(
    tmp_path: Path, api: ScoringApi
) -> None:
    config = recipe().replace('timeout = "10s"', 'timeout = "1s"')
    setup = make_setup(tmp_path, api, config.replace("idempotent = true", "idempotent = false"))
    setup.deploy(GOOD, "one")
    api.mode, api.delay = "slow-writes", 1.5
    setup.write(BETTER)
    done = setup.run("deploy", ENV, "-m", "two")
    assert done.returncode == 1, done.stderr  # not 5: it may have changed what is live
    assert "the activate command of production" in done.stderr
    assert "gave no answer within 1 s" in done.stderr and "not retried" in done.stderr
    assert "v1 is still live on production for now, but the push of v2 may still land" in (
        done.stderr
    )
    timed_out = setup.history()["deployments"][0]
    assert timed_out["status"] == "failed" and "gave no answer" in timed_out["detail"]
    deadline = time.monotonic() + 10
    while api.version != "v2" and time.monotonic() < deadline:
        time.sleep(0.05)  # the API applies the write after curl gave up
    api.mode = "normal"
    assert served(api) == (BETTER, "v2")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (2, 2)
    assert any("never verified" in warning for warning in report["warnings"])


def test_a_failing_api_is_a_clear_error_and_retried_only_when_idempotent(
    tmp_path: Path, api: ScoringApi
) -> None:
    setup = make_setup(tmp_path, api, recipe())
    setup.deploy(GOOD, "one")
    api.mode = "error"
    setup.write(BETTER)
    done = setup.run("deploy", ENV, "-m", "two")
    assert done.returncode == 5, done.stderr  # refused: nothing live changed
    assert "the activate command of production `printf" in done.stderr
    assert "exited 22" in done.stderr and "tried 3 times" in done.stderr
    assert "nothing live changed (v1 still live on production)" in done.stderr
    failed = setup.history()["deployments"][0]  # a failure of its own, not a crash
    assert failed["status"] == "failed" and failed["finished_at"] is not None
    assert "exited 22" in failed["detail"] and "500" in failed["detail"]
    api.mode = "normal"
    assert served(api) == (GOOD, "v1")
    assert setup.status()["live_version"] == 1

    once = make_setup(
        tmp_path / "once", api, recipe().replace("idempotent = true", "idempotent = false")
    )
    once.deploy(GOOD, "one")
    api.mode = "error"
    once.write(BETTER)
    done = once.run("deploy", ENV, "-m", "two")
    api.mode = "normal"
    assert "not retried" in done.stderr


def _page_standing(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """How the server's page would show production now (read in this process, as it does)."""
    from lastgood.operations.status import status
    from lastgood.project import Project
    from lastgood.server.web import standing_of

    for name, value in setup.environ().items():
        monkeypatch.setenv(name, value)
    project = Project.open(setup.root, store_url=setup.store, actor="page")
    try:
        found = status(project, ENV, repair=False)[0]
    finally:
        project.close()
    standing = standing_of(found, None)
    return standing.look, standing.words


def test_status_with_the_tool_down_shows_the_ledger_and_asks_it_once(
    tmp_path: Path, api: ScoringApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = tmp_path / "asked"
    config = recipe().replace("live = '''", f"live = '''echo asked >> {asked}; ", 1)
    config += '\n[env.staging]\ntarget = { type = "directory", path = "../live" }\n'
    setup = make_setup(tmp_path, api, config)
    setup.deploy(GOOD, "one")
    asked.unlink()
    url, api.url = api.url, "http://127.0.0.1:9"  # nothing listens there: curl exits 7
    try:
        done = setup.ok("status")  # every environment, the others too
        reports = {r["env"]: r for r in json.loads(setup.ok("status", "--json").stdout)}
        times_asked = asked.read_text().count("asked")
        page = _page_standing(setup, monkeypatch)
    finally:
        api.url = url
    assert page == ("incident", "incident: the target could not be read, so what it serves is "
                    "unknown")  # not "nothing live yet" on the web page  # fmt: skip
    assert times_asked == 2  # once per status, not once per question
    said = done.stdout
    assert (
        "live          unknown (the target could not be read: the live command of production"
        in (said)
    )
    assert "exited 7" in said and "staging  [directory" in said
    assert "could not be read, so what it serves is unknown" in said
    assert scoring_api.TOKEN not in said + done.stderr
    report = reports["production"]
    assert "exited 7" in report["unreachable"]
    assert (report["ledger_version"], report["last_good"], report["live_version"]) == (1, 1, None)
    assert reports["staging"]["unreachable"] is None
    events = setup.history()["events"]
    failed = [e for e in events if e["kind"] == "target-recovery-failed"]
    assert failed and "could not check the target of production" in failed[0]["message"]
    assert not [e for e in events if e["kind"] == "target-recovered"]


def command_lines() -> list[str]:
    """The command line of every process now. One that ends meanwhile is left out: its /proc
    folder can vanish between the listing and the read (``Path.glob`` then raised
    ProcessLookupError out of its own ``stat``)."""
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def test_the_recipe_keeps_the_token_off_every_command_line(tmp_path: Path, api: ScoringApi) -> None:
    setup = make_setup(tmp_path, api, recipe())
    setup.deploy(GOOD, "one")
    api.mode, api.delay = "slow-writes", 1.0  # the push runs long enough to be seen
    setup.write(BETTER)
    process = subprocess.Popen(
        [LASTGOOD, "-C", str(setup.root), "deploy", ENV, "-m", "two"],
        env=setup.environ(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen: list[str] = []
    try:
        while process.poll() is None:
            seen.extend(command_lines())
    finally:  # a failure here must not leave the deploy running into the next test
        if process.poll() is None:
            process.kill()
        process.wait()
    api.mode = "normal"
    assert process.returncode == 0
    ours = [line for line in seen if api.url in line]  # other workspaces may run curl too
    assert any("curl" in line and "-H @-" in line and "X-Version" in line for line in ours)
    assert not [line for line in ours if scoring_api.TOKEN in line]


def test_secrets_never_reach_the_output_or_the_ledger(tmp_path: Path, api: ScoringApi) -> None:
    config = recipe().replace(
        "[env.production.target]\n",
        "[env.production.target]\n",
    )
    loud = re.sub(
        r"activate = '''.*?'''",
        "activate = '''echo \"pushing with $SCORING_TOKEN\" >&2; exit 7'''",
        config,
        flags=re.S,
    )
    setup = make_setup(tmp_path, api, loud)
    setup.write(GOOD)
    done = setup.run("deploy", ENV, "-m", "one")
    assert done.returncode != 0
    assert "pushing with ***" in done.stderr
    assert scoring_api.TOKEN not in done.stdout + done.stderr
    ledger = setup.ok("history", ENV, "--json").stdout
    assert scoring_api.TOKEN not in ledger


# ---- kill -9 between the push and the ledger ------------------------------------------------


@pytest.mark.parametrize("point", ["target.after-switch", "deploy.after-activate"])
def test_killed_between_push_and_ledger_is_reconciled_through_live(
    setup: Setup, api: ScoringApi, point: str
) -> None:
    setup.deploy(GOOD, "one")
    setup.write(BETTER)
    killed = setup.run("deploy", ENV, "-m", "two", failpoint=point)
    assert killed.returncode == KILLED, killed.stderr
    assert served(api) == (BETTER, "v2")  # the push happened, the ledger never heard of it
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (2, 2)
    assert not report["drifted"]
    deployments = setup.history()["deployments"]
    assert deployments[0]["status"] == "interrupted"
    setup.ok("rollback", ENV, "-m", "back")  # and the ledger is good enough to roll back on
    assert served(api) == (GOOD, "v1")


def test_killed_rollback_is_reconciled_through_live(setup: Setup, api: ScoringApi) -> None:
    setup.deploy(GOOD, "one")
    setup.deploy(BETTER, "two")
    killed = setup.run("rollback", ENV, "-m", "back", failpoint="rollback.after-activate")
    assert killed.returncode == KILLED, killed.stderr
    assert served(api) == (GOOD, "v1")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (1, 1)


# ---- the configuration is checked when it is read -------------------------------------------


def test_a_misspelt_option_stops_every_command_with_a_suggestion(
    tmp_path: Path, api: ScoringApi
) -> None:
    setup = make_setup(tmp_path, api, recipe().replace("\nfetch = ", "\nfetsh = "))
    done = setup.run("status", ENV)
    assert done.returncode == 2
    assert "unknown option env.production.target.fetsh" in done.stderr
    assert "did you mean env.production.target.fetch?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("cwd", ["nonexistent", "scoring/threshold.json"])
def test_a_cwd_that_is_not_a_folder_stops_every_command(
    tmp_path: Path, api: ScoringApi, cwd: str
) -> None:
    config = recipe().replace('type = "command"\n', f'type = "command"\ncwd = "{cwd}"\n', 1)
    setup = make_setup(tmp_path, api, config)
    setup.write(GOOD)
    done = setup.run("status", ENV)  # status runs no command of the target's before it fails
    assert done.returncode == 2, done.stderr
    why = "does not exist" if cwd == "nonexistent" else "is a file, not a folder"
    assert f"env.production.target.cwd = '{cwd}': {setup.root / cwd} {why}" in done.stderr
    assert "create that folder" in done.stderr and "Traceback" not in done.stderr
    ok = make_setup(tmp_path / "ok", api, config.replace(f'cwd = "{cwd}"', 'cwd = "scoring"'))
    ok.deploy(GOOD, "runs in scoring/")


# ---- drills ---------------------------------------------------------------------------------


def test_a_drill_pushes_a_broken_threshold_and_the_good_one_comes_back(
    tmp_path: Path, api: ScoringApi
) -> None:
    config = '[versioning]\nexclude = ["drills/**"]\n\n' + recipe()
    config += (
        '\n[env.production.drill]\nfiles = { "scoring/threshold.json" = "drills/strict.json" }\n'
    )
    setup = make_setup(tmp_path, api, config)
    (setup.root / "drills").mkdir()
    (setup.root / "drills" / "strict.json").write_bytes(BAD)
    setup.deploy(GOOD, "one")
    done = setup.ok("drill", ENV)
    assert "drill passed" in done.stdout + done.stderr
    assert served(api) == (GOOD, "v1")
    assert api.writes[-2:] == ["v2", "v1"]
    assert setup.status()["live_version"] == 1


# ---- two machines, one store ----------------------------------------------------------------


def test_a_version_another_machine_put_live_is_reported_not_lied_about(
    tmp_path: Path, api: ScoringApi, pg_url: str
) -> None:
    laptop = make_setup(tmp_path / "laptop", api, recipe(), pg_url)
    runner = make_setup(tmp_path / "runner", api, recipe(), pg_url)
    laptop.deploy(GOOD, "one")
    runner.deploy(BETTER, "two")  # kept in the runner's state folder only
    assert served(api) == (BETTER, "v2")
    report = laptop.status()
    assert (report["live_version"], report["ledger_version"]) == (2, 2)
    assert not report["drifted"] and not report["live_unknown"]
    assert "v2 (not kept on this machine)" in laptop.ok("status", ENV).stdout
    laptop.ok("rollback", ENV, "-m", "back from the laptop")
    assert served(api) == (GOOD, "v1")
    assert runner.status()["live_version"] == 1


def test_kill_9_at_random_moments_leaves_the_ledger_truthful(setup: Setup, api: ScoringApi) -> None:
    """Deploys killed at random moments (before, during and after the push); after each, the
    next command's status must name exactly the version the API serves, and deploys go on."""
    rng = random.Random(17)
    setup.deploy(GOOD, "one")
    for trial in range(6):
        setup.write(b'{"threshold": 0.%d}\n' % (50 + trial))
        process = subprocess.Popen(
            [LASTGOOD, "-C", str(setup.root), "deploy", ENV, "-m", f"trial {trial}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=setup.environ(),
        )
        try:
            process.wait(rng.uniform(0.2, 0.9))  # start-up, push, 0.3 s bake
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        report = setup.status()
        label = api.version
        assert f"v{report['live_version']}" == label, (trial, report, label)
        assert report["ledger_version"] == report["live_version"]
        assert not report["drifted"], report["warnings"]
    setup.deploy(GOOD, "after the trials")
    assert served(api)[0] == GOOD
