"""``lastgood demo`` as a user runs it, and the demo's scorer on its own.

The demo runs as a real subprocess, end to end (about 8 s each). Every run gets its own TMPDIR,
so "nothing left behind" can be checked precisely: no scorer process whose command line names
that folder, and no demo folder in it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.demo.scorer import DEFAULT_RULES, Rules, ScorerProcess, demo_lead, score

# Registers the demo command the way lastgood/cli/__init__.py's main() does once it imports it;
# goes through main() so exit codes and error messages are the real ones.
DEMO = [sys.executable, "-c", "from lastgood.cli import demo, main; main()", "demo"]
GOOD = "cutoff: 0.2\nweights: {visits: 0.04, emails_opened: 0.06, employees: 0.0005}\n"
BAD = GOOD.replace("0.2", "20", 1)


def demo_environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1", "LASTGOOD_AUTHOR": "tester"}


def scorer_processes(marker: str) -> list[str]:
    """Command lines of running scorer processes that mention ``marker`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if "lastgood.demo.scorer" in cmdline and marker in cmdline:
            found.append(cmdline)
    return found


def demo_folders(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("lastgood-demo-*"))


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=demo_environment(tmp_path),
        cwd=tmp_path,
    )


def test_demo_replays_the_incident_and_leaves_nothing_behind(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    assert figures["ok"] and figures["problems"] == []
    timeline = [
        (d["kind"], d["from_version"], d["to_version"], d["status"]) for d in figures["timeline"]
    ]
    assert timeline == [
        ("deploy", None, 1, "succeeded"),
        ("deploy", 1, 2, "failed-restored"),
        ("auto-rollback", 2, 1, "succeeded"),
    ]
    assert figures["deploy_exit_codes"] == [0, 3]
    assert 0 <= figures["time_to_active"] < 5
    assert figures["time_to_active"] <= figures["time_to_verified"] < 10
    assert "scores-not-zero" in figures["caught_by"] and "0.0" in figures["caught_by"]
    assert figures["scores"]["restored"] > 0
    assert figures["seconds"] < 60
    assert "restored v1 on demo" in done.stderr
    assert "The scorer reads v1-" in done.stderr
    assert not figures["kept"] and not Path(figures["folder"]).exists()
    assert demo_folders(tmp_path) == []
    assert scorer_processes(str(tmp_path)) == []


def test_demo_keep_prints_the_timeline_and_keeps_the_folder(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--keep")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(all(word in line for word in ("deploy", "- → v1", "succeeded")) for line in lines)
    assert any(all(word in line for word in ("v1 → v2", "failed-restored")) for line in lines)
    assert any(all(word in line for word in ("auto-rollback", "v2 → v1", "ms")) for line in lines)
    assert "restored in" in done.stdout and "verified in" in done.stdout
    _assert_readme_sample_is_real(done.stdout + done.stderr)
    assert "Deploy exit codes: 0, 3" in done.stdout
    [folder] = demo_folders(tmp_path)
    assert f"kept at {folder}" in done.stderr
    assert (folder / "workspace" / "lastgood.toml").is_file()
    assert os.readlink(folder / "live" / "demo" / "current").startswith("releases/v1-")
    assert scorer_processes(str(tmp_path)) == []


def test_ctrl_c_mid_deploy_stops_the_scorer_and_removes_the_folder(tmp_path: Path) -> None:
    with subprocess.Popen(
        DEMO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=demo_environment(tmp_path),
        cwd=tmp_path,
        start_new_session=True,
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if "activated:" in line:
                break
        assert scorer_processes(str(tmp_path)), "the scorer should be running mid-deploy"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        process.stderr.read()
        assert process.wait(timeout=30) != 0
    assert scorer_processes(str(tmp_path)) == []
    assert demo_folders(tmp_path) == []


def test_every_demo_lead_scores_zero_with_the_bad_cutoff() -> None:
    leads = [demo_lead(number) for number in range(1, 101)]
    bad = Rules("v2-bad", 20.0, DEFAULT_RULES.weights)
    assert all(score(lead, bad) == 0.0 for lead in leads)
    average = sum(score(lead, DEFAULT_RULES) for lead in leads) / len(leads)
    assert average > 0.3


def switch(live: Path, release: str, text: str) -> None:
    """Write a release and point ``live/current`` at it atomically, as the directory target does."""
    folder = live / "releases" / release / "scoring"
    folder.mkdir(parents=True)
    (folder / "thresholds.yaml").write_text(text)
    os.symlink(f"releases/{release}", live / ".current-new")
    os.replace(live / ".current-new", live / "current")


def post_lead(port: int) -> dict[str, Any]:
    lead = {"id": "acme", "visits": 6, "emails_opened": 3, "employees": 250}
    response = httpx.post(f"http://127.0.0.1:{port}/score", json=lead, timeout=5)
    response.raise_for_status()
    return dict(response.json())


def test_scorer_alone_scores_zero_with_the_bad_cutoff_and_again_with_the_good(
    tmp_path: Path,
) -> None:
    live, db = tmp_path / "live", tmp_path / "leads.db"
    live.mkdir()
    with ScorerProcess(tmp_path) as scorer:
        port = scorer.start(live, db)
        assert scorer.health()["config"] == "built-in defaults"
        switch(live, "v1-good", GOOD)
        assert post_lead(port)["score"] == pytest.approx(0.545)
        switch(live, "v2-bad", BAD)
        zero = post_lead(port)
        assert (zero["score"], zero["config"]) == (0.0, "v2-bad")
        assert scorer.health()["version"] == "v2"
        switch(live, "v3-good", GOOD)
        assert post_lead(port)["score"] > 0
        with closing(sqlite3.connect(db)) as connection:
            stored = connection.execute("select score from leads where id = ?", (zero["id"],))
            assert stored.fetchone() == (0.0,)
    assert scorer_processes(str(tmp_path)) == []


def test_demo_drill_rehearses_the_same_breakage(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--drill", "--json")
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    drill = figures["drill"]
    assert drill["passed"] and drill["kind"] == "broken-variant" and drill["bytes_verified"]
    assert 0 < drill["time_to_detect"] < 10 and drill["time_to_verified"] < 10
    kinds = [(d["kind"], d["status"]) for d in figures["timeline"]]
    assert ("drill", "passed") in kinds
    assert "lastgood drill demo" in done.stderr
    assert scorer_processes(str(tmp_path)) == []


def test_demo_requests_reviews_the_next_change_and_rolls_back_without_anyone(
    tmp_path: Path,
) -> None:
    done = run_demo(tmp_path, "--requests", "--json")
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    assert figures["requests"] == {"opened": "waiting", "approved": "approved", "applied": 0,
                                   "rollback": 0, "version": 3}  # fmt: skip
    kinds = [(d["kind"], d["status"], d["source"]) for d in figures["timeline"]]
    assert kinds[-2:] == [("deploy", "succeeded", "request"), ("rollback", "succeeded", "cli")]
    assert "change request #1 for demo: v3, waiting for 1 more: 1 approval from scoring-team" in (
        done.stderr
    )
    assert scorer_processes(str(tmp_path)) == []


def _shape(line: str) -> str:
    """A line with what changes from run to run (times, durations, hashes, author) masked."""
    line = re.sub(r"^\d\d:\d\d:\d\d ", "", line)
    line = re.sub(r"\d+(\.\d+)? (ms|s)\b", "N", line)
    line = re.sub(r"v2-[0-9a-f]{8}", "v2-HASH", line)
    line = re.sub(r"round \d+", "round N", line)
    return re.sub(r" by \S+$", " by AUTHOR", line)


def _assert_readme_sample_is_real(output: str) -> None:
    """The README's failed-deploy sample is what the demo really prints, line for line."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    sample = readme.split("What a failed deploy looks like", 1)[1].split("```text\n", 1)[1]
    expected = [_shape(line) for line in sample.split("```", 1)[0].splitlines()]
    printed = {_shape(line) for line in output.splitlines()}
    missing = [line for line in expected if line not in printed and not _by_chance(line)]
    assert not missing, f"README lines the demo no longer prints: {missing}"


def _by_chance(line: str) -> bool:
    """The first verify round after the restore fails when the scorer's feeder has not scored a
    lead under the restored rules yet, and passes when it has: the feed ticks on its own clock,
    so whether the README's failed verify round is printed is down to a few milliseconds."""
    return "check-failed: verify round" in line
