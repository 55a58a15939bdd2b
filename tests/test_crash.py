"""A process killed at any point (kill -9) leaves every target serving one complete version, and
the next command reconciles the ledger with what the target really serves.

Everything runs through the real CLI as subprocesses on real files (see
``conftest_crash_helpers``): named failpoints for every step a deploy or rollback can reach, kills
at random moments, and scenarios from real incidents where a rollback must never land on a
failed version nor "appear to work" while old content stays live.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lastgood import failpoint
from tests.conftest_crash_helpers import (
    ENV,
    KILLED,
    Workspace,
    assert_recovered,
    content_hash,
    drop_template_databases,
    make_workspace,
)

MakeWorkspace = Callable[..., Workspace]


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


# ---- 1. named failpoints ---------------------------------------------------------------------

# failpoint -> (the scenario that reaches it, the version served right after the kill).
# "deploy-good": v1 live and good, deploy a good v2.  "deploy-bad": v1 live and good, deploy a
# bad v2 (it trips, is marked bad, v1 is restored).  "rollback": v1 then v2 good, roll back to v1.
SCENARIOS: dict[str, tuple[str, dict[str, str]]] = {
    "deploy.after-lease": ("deploy-good", {"directory": "v1", "files": "v1"}),
    "deploy.after-stage": ("deploy-good", {"directory": "v1", "files": "v1"}),
    "deploy.before-activate": ("deploy-good", {"directory": "v1", "files": "v1"}),
    "deploy.after-activate": ("deploy-good", {"directory": "v2", "files": "v2"}),
    "deploy.mid-bake": ("deploy-good", {"directory": "v2", "files": "v2"}),
    "deploy.after-mark-bad": ("deploy-bad", {"directory": "v2", "files": "v2"}),
    "deploy.before-restore": ("deploy-bad", {"directory": "v2", "files": "v2"}),
    "deploy.after-restore": ("deploy-bad", {"directory": "v1", "files": "v1"}),
    "deploy.after-mark-good": ("deploy-good", {"directory": "v2", "files": "v2"}),
    "rollback.after-lease": ("rollback", {"directory": "v2", "files": "v2"}),
    "rollback.before-activate": ("rollback", {"directory": "v2", "files": "v2"}),
    "rollback.after-activate": ("rollback", {"directory": "v1", "files": "v1"}),
    "rollback.after-verify": ("rollback", {"directory": "v1", "files": "v1"}),
    "target.after-stage-files": ("deploy-good", {"directory": "v1", "files": "v1"}),
    "target.before-rename-release": ("deploy-good", {"directory": "v1", "files": "v1"}),
    # the directory switch is one rename (not done yet: old version); the files target's journal
    # is rolled forward by the next command (new version)
    "target.mid-switch": ("deploy-good", {"directory": "v1", "files": "v2"}),
    "target.after-switch": ("deploy-good", {"directory": "v2", "files": "v2"}),
}
# the switch failpoints again, on the path an incident takes: a rollback's pointer switch
ROLLBACK_SWITCH = {
    "target.mid-switch": {"directory": "v2", "files": "v1"},
    "target.after-switch": {"directory": "v1", "files": "v1"},
}
# the core crash scenarios, also run with the store on PostgreSQL
POSTGRES_CORE = (
    "deploy.after-activate",
    "deploy.before-restore",
    "rollback.after-activate",
    "target.mid-switch",
)

CASES = [
    pytest.param(name, scenario, served, kind, "sqlite", id=f"{name}-{kind}")
    for name, (scenario, served) in SCENARIOS.items()
    for kind in ("directory", "files")
]
CASES += [
    pytest.param(name, "rollback", served, kind, "sqlite", id=f"{name}-rollback-{kind}")
    for name, served in ROLLBACK_SWITCH.items()
    for kind in ("directory", "files")
]
CASES += [
    pytest.param(
        name,
        SCENARIOS[name][0],
        SCENARIOS[name][1],
        "directory",
        "postgresql",
        id=f"{name}-directory-postgresql",
        marks=pytest.mark.postgres,
    )
    for name in POSTGRES_CORE
]


def test_every_failpoint_has_a_crash_scenario() -> None:
    """A failpoint added or renamed in the code must get a scenario here."""
    assert set(SCENARIOS) == set(failpoint.NAMES) - {
        *failpoint.MIGRATION_NAMES,
        *failpoint.ROLLOUT_NAMES,
    }
    assert set(ROLLBACK_SWITCH) <= set(failpoint.NAMES)
    assert set(POSTGRES_CORE) <= set(failpoint.NAMES)


def _crash(workspace: Workspace, name: str, scenario: str) -> None:
    if scenario == "rollback":
        args: tuple[str, ...] = ("rollback", ENV, "-m", "undo v2")
    else:
        workspace.write("v2", good=scenario == "deploy-good")
        args = ("deploy", ENV, "-m", "v2")
    result = workspace.run(*args, failpoint=name)
    assert result.code == KILLED, (
        f"failpoint {name!r} was never hit by the {scenario} scenario (renamed or moved?):\n"
        + result.describe()
    )


def _next_command(workspace: Workspace, scenario: str, context: str) -> None:
    """The next deploy or rollback works at once (no lock error) and ends healthy."""
    if scenario == "deploy-good":
        result = workspace.run("deploy", ENV, "-m", "v2 again")
        expected = "v2"
    else:
        result = workspace.run("rollback", ENV, "--to", "v1", "-m", "after the crash")
        expected = "v1"
    assert result.code == 0, f"{context}: the next command failed:\n{result.describe()}"
    assert workspace.served_label(context) == expected


@pytest.mark.parametrize(("name", "scenario", "served", "kind", "store"), CASES)
def test_killed_at_failpoint(
    workspace_factory: MakeWorkspace,
    name: str,
    scenario: str,
    served: dict[str, str],
    kind: str,
    store: str,
) -> None:
    workspace = workspace_factory(kind, store, "v1v2" if scenario == "rollback" else "v1")
    _crash(workspace, name, scenario)
    context = f"killed at {name} ({scenario}, {kind} target, {store})"
    assert assert_recovered(workspace, context) == served[kind], context
    _next_command(workspace, scenario, context)


# ---- 2. kills at random moments --------------------------------------------------------------

SEED = 20_251_126
TRIALS = 4  # per target type and scenario (good, bad): 8 per target type
STORES = [
    pytest.param("directory", "sqlite", TRIALS, id="directory"),
    pytest.param("files", "sqlite", TRIALS, id="files"),
    # the files target again with the store on PostgreSQL: fewer trials, to keep the suite quick
    pytest.param("files", "postgresql", 3, id="files-postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("kind", "store", "trials"), STORES)
@pytest.mark.parametrize("good", [True, False], ids=["good-version", "bad-version"])
def test_killed_at_random_moments(
    workspace_factory: MakeWorkspace, kind: str, store: str, trials: int, good: bool
) -> None:
    """Deploy, kill -9 somewhere in it, check the invariants, put v1 back; repeat.

    Trial 0 runs to the end and measures how long a whole deploy takes; the other trials kill
    at a moment drawn uniformly between 0 and that duration. Every version has a file of its
    own (new in it, gone in the next), so a kill mid-switch may leave a new file written.
    """
    workspace = workspace_factory(kind, store)
    seed = SEED + (0 if good else 1) + (0 if kind == "directory" else 2)
    seed += 4 if store == "postgresql" else 0
    rng = random.Random(seed)
    duration = 0.0
    outcomes = []
    for trial in range(trials):
        label = f"t{trial}-{'good' if good else 'bad'}"
        workspace.write(label, good=good)
        delay = rng.uniform(0, duration) if trial else None
        running = workspace.start("deploy", ENV, "-m", label)
        if delay is not None:
            time.sleep(delay)  # the thing under test: a kill at a random moment of the deploy
        killed = delay is not None and running.kill()
        result = running.finish()
        killed = killed and result.code == KILLED  # not when it ended just before the kill
        duration = duration or result.seconds
        context = (
            f"seed={seed} trial={trial} delay={delay if delay is None else round(delay, 3)}s of "
            f"{duration:.2f}s, {kind} target, {store}, {'good' if good else 'bad'} version, "
            f"{'killed' if killed else 'ran to the end'}"
        )
        if not killed:
            assert result.code == (0 if good else 3), f"{context}\n{result.describe()}"
        serving = assert_recovered(workspace, context)
        assert serving in ("v1", label), context
        if result.code == 3:
            assert serving == "v1", context
        back = workspace.run("rollback", ENV, "--to", "v1", "-m", f"after {context}")
        assert back.code == 0, f"{context}: the next command failed:\n{back.describe()}"
        assert workspace.served_label(context) == "v1", context
        outcomes.append(f"trial {trial}: {context.split(', ')[-1]}, served {serving}")
    print(f"seed={seed}", *outcomes, sep="\n")  # shown with -rP
    kills = sum("killed" in outcome for outcome in outcomes)
    assert kills >= trials // 2, f"seed={seed}: too few trials were killed:\n" + "\n".join(outcomes)


# ---- 3. a files-target switch killed after writing a file that is new -----------------------


def _assert_serves(workspace: Workspace, label: str, context: str) -> None:
    """The target serves exactly ``label``'s files, and status agrees, with no drift."""
    assert workspace.served_label(context) == label, context
    report = workspace.status()
    expected = content_hash(workspace.known[label])
    assert report["live_hash"] == report["actual_hash"] == expected, f"{context}: {report}"


def test_a_switch_killed_after_writing_a_new_file_leaves_no_stray_file(
    workspace_factory: MakeWorkspace,
) -> None:
    """The next command finishes the switch without keeping lastgood's own new file as
    someone else's, so no later switch puts it back: every version serves exactly its files.
    (The store plays no part in the journal; the random trials run the files target on both.)"""
    workspace = workspace_factory("files")
    workspace.write("v2", good=True)
    killed = workspace.run("deploy", ENV, "-m", "v2", failpoint="target.mid-switch")
    assert killed.code == KILLED, killed.describe()
    new_file = workspace.live / "added" / "v2.txt"
    assert new_file.read_bytes() == workspace.known["v2"]["added/v2.txt"], "not killed mid-switch"
    assert assert_recovered(workspace, "after the kill") == "v2"
    steps = [
        (("rollback", ENV, "--to", "v1"), "v1"),
        (("deploy", ENV, "--version", "v2"), "v2"),
        (("rollback", ENV, "--to", "v1"), "v1"),
        (("rollback", ENV, "--to", "v2"), "v2"),
    ]
    for args, label in steps:
        result = workspace.run(*args)
        assert result.code == 0, result.describe()
        _assert_serves(workspace, label, f"after `lastgood {' '.join(args)}`")


# ---- 4. scenarios from real incidents --------------------------------------------------------


def _assert_live_bytes(workspace: Workspace, ref: str, context: str) -> None:
    """The live folder holds exactly ``ref``'s files, byte for byte (per ``lastgood show``)."""
    shown = workspace.ok("show", ref, "--json").json()
    expected = {path: text.encode() for path, text in shown["files"].items()}
    assert workspace.served() == expected, f"{context}: the live folder is not {ref}"


def _rollback(workspace: Workspace, to: str, *extra: str) -> None:
    result = workspace.run("rollback", ENV, *extra)
    assert result.code == 0, result.describe()
    assert f"restored {to} " in result.out, result.describe()
    _assert_live_bytes(workspace, to, f"after rolling back to {to}")


@pytest.mark.parametrize("kind", ["directory", "files"])
def test_rollback_never_lands_on_a_failed_version(
    workspace_factory: MakeWorkspace, kind: str
) -> None:
    """v1, v2 good; v3 bad is restored to v2; rollback goes to v1, never v3; then stops."""
    workspace = workspace_factory(kind, stage="v1v2")
    workspace.write("v3", good=False)
    failed = workspace.run("deploy", ENV, "-m", "v3")
    assert failed.code == 3, failed.describe()
    _assert_live_bytes(workspace, "v2", "after the automatic rollback")
    _rollback(workspace, "v1")
    again = workspace.run("rollback", ENV)
    assert again.code == 2, again.describe()
    assert "no known good version to roll back to" in again.err, again.describe()
    _assert_live_bytes(workspace, "v1", "after a refused rollback")


def test_rollback_with_only_a_failed_version_left_refuses(
    workspace_factory: MakeWorkspace,
) -> None:
    """v1 good, v2 bad and rolled back: 'rollback' from v1 must not go to v2."""
    workspace = workspace_factory()
    workspace.write("v2", good=False)
    assert workspace.run("deploy", ENV).code == 3
    again = workspace.run("rollback", ENV)
    assert again.code == 2, again.describe()
    assert "no known good version" in again.err
    _assert_live_bytes(workspace, "v1", "after a refused rollback")
    forced = workspace.run("rollback", ENV, "--to", "v2")
    assert forced.code == 5, forced.describe()
    assert "--force" in forced.err
    _assert_live_bytes(workspace, "v1", "after a refused rollback to a bad version")


@pytest.mark.parametrize("kind", ["directory", "files"])
def test_rollback_twice_walks_back(workspace_factory: MakeWorkspace, kind: str) -> None:
    workspace = workspace_factory(kind, stage="v1v2")
    workspace.write("v3", good=True)
    workspace.ok("deploy", ENV, "-m", "v3")
    _rollback(workspace, "v2")
    _rollback(workspace, "v1")
    report = workspace.status()
    assert (report["live_version"], report["last_good"]) == (1, 1), report


def test_failed_version_redeployed_is_refused_unless_forced(
    workspace_factory: MakeWorkspace,
) -> None:
    workspace = workspace_factory()
    bad = workspace.write("v2", good=False)
    assert workspace.run("deploy", ENV, "-m", "v2").code == 3
    by_ref = workspace.run("deploy", ENV, "--version", "v2")
    assert by_ref.code == 5, by_ref.describe()
    assert "--force" in by_ref.err
    # the same bytes recorded again as a new version (v3 in between, then v2's content: v4)
    workspace.write("v3", good=True)
    workspace.ok("snapshot", "-m", "v3")
    workspace.write_files(bad)
    again = workspace.run("deploy", ENV, "-m", "the same bad content again")
    assert again.code == 5, again.describe()
    assert "quarantined" in again.err, again.describe()
    assert [v["number"] for v in workspace.ok("log", "--json").json()] == [4, 3, 2, 1]
    _assert_live_bytes(workspace, "v1", "after refused deploys")
    forced = workspace.run("deploy", ENV, "--force", "-m", "insist")
    assert forced.code == 3, forced.describe()
    _assert_live_bytes(workspace, "v1", "after the forced deploy failed again")


def test_rerun_of_an_interrupted_rollback_does_not_flip_back(
    workspace_factory: MakeWorkspace,
) -> None:
    """v1, v2 good; 'rollback' (to v1) killed after the switch; running it again keeps v1."""
    workspace = workspace_factory(stage="v1v2")
    killed = workspace.run(
        "rollback", ENV, "-m", "v2 breaks the scorer", failpoint="rollback.after-activate"
    )
    assert killed.code == KILLED, killed.describe()
    assert assert_recovered(workspace, "after the killed rollback") == "v1"
    again = workspace.run("rollback", ENV, "-m", "v2 breaks the scorer (again)")
    assert workspace.served_label("after re-running the rollback") == "v1", again.describe()


def _kept_copy(workspace: Workspace, label: str) -> Path:
    """The target's kept copy of the version numbered ``label`` (``v1``)."""
    state = workspace.live if workspace.kind == "directory" else workspace.live / ".lastgood-target"
    (copy,) = (state / "releases").glob(f"{label}-*")
    return copy


def _damage(copy: Path, label: str) -> None:
    (copy / "app.conf").write_bytes(b"damaged on disk\n")
    (copy / "added" / f"{label}.txt").unlink()


@pytest.mark.parametrize("kind", ["directory", "files"])
@pytest.mark.parametrize("to", [(), ("--to", "v1")], ids=["last-good", "to-v1"])
def test_rollback_onto_a_damaged_kept_copy_serves_the_right_bytes(
    workspace_factory: MakeWorkspace, kind: str, to: tuple[str, ...]
) -> None:
    """v1's kept copy on the target was damaged; rolling back to it rewrites it from the store
    and serves v1 byte for byte, never a mix of two versions."""
    workspace = workspace_factory(kind, stage="v1v2")
    _damage(_kept_copy(workspace, "v1"), "v1")
    _rollback(workspace, "v1", *to)
    _assert_serves(workspace, "v1", f"after rolling back onto a damaged copy ({kind})")


def test_offline_rollback_onto_a_damaged_kept_copy_changes_nothing(
    workspace_factory: MakeWorkspace,
) -> None:
    """Without the store there are no bytes to repair from: the files target refuses before the
    first file is switched, and the next online rollback works."""
    workspace = workspace_factory("files", stage="v1v2")
    _damage(_kept_copy(workspace, "v1"), "v1")
    refused = workspace.run("rollback", ENV, "--offline")
    assert refused.code == 5, refused.describe()  # refused before anything changed
    assert "is damaged (added/v1.txt, app.conf); nothing was switched" in refused.err
    assert "Traceback" not in refused.err
    _assert_serves(workspace, "v2", "after the refused offline rollback")
    _rollback(workspace, "v1")
