"""Drills through the real CLI: break on purpose, catch, restore, prove the bytes, measure.

Versions are judged in one round (FAST): a broken variant trips on its second failed round
whatever the bake's length, and one the checks miss passes the bake either way."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import FAST, Workspace

Factory = Callable[..., Workspace]
DRILL = '\n[env.staging.drill]\nfiles = { "health.txt" = "drills/broken-health.txt" }\n'
UNSEEN = '\n[env.staging.drill]\nfiles = { "scoring/thresholds.yaml" = "drills/zero.yaml" }\n'


def drilled(workspace: Factory, extra: str = DRILL, **policy: str) -> Workspace:
    ws = workspace(**{**FAST, **policy})
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(extra + '\n[versioning]\nexclude = ["drills/**"]\n')
    ws.write("drills/broken-health.txt", "fail\n")
    ws.write("drills/zero.yaml", "threshold: 99\n")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    return ws


def live_bytes(ws: Workspace) -> bytes:
    return (ws.base / "live" / "current" / "health.txt").read_bytes()


def test_a_broken_variant_is_caught_restored_and_measured(workspace: Factory) -> None:
    ws = drilled(workspace)
    result = ws.run("drill", "staging", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["kind"] == "broken-variant" and report["bytes_verified"]
    assert 0 < report["time_to_detect"] < 5 and report["time_to_verified"] < 5
    assert live_bytes(ws) == b"ok\n"
    timeline = json.loads(ws.run("history", "staging", "--json").stdout)
    kinds = [(d["kind"], d["status"]) for d in timeline["deployments"]][:3]
    assert kinds == [("drill", "passed"), ("auto-rollback", "succeeded"),
                     ("deploy", "failed-restored")]  # fmt: skip
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert status["last_drill"]["status"] == "passed"
    assert status["last_good"] == 1
    assert not any("drill overdue" in w for w in status["warnings"])


def test_without_a_variant_the_weaker_drill_says_so(workspace: Factory) -> None:
    ws = drilled(workspace, extra="")
    result = ws.run("drill", "staging")
    assert result.returncode == 0, result.stderr
    assert "the weaker drill" in result.stdout
    assert live_bytes(ws) == b"ok\n"


def test_a_variant_the_checks_miss_fails_the_drill_and_is_undone(workspace: Factory) -> None:
    ws = drilled(workspace, extra=UNSEEN)
    result = ws.run("drill", "staging")
    assert result.returncode == 4, result.stderr
    assert "the checks did not catch v2" in result.stdout
    live = (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text()
    assert "marker: one" in live
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert (status["live_version"], status["last_good"]) == (1, 1)
    assert status["last_drill"]["status"] == "failed"


def test_protected_environments_refuse_drills_unless_overridden(workspace: Factory) -> None:
    ws = drilled(workspace)
    config = (ws.root / "lastgood.toml").read_text()
    (ws.root / "lastgood.toml").write_text(
        config.replace("verify_rounds = 2", "verify_rounds = 2\nprotected = true")
    )
    refused = ws.run("drill", "staging")
    assert refused.returncode == 5 and "is protected" in refused.stderr
    assert "--override-protection" in refused.stderr
    forced = ws.run("drill", "staging", "--override-protection", "--json")
    assert forced.returncode == 0, forced.stderr
    record = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"][0]
    assert record["kind"] == "drill" and json.loads(record["detail"])["override_protection"]


def test_an_unhealthy_environment_is_not_drilled(workspace: Factory) -> None:
    ws = drilled(workspace)
    (ws.base / "outage").write_text("down\n")
    refused = ws.run("drill", "staging")
    assert refused.returncode == 5 and "not healthy right now" in refused.stderr
    assert json.loads(ws.run("log", "--json").stdout)[0]["number"] == 1  # no variant recorded


def test_status_flags_an_environment_never_drilled(workspace: Factory) -> None:
    ws = drilled(workspace)
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert any("drill overdue on staging: last successful drill never" in w
               for w in status["warnings"])  # fmt: skip


def test_a_variant_identical_to_live_is_refused_before_anything_changes(
    workspace: Factory,
) -> None:
    ws = drilled(workspace)
    ws.write("drills/broken-health.txt", "ok\n")  # the "broken" file holds the live bytes
    result = ws.run("drill", "staging")
    assert result.returncode == 5, result.stderr
    assert "holds exactly the bytes of v1, the live version" in result.stderr
    assert live_bytes(ws) == b"ok\n"
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert (status["live_version"], status["last_good"]) == (1, 1)
    assert status["live_verdict"] == "good"
    versions = json.loads(ws.run("log", "--json").stdout)
    assert len(versions) == 1  # no variant recorded


def test_a_drill_leaves_the_next_snapshot_of_the_unchanged_folder_a_no_op(
    workspace: Factory,
) -> None:
    ws = drilled(workspace)
    assert ws.run("drill", "staging").returncode == 0
    again = ws.run("snapshot", "-m", "nothing changed")
    assert again.returncode == 0, again.stderr
    versions = json.loads(ws.run("log", "--json").stdout)
    assert [v["source"] for v in versions] == ["drill", "cli"]  # v1 and the variant only
    unchanged = ws.run("deploy", "staging")
    assert unchanged.returncode == 0 and "already live" in unchanged.stdout


def test_a_drill_stopped_half_way_puts_the_live_version_back(workspace: Factory) -> None:
    """SIGTERM while the broken variant bakes: the drill ends on the version live before it,
    and the ledger records the drill as failed."""
    import os
    import signal
    import subprocess

    from tests.conftest import LASTGOOD, eventually

    ws = drilled(workspace, extra=UNSEEN)  # the checks miss the variant: it bakes...
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text().replace('bake = "0s"', 'bake = "30s"'))  # ...long
    command = [LASTGOOD, "-C", str(ws.root), "drill", "staging"]
    environ = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environ)
    eventually(lambda: b"threshold: 99" in _live_thresholds(ws))  # the variant is live
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert _live_thresholds(ws) == b"threshold: 0.4\nmarker: one\n"
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert status["live_version"] == 1
    assert not any("drill's broken variant" in w for w in status["warnings"])
    timeline = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
    assert (timeline[0]["kind"], timeline[0]["status"]) == ("drill", "failed")
    assert "stopped before it ended" in timeline[0]["detail"]


def _live_thresholds(ws: Workspace) -> bytes:
    path = ws.base / "live" / "current" / "scoring" / "thresholds.yaml"
    return path.read_bytes() if path.exists() else b""


def test_status_says_when_a_drill_variant_was_left_live(workspace: Factory) -> None:
    """After a kill -9 mid-drill the variant may still be live: status says so and what to do."""
    from lastgood.bundle import Bundle

    ws = drilled(workspace, extra=UNSEEN)
    project = ws.project()
    files = dict(project.store.files(1))
    files["scoring/thresholds.yaml"] = b"threshold: 99\n"
    variant = project.store.add_version(
        Bundle(files), author="tester", source="drill", message="drill variant"
    )
    assert ws.run("deploy", "staging", "--version", variant.label).returncode == 0
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert any(
        "is a drill's broken variant and is live on staging" in w and "lastgood rollback" in w
        for w in status["warnings"]
    ), status["warnings"]
