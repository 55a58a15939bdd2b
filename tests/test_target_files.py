"""The files target on real files: copies in place, the journal, history, pruning, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import ConfigError, DamagedCopyError, TargetError
from lastgood.targets.base import Release
from lastgood.targets.files import FilesTarget
from lastgood.targets.registry import target_class

V1 = {
    "prompt.txt": b"score leads kindly\n",
    "same.txt": b"unchanged in v2\n",
    "rules/old.yaml": b"threshold: 0.5\n",
}
V2 = {
    "prompt.txt": b"score leads strictly\n",
    "same.txt": b"unchanged in v2\n",
    "rules/new.yaml": b"threshold: 0.7\n",
    "deep/er/extra.txt": b"new folder\n",
}


def release(version: int, files: Mapping[str, bytes]) -> Release:
    return Release(version, Bundle(files).content_hash)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app" / "config"
    folder.mkdir(parents=True)
    (folder / "local.ini").write_text("not lastgood's\n")
    return folder


@pytest.fixture
def target(tmp_path: Path, app: Path) -> FilesTarget:
    return FilesTarget("staging", {"path": "app/config"}, tmp_path)


def deploy(target: FilesTarget, version: int, verdict: str | None = "good") -> Release:
    """Stage and activate; ``verdict`` is what its bake found (None: never proven)."""
    files = {"config.txt": f"version {version}\n".encode()}
    rel = release(version, files)
    target.stage(rel, files)
    target.activate(rel)
    if verdict:
        target.record_verdict(rel, verdict)
    return rel


def served(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` except lastgood's state folder."""
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not relative.startswith(".lastgood-target/"):
            found[relative] = path.read_bytes()
    return found


def test_options(tmp_path: Path, app: Path) -> None:
    target = FilesTarget("staging", {"path": "app/config", "state": "state", "keep": 3}, tmp_path)
    assert target.path == app.resolve() and target.live_path() == target.path
    assert target.state == (tmp_path / "state").resolve() and target.keep == 3
    assert FilesTarget("staging", {"path": str(app)}, tmp_path).state == app / ".lastgood-target"
    assert target_class("files") is FilesTarget
    with pytest.raises(ConfigError, match="no path"):
        FilesTarget("staging", {}, tmp_path)


def test_missing_folder_is_refused_with_a_hint(tmp_path: Path) -> None:
    target = FilesTarget("staging", {"path": "nowhere"}, tmp_path)
    with pytest.raises(TargetError, match="does not exist") as caught:
        target.stage(release(1, V1), V1)
    assert f"mkdir -p {tmp_path / 'nowhere'}" in str(caught.value)
    assert not (tmp_path / "nowhere").exists()


def test_stage_keeps_a_copy_and_is_idempotent(target: FilesTarget, app: Path) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    copy = app / ".lastgood-target" / "releases" / r1.name
    assert target.staged_path(r1) == copy
    assert (copy / "rules" / "old.yaml").read_bytes() == V1["rules/old.yaml"]
    inode = os.stat(copy / "prompt.txt").st_ino
    target.stage(r1, V1)
    assert os.stat(copy / "prompt.txt").st_ino == inode
    assert target.retained() == [r1]
    assert served(app) == {"local.ini": b"not lastgood's\n"}
    assert target.live() is None and target.actual_hash() is None


def test_stage_refuses_files_inside_the_state_folder(target: FilesTarget) -> None:
    with pytest.raises(TargetError, match="state folder"):
        target.stage(Release(1, "0" * 64), {".lastgood-target/meta/state.json": b"{}"})


def test_activate_writes_replaces_and_deletes_only_managed_files(
    target: FilesTarget, app: Path
) -> None:
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.stage(r2, V2)
    target.activate(r1)
    assert served(app) == {**V1, "local.ini": b"not lastgood's\n"}
    assert target.live() == r1 and target.actual_hash() == r1.content_hash
    os.chmod(app / "prompt.txt", 0o600)
    same = os.stat(app / "same.txt").st_ino
    target.activate(r2)
    assert served(app) == {**V2, "local.ini": b"not lastgood's\n"}
    assert os.stat(app / "same.txt").st_ino == same
    assert os.stat(app / "prompt.txt").st_mode & 0o777 == 0o600
    assert target.live() == r2 and target.actual_hash() == r2.content_hash
    current = json.loads((app / ".lastgood-target" / "current.json").read_text())
    assert current == {"release": r2.name, "version": 2, "content_hash": r2.content_hash}
    assert not (app / ".lastgood-target" / "journal.json").exists()
    target.activate(r1)
    assert served(app) == {**V1, "local.ini": b"not lastgood's\n"}


def test_activate_refuses_a_release_that_is_not_staged(target: FilesTarget) -> None:
    with pytest.raises(TargetError, match="not staged"):
        target.activate(release(1, V1))


def test_hand_edit_and_delete_change_actual_hash(target: FilesTarget, app: Path) -> None:
    r1 = deploy(target, 1)
    (app / "config.txt").write_text("edited by hand\n")
    assert target.actual_hash() != r1.content_hash
    (app / "config.txt").write_text("version 1\n")
    assert target.actual_hash() == r1.content_hash
    (app / "unrelated.txt").write_text("not managed\n")
    assert target.actual_hash() == r1.content_hash
    (app / "config.txt").unlink()
    assert target.actual_hash() not in (None, r1.content_hash)


def test_previous_skips_bad_and_not_retained(target: FilesTarget) -> None:
    r1, r2, r3, r4 = (deploy(target, n) for n in (1, 2, 3, 4))
    assert target.previous() == r3
    target.record_verdict(r3, "bad")
    assert target.previous() == r2
    assert target.prune(1, protect=[r1]) == [r2, r3]
    assert target.previous() == r1
    target.activate(r1)
    assert target.previous() == r4


def test_previous_skips_releases_never_proven_good(target: FilesTarget) -> None:
    r1 = deploy(target, 1)
    deploy(target, 2, verdict=None)  # its bake was interrupted: never proven
    deploy(target, 3)
    assert target.previous() == r1
    target.record_verdict(r1, "withdrawn")
    assert target.previous() is None


def test_prune_keeps_live_and_protected(target: FilesTarget, app: Path) -> None:
    releases = [deploy(target, n) for n in range(1, 6)]
    target.activate(releases[1])
    assert target.prune(2, protect=[releases[0]]) == [releases[2]]
    assert target.retained() == [releases[0], releases[1], releases[3], releases[4]]
    assert target.prune(0, protect=[]) == [releases[0], releases[3], releases[4]]
    assert target.retained() == [releases[1]]
    assert target.actual_hash() == releases[1].content_hash
    assert (app / "config.txt").read_text() == "version 2\n"


def test_recover_without_a_journal(target: FilesTarget, app: Path) -> None:
    deploy(target, 1)
    assert target.recover() is None
    (app / ".lastgood-target" / ".lastgood-tmp-abc").write_text("half")
    assert target.recover() is not None
    assert not (app / ".lastgood-target" / ".lastgood-tmp-abc").exists()


SCRIPT = """
import json, sys
from pathlib import Path
from lastgood.targets.base import Release
from lastgood.targets.files import FilesTarget

root, version, content_hash, files = sys.argv[1:]
target = FilesTarget("staging", {"path": "app/config"}, Path(root))
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
        ("target.mid-switch", 2),
        ("target.after-switch", 2),
        ("", 2),
    ],
)
def test_a_killed_deploy_leaves_one_complete_version_after_recover(
    tmp_path: Path, target: FilesTarget, app: Path, failpoint: str, survivor: int
) -> None:
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.activate(r1)
    target.record_verdict(r1, "good")  # v1 passed its bake
    assert run_deploy(tmp_path, r2, V2, failpoint) == (-9 if failpoint else 0)
    if failpoint == "target.mid-switch":
        assert target.live() == r1  # the journal's "from" until the switch is finished
        assert target.actual_hash() != r1.content_hash
    sentence = target.recover()
    if failpoint == "target.mid-switch":
        assert sentence == f"finished the interrupted switch to {r2.name} on {target.path}"
    expected = {1: r1, 2: r2}[survivor]
    live = target.live()
    assert live == expected and target.actual_hash() == expected.content_hash
    assert served(app) == {**(V1 if survivor == 1 else V2), "local.ini": b"not lastgood's\n"}
    assert not [p for p in app.rglob(".lastgood-tmp-*")]
    assert not [p for p in (app / ".lastgood-target" / "releases").iterdir() if p.name[0] == "."]
    target.stage(r2, V2)
    target.activate(r2)
    assert target.live() == r2 and target.actual_hash() == r2.content_hash
    assert target.previous() == r1


def test_a_file_can_become_a_folder_and_back(target: FilesTarget, app: Path) -> None:
    as_file = release(1, {"routing": b"a: 1\n"})
    as_folder = release(2, {"routing/eu.yaml": b"a: 2\n"})
    for rel, files in (
        (as_file, {"routing": b"a: 1\n"}),
        (as_folder, {"routing/eu.yaml": b"a: 2\n"}),
    ):
        target.stage(rel, files)
    target.activate(as_file)
    target.activate(as_folder)
    assert (app / "routing" / "eu.yaml").read_bytes() == b"a: 2\n"
    target.activate(as_file)
    assert (app / "routing").read_bytes() == b"a: 1\n"
    assert target.actual_hash() == as_file.content_hash


def test_files_lastgood_did_not_write_are_kept_and_put_back(target: FilesTarget, app: Path) -> None:
    (app / "local.yaml").write_bytes(b"app-owned: secret tuning\n")
    v1 = release(1, {"health.txt": b"ok\n"})
    v2 = release(2, {"health.txt": b"ok\n", "local.yaml": b"team version\n"})
    target.stage(v1, {"health.txt": b"ok\n"})
    target.stage(v2, {"health.txt": b"ok\n", "local.yaml": b"team version\n"})
    target.activate(v1)
    target.activate(v2)
    assert (app / "local.yaml").read_bytes() == b"team version\n"
    target.activate(v1)  # v1 has no local.yaml: the app's own file comes back
    assert (app / "local.yaml").read_bytes() == b"app-owned: secret tuning\n"
    target.activate(v2)
    target.activate(v1)
    assert (app / "local.yaml").read_bytes() == b"app-owned: secret tuning\n"


def test_a_path_blocked_by_a_file_lastgood_did_not_write_is_a_clear_error(
    target: FilesTarget, app: Path
) -> None:
    (app / "routing").write_bytes(b"someone else's file\n")
    rel = release(1, {"routing/eu.yaml": b"a: 1\n"})
    target.stage(rel, {"routing/eu.yaml": b"a: 1\n"})
    with pytest.raises(TargetError, match="could not switch") as raised:
        target.activate(rel)
    assert "routing" in str(raised.value)


def test_a_stuck_switch_never_blocks_a_rollback(target: FilesTarget, app: Path) -> None:
    v1 = release(1, {"health.txt": b"ok\n"})
    v2 = release(2, {"health.txt": b"v2\n", "routing/eu.yaml": b"a: 2\n"})
    target.stage(v1, {"health.txt": b"ok\n"})
    target.stage(v2, {"health.txt": b"v2\n", "routing/eu.yaml": b"a: 2\n"})
    target.activate(v1)
    (app / "routing").write_bytes(b"someone else's file\n")  # a folder cannot go here
    with pytest.raises(TargetError):
        target.activate(v2)
    with pytest.raises(TargetError):
        target.recover()  # the half-done switch cannot finish by itself
    target.activate(v1)  # but switching back supersedes it
    assert target.live() == v1 and target.actual_hash() == v1.content_hash
    assert (app / "health.txt").read_bytes() == b"ok\n"
    assert (app / "routing").read_bytes() == b"someone else's file\n"
    assert target.recover() is None


def kept(app: Path) -> list[str]:
    """Paths under ``STATE/originals``: files lastgood holds for their other owner."""
    folder = app / ".lastgood-target" / "originals"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_switch_killed_after_writing_a_new_file_never_keeps_it_as_someone_elses(
    tmp_path: Path, target: FilesTarget, app: Path
) -> None:
    """Killed right after writing ``deep/er/extra.txt`` (new in V2, first in write order): the
    switch is finished, and every later switch serves exactly each version's files."""
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.activate(r1)
    assert run_deploy(tmp_path, r2, V2, "target.mid-switch") == -9
    assert (app / "deep" / "er" / "extra.txt").read_bytes() == V2["deep/er/extra.txt"]
    assert target.recover() is not None
    assert served(app) == {**V2, "local.ini": b"not lastgood's\n"}
    for rel, files in ((r1, V1), (r2, V2), (r1, V1), (r2, V2), (r1, V1)):
        target.activate(rel)
        assert served(app) == {**files, "local.ini": b"not lastgood's\n"}, rel.name
        assert target.actual_hash() == rel.content_hash
    assert kept(app) == []


def test_a_superseded_half_done_switch_is_never_taken_for_someone_elses_files(
    tmp_path: Path, target: FilesTarget, app: Path
) -> None:
    """A switch killed after writing a new file is superseded (no recover) by a switch to a
    release that has the same path; switching back then removes lastgood's file."""
    v3 = {"prompt.txt": b"v3\n", "deep/er/extra.txt": b"v3 keeps this path\n"}
    r1, r2, r3 = release(1, V1), release(2, V2), release(3, v3)
    target.stage(r1, V1)
    target.stage(r3, v3)
    target.activate(r1)
    assert run_deploy(tmp_path, r2, V2, "target.mid-switch") == -9
    target.activate(r3)
    assert served(app) == {**v3, "local.ini": b"not lastgood's\n"}
    assert kept(app) == []
    target.activate(r1)
    assert served(app) == {**V1, "local.ini": b"not lastgood's\n"}
    assert target.actual_hash() == r1.content_hash


def test_a_half_done_switch_hashes_every_path_it_may_have_written(
    tmp_path: Path, target: FilesTarget, app: Path
) -> None:
    """While superseded and superseding journals pile up, status sees lastgood's files."""
    v3 = {"prompt.txt": b"v3\n"}
    r1, r2, r3 = release(1, V1), release(2, V2), release(3, v3)
    for rel, files in ((r1, V1), (r3, v3)):
        target.stage(rel, files)
    target.activate(r1)
    assert run_deploy(tmp_path, r2, V2, "target.mid-switch") == -9
    (app / "routing").write_bytes(b"someone else's file\n")
    blocked = {**v3, "routing/eu.yaml": b"a: 4\n"}
    r4 = release(4, blocked)
    target.stage(r4, blocked)
    with pytest.raises(TargetError):
        target.activate(r4)  # stuck: a file lastgood did not write stands where a folder goes
    assert target.live() == r1 and target.actual_hash() != r1.content_hash
    target.activate(r3)
    assert served(app) == {
        **v3,
        "local.ini": b"not lastgood's\n",
        "routing": b"someone else's file\n",
    }
    assert target.actual_hash() == r3.content_hash


def test_originals_are_refreshed_when_a_path_is_taken_over_again(
    target: FilesTarget, app: Path
) -> None:
    """The app team edits its own file while lastgood does not hold the path: the edit wins."""
    v1, v2 = {"health.txt": b"ok\n"}, {"health.txt": b"ok\n", "local.yaml": b"team version\n"}
    r1, r2 = release(1, v1), release(2, v2)
    target.stage(r1, v1)
    target.stage(r2, v2)
    (app / "local.yaml").write_bytes(b"app-owned: first\n")
    target.activate(r1)
    target.activate(r2)
    target.activate(r1)
    assert kept(app) == []
    (app / "local.yaml").write_bytes(b"app-owned: edited later\n")
    target.activate(r2)
    target.activate(r1)
    assert (app / "local.yaml").read_bytes() == b"app-owned: edited later\n"
    (app / "local.yaml").unlink()  # the app team removes it; lastgood must not bring it back
    target.activate(r2)
    target.activate(r1)
    assert not (app / "local.yaml").exists()


def test_a_leftover_original_never_replaces_the_owners_current_file(
    target: FilesTarget, app: Path
) -> None:
    """A copy left in ``STATE/originals`` by a process killed after its switch (before it
    dropped the copies it had put back) is refreshed on the next take-over, never put back."""
    v1, v2 = {"health.txt": b"ok\n"}, {"health.txt": b"ok\n", "a.yaml": b"v2\n", "b.yaml": b"v2\n"}
    r1, r2 = release(1, v1), release(2, v2)
    target.stage(r1, v1)
    target.stage(r2, v2)
    target.activate(r1)
    for name in ("a.yaml", "b.yaml"):
        leftover = app / ".lastgood-target" / "originals" / name
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"an old copy\n")
    (app / "b.yaml").write_bytes(b"the owner's file today\n")
    target.activate(r2)
    target.activate(r1)
    assert not (app / "a.yaml").exists()
    assert (app / "b.yaml").read_bytes() == b"the owner's file today\n"
    assert kept(app) == []


def test_a_journal_from_an_earlier_lastgood_is_finished_without_keeping_its_own_files(
    target: FilesTarget, app: Path
) -> None:
    """Upgrading with a half-done switch on disk: its journal has no adoption mark, so a file
    already holding the release's bytes is lastgood's; any other file there is kept."""
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.stage(r2, V2)
    target.activate(r1)
    (app / "rules" / "new.yaml").write_bytes(b"the app team's own\n")
    journal = {  # what lastgood wrote before the adoption mark existed
        "to": r2.name,
        "from": r1.name,
        "write": sorted(V2),
        "delete": ["rules/old.yaml"],
        "adopt": ["deep/er/extra.txt", "rules/new.yaml"],
    }
    target.journal_path.write_text(json.dumps(journal))
    (app / "deep" / "er").mkdir(parents=True)
    (app / "deep" / "er" / "extra.txt").write_bytes(V2["deep/er/extra.txt"])  # already written
    assert target.recover() is not None
    assert served(app) == {**V2, "local.ini": b"not lastgood's\n"}
    assert kept(app) == ["rules/new.yaml"]
    target.activate(r1)
    assert served(app) == {
        **V1,
        "local.ini": b"not lastgood's\n",
        "rules/new.yaml": b"the app team's own\n",
    }


def test_a_damaged_kept_copy_is_refused_before_anything_switches(
    target: FilesTarget, app: Path
) -> None:
    r1, r2 = release(1, V1), release(2, V2)
    target.stage(r1, V1)
    target.stage(r2, V2)
    target.activate(r1)
    target.activate(r2)
    copy = target.staged_path(r1)
    assert copy is not None
    (copy / "prompt.txt").write_bytes(b"damaged on disk\n")
    (copy / "rules" / "old.yaml").unlink()
    assert not target.holds(r1)
    with pytest.raises(DamagedCopyError, match="damaged") as raised:
        target.activate(r1)
    message = str(raised.value)
    assert "prompt.txt, rules/old.yaml" in message and "nothing was switched" in message
    assert "lastgood rollback staging --to v1" in message
    assert served(app) == {**V2, "local.ini": b"not lastgood's\n"}
    assert target.live() == r2 and not target.journal_path.exists()
    target.stage(r1, V1)  # what a rollback does with the store's bytes: the copy is rewritten
    assert target.holds(r1)
    target.activate(r1)
    assert served(app) == {**V1, "local.ini": b"not lastgood's\n"}
    assert target.actual_hash() == r1.content_hash


def test_a_kept_copy_whose_metadata_was_edited_is_rewritten(target: FilesTarget) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    meta = target.store.meta_path(r1.name)
    data = json.loads(meta.read_text())
    data["manifest"]["prompt.txt"] = "0" * 64
    meta.write_text(json.dumps(data))
    assert not target.holds(r1)
    with pytest.raises(DamagedCopyError, match=r"damaged \(metadata\)"):
        target.activate(r1)
    target.stage(r1, V1)
    target.activate(r1)
    assert target.actual_hash() == r1.content_hash


def test_a_kept_copy_that_cannot_be_repaired_is_a_clear_error(target: FilesTarget) -> None:
    r1 = release(1, V1)
    target.stage(r1, V1)
    copy = target.staged_path(r1)
    assert copy is not None
    (copy / "prompt.txt").unlink()
    (copy / "prompt.txt").mkdir()  # a folder where the file must go: cannot be rewritten
    (copy / "prompt.txt" / "in-the-way").write_text("x")
    with pytest.raises(TargetError, match="could not repair the kept copy") as raised:
        target.stage(r1, V1)
    assert f"move {copy}" in str(raised.value)


def test_repairing_the_live_release_supersedes_a_stuck_switch(
    target: FilesTarget, app: Path
) -> None:
    """A switch that could not finish shows as drift of the live release. Repairing it (a
    rollback or deploy of the live last known good) must end that switch too, so no later
    command can finish it and put the other release live behind everyone's back."""
    v1 = release(1, {"health.txt": b"ok\n"})
    v2 = release(2, {"health.txt": b"v2\n", "routing/eu.yaml": b"a: 2\n"})
    target.stage(v1, {"health.txt": b"ok\n"})
    target.stage(v2, {"health.txt": b"v2\n", "routing/eu.yaml": b"a: 2\n"})
    target.activate(v1)
    (app / "routing").write_bytes(b"someone else's file\n")
    with pytest.raises(TargetError):
        target.activate(v2)  # health.txt already says v2; routing/ is in the way
    assert target.actual_hash() != v1.content_hash
    repaired = target.repair(v1, {"health.txt": b"ok\n"})
    assert repaired == ["health.txt"]
    (app / "routing").unlink()  # the obstacle goes away later...
    assert target.recover() is None  # ...and there is no switch left to finish
    assert target.live() == v1 and target.actual_hash() == v1.content_hash
    assert (app / "health.txt").read_bytes() == b"ok\n"
