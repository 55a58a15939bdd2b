"""No ledger record stays ``running`` after its process ended, and a full disk while staging is a
clear refusal (exit 5) that changed nothing live.

The full disk is real: the CLI runs in its own mount namespace (``unshare``) with a small tmpfs
mounted over the target's folder, so every write there fails with ENOSPC as on a full disk.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LASTGOOD, Workspace

Factory = Callable[..., Workspace]
BIG = 200_000  # bytes of one versioned file: far more than the tmpfs holds


def _namespace_prefix() -> list[str] | None:
    """``unshare`` arguments that give a private mount namespace here, or None."""
    for prefix in (["unshare", "-m"], ["unshare", "-Urm"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


NAMESPACE = _namespace_prefix()
needs_namespace = pytest.mark.skipif(
    NAMESPACE is None, reason="unshare cannot make a mount namespace on this machine"
)


def _run_on_small_disk(ws: Workspace, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``lastgood ARGS`` with a 32 KiB tmpfs mounted over ``folder`` (for this run only)."""
    assert NAMESPACE is not None
    folder.mkdir(parents=True, exist_ok=True)
    command = shlex.join([LASTGOOD, "-C", str(ws.root), *args])
    script = f"mount -t tmpfs -o size=32k tmpfs {shlex.quote(str(folder))} && exec {command}"
    environ = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    return subprocess.run(
        [*NAMESPACE, "sh", "-c", script], capture_output=True, text=True, env=environ, timeout=60
    )


def large_v1_small_v2(workspace: Factory, *, broken: bool) -> Workspace:
    """v1, with a large file, deployed (last known good); v2, small, recorded, not deployed."""
    ws = workspace()
    ws.healthy("one")
    ws.write("prompts/long.txt", "x" * BIG + "\n")
    assert ws.run("deploy", "staging", "-m", "v1").returncode == 0
    (ws.root / "prompts" / "long.txt").unlink()
    if broken:
        ws.broken("two")
    else:
        ws.healthy("two")
    assert ws.run("snapshot", "-m", "v2").returncode == 0
    return ws


def _read_until(process: subprocess.Popen[str], needle: str) -> str:
    """What the command printed on stderr up to and including the progress line holding
    ``needle`` (its events, printed as they happen); fails if it ends without one."""
    assert process.stderr is not None
    seen = ""
    for line in process.stderr:
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"the command ended without printing {needle!r}:\n{seen}")


def _records(ws: Workspace) -> list[dict[str, object]]:
    done = ws.run("history", "staging", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["deployments"])


@needs_namespace
@pytest.mark.parametrize("kind", ["directory", "files"])
def test_a_full_disk_while_staging_is_refused_clearly_and_closes_the_record(
    workspace: Factory, kind: str
) -> None:
    ws = workspace(target=kind)
    ws.healthy("big")
    ws.write("prompts/long.txt", "x" * BIG + "\n")
    folder = ws.base / ("live" if kind == "directory" else "app")

    done = _run_on_small_disk(ws, folder, "deploy", "staging", "-m", "too big for the disk")

    assert done.returncode == 5, done.stderr
    assert "unexpected error" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "no space left on the device while staging v1" in done.stderr
    assert str(folder) in done.stderr  # the path that could not be written
    assert "the release needs 195.3 KiB" in done.stderr
    assert "nothing live changed" in done.stderr
    [record] = _records(ws)
    assert record["status"] == "refused"
    assert record["finished_at"] is not None
    assert "no space left" in str(record["detail"])
    [status] = json.loads(ws.run("status", "staging", "--json").stdout)
    assert status["live_version"] is None


def test_a_deploy_stopped_by_sigterm_closes_its_record_and_its_lease(workspace: Factory) -> None:
    ws = workspace(bake="30s")
    ws.healthy("one")
    command = [LASTGOOD, "-C", str(ws.root), "deploy", "staging", "-m", "long bake"]
    environ = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environ)
    seen = _read_until(process, "activated: v1 is live on staging")  # baking now, for 30 s
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    err = seen + rest

    assert process.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    [record] = _records(ws)  # read without any command that reconciles
    assert record["status"] == "interrupted"
    assert "SIGTERM" in str(record["detail"])
    [status] = json.loads(ws.run("status", "staging", "--json").stdout)
    assert status["lock"] is None


@needs_namespace
def test_a_store_on_a_full_disk_says_so(workspace: Factory) -> None:
    ws = workspace()
    ws.healthy("big")
    ws.write("prompts/long.txt", "x" * BIG + "\n")
    folder = ws.base / "store-disk"
    folder.mkdir()
    store = f"sqlite:///{folder / 'store.db'}"
    done = _run_on_small_disk(ws, folder, "--store", store, "snapshot", "-m", "too big")
    assert done.returncode == 1, done.stderr
    assert "the disk holding it is full or failing" in done.stderr
    assert "free space on that disk" in done.stderr
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr


@needs_namespace
def test_a_full_disk_error_without_a_file_name_names_the_target_folder(
    workspace: Factory,
) -> None:
    ws = workspace(target="directory")
    ws.healthy("big")
    ws.write("prompts/long.txt", "x" * BIG + "\n")
    folder = ws.base / "live"
    done = _run_on_small_disk(ws, folder, "deploy", "staging")
    assert done.returncode == 5, done.stderr
    assert f"{folder}/current" not in done.stderr  # never the live link: nothing wrote there


def test_a_deploy_stopped_while_its_restore_verifies_stays_failed(workspace: Factory) -> None:
    """v2 failed its bake; SIGTERM arrives while v1's restore is being verified: the deploy is
    'failed' (it did fail), the automatic rollback 'interrupted'."""
    ws = workspace()
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text().replace("verify_rounds = 2", "verify_rounds = 300"))
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    (ws.base / "outage").write_text("down for everyone\n")  # v1's restore cannot verify
    ws.broken("two")
    command = [LASTGOOD, "-C", str(ws.root), "deploy", "staging", "--ignore-baseline"]
    environ = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environ)
    seen = _read_until(process, "verify round 1 on staging")  # v1 back, its checks failing
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    err = seen + rest
    assert process.returncode == 128 + signal.SIGTERM, err
    kinds = {record["kind"]: record["status"] for record in _records(ws)[:2]}
    assert kinds == {"auto-rollback": "interrupted", "deploy": "failed"}


@needs_namespace
def test_a_restore_that_cannot_stage_needs_a_human_and_never_claims_nothing_changed(
    workspace: Factory,
) -> None:
    """v1 (large) is last known good; on a disk too small for it, v2 (small, broken) goes live,
    fails its bake, and the restore cannot stage v1: exit 4, never 5 ('nothing live changed'),
    and no record says 'refused'."""
    ws = large_v1_small_v2(workspace, broken=True)

    done = _run_on_small_disk(ws, ws.base / "live", "deploy", "staging", "--version", "v2")

    assert done.returncode == 4, done.stdout + done.stderr
    assert "restoring v1 failed: no space left on the device" in done.stdout
    assert "nothing live changed" not in done.stdout + done.stderr
    statuses = {record["kind"]: record["status"] for record in _records(ws)[:2]}
    assert statuses == {"auto-rollback": "failed", "deploy": "failed"}


def _script_on_small_disk(
    ws: Workspace, folder: Path, size: str, *commands: list[str]
) -> list[tuple[int, str]]:
    """Run several ``lastgood`` commands in one mount namespace with a ``size`` tmpfs over
    ``folder``; each one's exit code and output (the tmpfs is gone once the script ends)."""
    assert NAMESPACE is not None
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))} || exit 99"]
    for args in commands:
        command = shlex.join([LASTGOOD, "-C", str(ws.root), *args])
        lines.append(f'{command} 2>&1; code=$?; echo; echo "{MARK} $code"')
    environ = {**os.environ, "LASTGOOD_AUTHOR": "tester", "NO_COLOR": "1"}
    done = subprocess.run(
        [*NAMESPACE, "sh", "-c", "\n".join(lines)], capture_output=True, text=True,
        env=environ, timeout=120,
    )  # fmt: skip
    results, output = [], []
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            results.append((int(line.split()[-1]), "\n".join(output)))
            output = []
        else:
            output.append(line)
    assert len(results) == len(commands), done.stdout + done.stderr
    return results


MARK = "=== lastgood exited"


@needs_namespace
def test_the_files_target_refuses_a_switch_the_disk_cannot_hold(workspace: Factory) -> None:
    """v2 stages in full but replacing v1's large file would not fit: refused before the first
    file is switched (exit 5); v1 stays live, whole; a rollback and later commands keep v1."""
    ws = workspace(target="files")
    ws.healthy("one")
    ws.write("prompts/long.txt", "1" * BIG + "\n")
    assert ws.run("snapshot", "-m", "v1").returncode == 0
    ws.healthy("two")
    ws.write("prompts/long.txt", "2" * BIG + "\n")
    assert ws.run("snapshot", "-m", "v2").returncode == 0

    (first, _), (code, out), (_, status), (back, _), (_, again) = _script_on_small_disk(
        ws, ws.base / "app", "640k",
        ["deploy", "staging", "--version", "v1"],
        ["deploy", "staging", "--version", "v2"],
        ["status", "staging", "--json"],
        ["rollback", "staging"],
        ["status", "staging", "--json"],
    )  # fmt: skip

    assert first == 0
    assert code == 5, out
    assert "not enough space in" in out and "nothing was switched" in out
    for report in (status, again):
        [env] = json.loads(report[report.index("[") :])
        assert env["live_version"] == 1 and env["actual_hash"] == env["live_hash"], env
    assert back in (0, 2), "a rollback with v1 live is a no-op or has nowhere to go"


@pytest.mark.parametrize("kind", ["directory", "files"])
def test_an_offline_rollback_after_a_killed_rollback_never_walks_back(
    workspace: Factory, kind: str
) -> None:
    """v3 → v2 is killed right after its switch; an offline rollback must then go on to v1,
    never back to v3, the version the killed rollback was leaving."""
    ws = workspace(target=kind)
    for marker in ("one", "two", "three"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    killed = ws.run("rollback", "staging", env={"LASTGOOD_FAILPOINT": "rollback.after-activate"})
    assert killed.returncode == -signal.SIGKILL
    offline = ws.run("rollback", "staging", "--offline")
    assert offline.returncode == 0, offline.stderr
    assert "v1-" in offline.stdout and "v3-" not in offline.stdout, offline.stdout


@needs_namespace
def test_a_manual_rollback_that_cannot_stage_needs_a_human(workspace: Factory) -> None:
    """v1 (large) is not kept on the small disk; rolling back to it cannot stage it: exit 4,
    the record 'failed' with the reason, and what is live is said."""
    ws = large_v1_small_v2(workspace, broken=False)
    [(deployed, _), (code, out)] = _script_on_small_disk(
        ws, ws.base / "live", "64k",
        ["deploy", "staging", "--version", "v2"],
        ["rollback", "staging", "--to", "v1"],
    )  # fmt: skip
    assert deployed == 0
    assert code == 4, out
    assert "could not restore v1 on staging: no space left on the device" in out
    assert "v2 is live. A person is needed" in out
    [record, *_] = _records(ws)
    assert (record["kind"], record["status"]) == ("rollback", "failed")
    assert "no space left" in str(record["detail"])


def test_report_since_a_date_before_1970_is_a_usage_error(workspace: Factory) -> None:
    ws = workspace()
    for since in ("0001-01-01", "1969-12-31"):
        done = ws.run("report", "--since", since)
        assert done.returncode == 2, done.stderr
        assert "is before 1970" in done.stderr
