"""The directory target on real files: staging, the symlink switch, history, pruning, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import ConfigError, TargetError
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget
from lastgood.targets.registry import target_class

V1 = {"prompt.txt": b"score leads kindly\n", "scoring/rules.yaml": b"threshold: 0.5\n"}
V2 = {"prompt.txt": b"score leads strictly\n", "scoring/rules.yaml": b"threshold: 0.7\n"}


def release(version: int, files: Mapping[str, bytes]) -> Release:
    return Release(version, Bundle(files).content_hash)


def numbered(version: int) -> tuple[Release, dict[str, bytes]]:
    files = {"config.txt": f"version {version}\n".encode()}
    return release(version, files), files


@pytest.fixture
def target(tmp_path: Path) -> DirectoryTarget:
    return DirectoryTarget("staging", {"path": "live/staging"}, tmp_path)


def deploy(target: DirectoryTarget, version: int, verdict: str | None = "good") -> Release:
    """Stage and activate; ``verdict`` is what its bake found (None: never proven)."""
    rel, files = numbered(version)
    target.stage(rel, files)
    target.activate(rel)
    if verdict:
        target.record_verdict(rel, verdict)
    return rel


def test_relative_path_resolves_against_root(tmp_path: Path, target: DirectoryTarget) -> None:
    assert target.path == (tmp_path / "live" / "staging").resolve()
    assert target_class("directory") is DirectoryTarget


def test_missing_path_and_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no path"):
        DirectoryTarget("staging", {}, tmp_path)
    with pytest.raises(ConfigError, match="keep"):
        DirectoryTarget("staging", {"path": "x", "keep": 0}, tmp_path)
    with pytest.raises(ConfigError, match="'paht'"):
        DirectoryTarget("staging", {"path": "x", "paht": "y"}, tmp_path)


def test_stage_writes_release_and_meta_beside_it(target: DirectoryTarget) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    folder = target.path / "releases" / r1.name
    assert (folder / "scoring" / "rules.yaml").read_bytes() == V1["scoring/rules.yaml"]
    meta = json.loads((target.path / "meta" / f"{r1.name}.json").read_text())
    assert meta["version"] == 1 and meta["content_hash"] == r1.content_hash
    assert set(meta["manifest"]) == set(V1) and "staged_at" in meta
    assert sorted(os.listdir(target.path / "releases")) == [r1.name]
    assert target.retained() == [r1]
    assert target.staged_path(r1) == folder
    assert target.live() is None and target.actual_hash() is None


def test_stage_is_idempotent(target: DirectoryTarget) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    before = os.stat(target.path / "releases" / r1.name / "prompt.txt").st_ino
    target.stage(r1, V1)
    assert os.stat(target.path / "releases" / r1.name / "prompt.txt").st_ino == before
    assert target.retained() == [r1]


def test_activate_switches_current(target: DirectoryTarget) -> None:
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.stage(r2, V2)
    target.activate(r1)
    assert target.live() == r1 and target.actual_hash() == r1.content_hash
    target.activate(r2)
    assert os.readlink(target.path / "current") == f"releases/{r2.name}"
    assert target.live() == r2 and target.actual_hash() == r2.content_hash
    assert (target.live_path() / "prompt.txt").read_bytes() == V2["prompt.txt"]
    assert target.retained() == [r1, r2]
    state = json.loads((target.path / "meta" / "state.json").read_text())
    assert [a["release"] for a in state["activations"]] == [r1.name, r2.name]
    assert not [name for name in os.listdir(target.path) if name.startswith(".")]


def test_activate_refuses_a_release_that_is_not_staged(target: DirectoryTarget) -> None:
    with pytest.raises(TargetError, match="not staged"):
        target.activate(release(1, V1))


def test_a_real_current_folder_is_never_replaced(target: DirectoryTarget) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    (target.path / "current").mkdir()
    with pytest.raises(TargetError, match="move it away"):
        target.activate(r1)
    with pytest.raises(TargetError, match="not a symlink"):
        target.live()
    assert sorted(os.listdir(target.path)) == ["current", "meta", "releases"]


def test_hand_edit_changes_actual_hash(target: DirectoryTarget) -> None:
    r1 = deploy(target, 1)
    (target.path / "current" / "config.txt").write_text("edited by hand\n")
    assert target.actual_hash() != r1.content_hash
    (target.path / "current" / "config.txt").write_text("version 1\n")
    assert target.actual_hash() == r1.content_hash
    (target.path / "current" / "extra.txt").write_text("added\n")
    assert target.actual_hash() != r1.content_hash


def test_live_without_meta_is_parsed_from_the_name(target: DirectoryTarget) -> None:
    r1 = deploy(target, 1)
    (target.path / "meta" / f"{r1.name}.json").unlink()
    assert target.live() == Release(1, r1.content_hash[:8])
    assert target.retained() == []


def test_previous_skips_bad_and_not_retained(target: DirectoryTarget) -> None:
    r1, r2, r3, r4 = (deploy(target, n) for n in (1, 2, 3, 4))
    assert target.previous() == r3
    target.record_verdict(r3, "bad")
    assert target.previous() == r2
    assert target.prune(1, protect=[r1]) == [r2, r3]
    assert target.previous() == r1
    target.activate(r1)
    assert target.previous() == r4


def test_previous_skips_releases_never_proven_good(target: DirectoryTarget) -> None:
    r1 = deploy(target, 1)
    deploy(target, 2, verdict=None)  # its bake was interrupted: never proven
    deploy(target, 3)
    assert target.previous() == r1
    target.record_verdict(r1, "withdrawn")
    assert target.previous() is None


def test_previous_is_none_without_history(target: DirectoryTarget) -> None:
    assert target.previous() is None
    deploy(target, 1)
    assert target.previous() is None
    with pytest.raises(TargetError, match="verdict"):
        target.record_verdict(release(1, V1), "meh")


def test_prune_keeps_live_and_protected(target: DirectoryTarget) -> None:
    releases = [deploy(target, n) for n in range(1, 6)]
    target.activate(releases[1])
    dropped = target.prune(2, protect=[releases[0]])
    assert dropped == [releases[2]]
    assert target.retained() == [releases[0], releases[1], releases[3], releases[4]]
    assert not (target.path / "releases" / releases[2].name).exists()
    assert not (target.path / "meta" / f"{releases[2].name}.json").exists()
    assert target.prune(0, protect=[]) == [releases[0], releases[3], releases[4]]
    assert target.retained() == [releases[1]]
    assert target.live() == releases[1]


def test_refuses_a_foreign_non_empty_folder(tmp_path: Path, target: DirectoryTarget) -> None:
    target.path.mkdir(parents=True)
    (target.path / "notes.txt").write_text("mine\n")
    with pytest.raises(TargetError, match=str(target.path)) as caught:
        target.stage(release(1, V1), V1)
    assert "empty folder" in str(caught.value)
    assert sorted(os.listdir(target.path)) == ["notes.txt"]


def test_accepts_an_existing_empty_folder(target: DirectoryTarget) -> None:
    target.path.mkdir(parents=True)
    deploy(target, 1)
    assert target.live() is not None


def test_refuses_paths_that_escape_the_release(target: DirectoryTarget) -> None:
    with pytest.raises(TargetError, match="relative"):
        target.stage(Release(1, "0" * 64), {"../escape.txt": b"x"})
    assert target.retained() == []


def test_recover_removes_leftovers(target: DirectoryTarget) -> None:
    deploy(target, 1)
    assert target.recover() is None
    (target.path / "releases" / ".tmp-v2-abc-123").mkdir()
    os.symlink("releases/nowhere", target.path / ".current-123")
    sentence = target.recover()
    assert sentence is not None and str(target.path) in sentence
    assert sorted(os.listdir(target.path)) == ["current", "meta", "releases"]
    assert target.recover() is None


SCRIPT = """
import json, sys
from pathlib import Path
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget

root, version, content_hash, files = sys.argv[1:]
target = DirectoryTarget("staging", {"path": "live"}, Path(root))
release = Release(int(version), content_hash)
target.recover()
target.stage(release, {k: v.encode() for k, v in json.loads(files).items()})
target.activate(release)
"""


def run_deploy(root: Path, rel: Release, files: Mapping[str, bytes], failpoint: str) -> int:
    text_files = json.dumps({k: v.decode() for k, v in files.items()})
    env = {**os.environ, "LASTGOOD_FAILPOINT": failpoint}
    args = [sys.executable, "-c", SCRIPT, str(root), str(rel.version), rel.content_hash]
    return subprocess.run([*args, text_files], env=env, timeout=30, check=False).returncode


@pytest.mark.parametrize(
    ("failpoint", "survivor"),
    [
        ("target.after-stage-files", 1),
        ("target.before-rename-release", 1),
        ("target.mid-switch", 1),
        ("target.after-switch", 2),
        ("", 2),
    ],
)
def test_a_killed_deploy_leaves_one_complete_version(
    tmp_path: Path, failpoint: str, survivor: int
) -> None:
    target = DirectoryTarget("staging", {"path": "live"}, tmp_path)
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.activate(r1)
    target.record_verdict(r1, "good")  # v1 passed its bake
    returncode = run_deploy(tmp_path, r2, V2, failpoint)
    assert returncode == (-9 if failpoint else 0)
    expected = {1: r1, 2: r2}[survivor]
    for _ in range(2):  # before and after recover(): readers never see a mix
        live = target.live()
        assert live == expected and target.actual_hash() == expected.content_hash
        target.recover()
    assert r1 in target.retained()
    assert not [n for n in os.listdir(target.path / "releases") if n.startswith(".")]
    assert not [n for n in os.listdir(target.path) if n.startswith(".")]
    target.stage(r2, V2)
    target.activate(r2)
    assert target.live() == r2 and target.actual_hash() == r2.content_hash
    assert target.previous() == r1
