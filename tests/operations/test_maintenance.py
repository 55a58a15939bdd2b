"""``lastgood.operations.maintenance``: ``store verify``, ``prune`` and ``store copy`` in process.
(The same through the CLI, on SQLite and PostgreSQL, are in ``tests/test_store_tools.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from lastgood.errors import NotFoundError, RefusedError, UsageError
from lastgood.operations.maintenance import copy, prune, verify
from lastgood.operations.rollback import rollback
from lastgood.project import Project
from lastgood.store import open_store
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, deployed, version


def history_of_four(made: Project) -> Project:
    """v1 and v2 deployed, then rolled back to v1 (v2 withdrawn, kept on the target); v3 and
    v4 recorded, never deployed."""
    deployed(made, marker="one")
    deployed(made, marker="two")
    rollback(made, "staging")
    version(made, healthy_files("three"))
    version(made, healthy_files("four"))
    return made


def test_prune_drops_only_what_nothing_needs_and_says_why_the_rest_stayed(
    project: ProjectFactory,
) -> None:
    made = history_of_four(project())

    planned = prune(made, keep=1, dry_run=True)

    assert planned.dry_run and planned.pruned.versions == (3,)
    assert planned.kept == {1: "live in staging", 2: "retained on staging's target"}
    assert made.store.version(3).number == 3  # a dry run drops nothing
    assert made.store.events(None, kind="pruned") == []

    done = prune(made, keep=1)

    assert done.pruned.versions == (3,) and done.pruned.blobs >= 1
    assert done.to_json()["versions"] == ["v3"]
    with pytest.raises(NotFoundError, match="no version v3: it was pruned"):
        made.store.version(3)
    [event] = made.store.events(None, kind="pruned")
    assert event.message == "pruned 1 version (v3)"
    assert [v.number for v in made.store.versions()] == [4, 2, 1]


def test_prune_needs_a_rule_and_both_rules_must_agree(project: ProjectFactory) -> None:
    made = history_of_four(project())
    with pytest.raises(UsageError) as refused:
        prune(made)
    assert "--keep N" in refused.value.message and "--dry-run" in str(refused.value.hint)
    assert prune(made, keep=1, older_than=3600).pruned.versions == ()  # all too young


def test_prune_refuses_when_a_target_cannot_say_what_it_keeps(project: ProjectFactory) -> None:
    made = project()
    version(made)
    version(made, healthy_files("two"))
    (made.root.parent / "live").write_text("a file where the target folder should be\n")
    with pytest.raises(RefusedError, match="cannot tell which versions staging's target keeps"):
        prune(made, keep=1)
    assert [v.number for v in made.store.versions()] == [2, 1]


def test_verify_counts_what_it_checked(project: ProjectFactory) -> None:
    made = history_of_four(project())
    integrity = verify(made)
    assert integrity.healthy and integrity.damage == []
    assert integrity.versions == 4 and integrity.blobs >= 5


def test_copy_moves_the_whole_store_and_checks_the_copy(
    project: ProjectFactory, tmp_path: Path
) -> None:
    made = history_of_four(project())
    destination = f"sqlite:///{tmp_path / 'copy.db'}"

    copied = copy(made, destination)

    assert copied.integrity.healthy and copied.to_json()["verified"] is True
    assert copied.rows["versions"] == 4
    moved = open_store(destination)
    try:
        assert moved.versions() == made.store.versions()
        assert moved.deployments("staging") == made.store.deployments("staging")
        assert moved.files(2) == made.store.files(2)
    finally:
        moved.close()
    with pytest.raises(UsageError, match="the destination is the store itself"):
        copy(made, made.store_url)
