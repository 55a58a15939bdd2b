"""The real ``lastgood`` command as a user runs it: output, exit codes, no tracebacks. Deploys
judge a version in one round (FAST) unless the bake itself is what a test is about."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from tests.conftest import FAST, LASTGOOD, Workspace

Factory = Callable[..., Workspace]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_init_writes_config_store_and_gitignore(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([LASTGOOD, "-C", str(tmp_path), "init"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[env.staging]" in (tmp_path / "lastgood.toml").read_text()
    assert (tmp_path / ".lastgood" / "store.db").exists()
    assert ".lastgood/" in (tmp_path / ".gitignore").read_text()
    again = subprocess.run([LASTGOOD, "-C", str(tmp_path), "init"], capture_output=True, text=True)
    assert_clean_error(again, 2, "already exists", "--force")


def test_snapshot_log_show_diff(workspace: Factory) -> None:
    ws = workspace()
    ws.healthy("one")
    first = ws.run("snapshot", "-m", "first")
    assert first.returncode == 0 and first.stdout.startswith("v1 ")
    assert "unchanged" in ws.run("snapshot", "-m", "again").stderr
    ws.write("scoring/thresholds.yaml", "threshold: 0.9\n")
    ws.run("snapshot", "-m", "raise threshold")
    log = ws.run("log")
    assert "raise threshold" in log.stdout and "tester" in log.stdout
    versions = json.loads(ws.run("log", "--json").stdout)
    assert [v["number"] for v in versions] == [2, 1]
    shown = ws.run("show", "v2", "scoring/thresholds.yaml")
    assert shown.stdout.strip() == "threshold: 0.9"
    diff = ws.run("diff", "v1", "v2")
    assert "-threshold: 0.4" in diff.stdout and "+threshold: 0.9" in diff.stdout
    as_json = json.loads(ws.run("diff", "v1", "v2", "--json").stdout)
    assert (as_json["old"], as_json["new"]) == ("v1", "v2")
    assert as_json["files"]["changed"] == ["scoring/thresholds.yaml"]
    assert_clean_error(ws.run("show", "v9"), 2, "no version v9", "lastgood log")
    assert_clean_error(ws.run("show", "nonsense!"), 2, "not a version reference")


def test_deploy_failure_rolls_back_with_exit_3_and_history(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "good").returncode == 0
    ws.broken()
    result = ws.run("deploy", "staging", "-m", "threshold too high")
    assert result.returncode == 3, result.stderr
    assert "restored v1" in result.stdout and "history staging" in result.stdout
    assert "auto-rolled-back" in result.stderr
    timeline = json.loads(ws.run("history", "staging", "--json").stdout)
    kinds = [(d["kind"], d["status"]) for d in timeline["deployments"]]
    assert kinds == [("auto-rollback", "succeeded"), ("deploy", "failed-restored"),
                     ("deploy", "succeeded")]  # fmt: skip
    assert timeline["deployments"][0]["time_to_active"] < 5
    again = ws.run("deploy", "staging")
    assert_clean_error(again, 5, "quarantined", "--force")


def test_status_json_and_text(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    ws.run("deploy", "staging")
    (report,) = json.loads(ws.run("status", "--json").stdout)
    assert report["live_version"] == 1 and report["last_good"] == 1
    assert report["health"] == "healthy" and report["drifted"] is False
    text = ws.run("status", "staging").stdout
    assert "live          v1" in text and "last good     v1" in text


def test_dry_run_prints_plan(workspace: Factory) -> None:
    ws = workspace()
    ws.healthy("one")
    result = ws.run("deploy", "staging", "--dry-run")
    assert result.returncode == 0
    assert "1. snapshot" in result.stdout and "dry run: nothing was changed" in result.stdout
    assert "added    health.txt" in result.stdout
    assert not (ws.base / "live").exists()
    assert ws.run("log", "--json").stdout.strip() == "[]"


def test_offline_rollback_and_the_next_command_records_it(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    ws.run("deploy", "staging")
    ws.healthy("two")
    ws.run("deploy", "staging")
    down = {"LASTGOOD_STORE": UNREACHABLE}
    blocked = ws.run("rollback", "staging", env=down)
    assert_clean_error(blocked, 1, "store", "nowhere")
    assert "without the store: lastgood rollback ENV --offline" in blocked.stderr  # refused
    offline = ws.run("rollback", "staging", "--offline", "-m", "store is down", env=down)
    assert offline.returncode == 0, offline.stderr
    assert "offline" in offline.stdout
    live = (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text()
    assert "marker: one" in live
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert status["live_version"] == 1 and status["ledger_version"] == 1
    records = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
    assert records[0]["kind"] == "offline-rollback" and records[0]["reason"] == "store is down"
    assert status["last_good"] == 1
    # v2 was rolled away from: a plain rollback now must not bring it back
    again = ws.run("rollback", "staging")
    assert_clean_error(again, 2, "no known good version")
    assert (
        "marker: one" in (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text()
    )
    mixed = ws.run("rollback", "staging", "--offline", "--to", "v2")
    assert_clean_error(mixed, 2, "--offline")


def test_configuration_errors_are_clean(workspace: Factory) -> None:
    ws = workspace()
    assert_clean_error(ws.run("--store", "foo", "log"), 2, "cannot use store URL foo")
    assert_clean_error(ws.run("show", "prod:v1"), 2, "no environment named 'prod'")
    assert_clean_error(ws.run("deploy", "prod"), 2, "no environment named 'prod'", "staging")
    (ws.root / "lastgood.toml").write_text("[env.staging]\nbake = 1\n")
    assert_clean_error(ws.run("status"), 2, "target is missing")
    ws.write("lastgood.toml", "[env\n")
    assert_clean_error(ws.run("log"), 2, "not valid TOML")


def test_raw_data_is_refused_with_exit_5(workspace: Factory) -> None:
    ws = workspace()
    ws.healthy("one")
    ws.write("exports/leads.csv", "id,score\n1,0.5\n")
    assert_clean_error(ws.run("deploy", "staging"), 5, "exports/leads.csv", "allow")


def test_outside_a_workspace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([LASTGOOD, "status"], capture_output=True, text=True, cwd=tmp_path)
    assert_clean_error(result, 2, "no lastgood.toml", "lastgood init")


def test_help_ends_with_examples() -> None:
    for command in ["deploy", "rollback", "status", "history", "diff", "snapshot", "check"]:
        result = subprocess.run([LASTGOOD, command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0
        assert "Example:" in result.stdout, command


def test_status_says_when_the_ledger_disagreed_with_the_target(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    ws.run("deploy", "staging")
    ws.healthy("two")
    ws.run("deploy", "staging")
    # someone switched the target behind lastgood's back (an old script, a hand-made symlink)
    current = ws.base / "live" / "current"
    release = next((ws.base / "live" / "releases").glob("v1-*"))
    current.unlink()
    current.symlink_to(f"releases/{release.name}")
    text = ws.run("status", "staging").stdout
    assert "live          v1" in text
    assert "reconciled: the ledger said v2 is live on staging, but the target serves v1" in text


def test_two_offline_rollbacks_walk_back_and_a_torn_log_line_blocks_nothing(
    workspace: Factory,
) -> None:
    ws = workspace(**FAST)
    for marker in ("one", "two", "three"):
        ws.healthy(marker)
        ws.run("deploy", "staging")
    down = {"LASTGOOD_STORE": UNREACHABLE}
    live = ws.base / "live" / "current" / "scoring" / "thresholds.yaml"
    assert ws.run("rollback", "staging", "--offline", env=down).returncode == 0
    assert "marker: two" in live.read_text()
    second = ws.run("rollback", "staging", "--offline", env=down)
    assert second.returncode == 0, second.stderr
    assert "marker: one" in live.read_text()  # never back to v3, which it just left
    with open(ws.root / ".lastgood" / "offline.jsonl", "a") as log:
        log.write('{"env": "staging", "from_ver')  # a record torn by a crash
    status = ws.run("status", "staging")
    assert status.returncode == 0, status.stderr
    assert "set aside 1 unreadable line" in status.stdout
    report = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert report["live_version"] == 1 and report["last_good"] == 1


def test_offline_rollback_never_lands_on_a_release_that_never_passed_its_bake(
    workspace: Factory,
) -> None:
    ws = workspace()
    ws.healthy("one")
    ws.run("deploy", "staging")
    ws.healthy("two")
    killed = ws.run("deploy", "staging", env={"LASTGOOD_FAILPOINT": "deploy.mid-bake"})
    assert killed.returncode == -9
    ws.healthy("three")
    assert ws.run("deploy", "staging").returncode == 0
    offline = ws.run("rollback", "staging", "--offline", env={"LASTGOOD_STORE": UNREACHABLE})
    assert offline.returncode == 0, offline.stderr
    live = (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text()
    assert "marker: one" in live  # v2 never passed its bake: skipped
