"""``lastgood.operations.versions``: ``log``, ``show`` and ``diff``, read from a real store."""

from __future__ import annotations

import pytest

from lastgood.errors import NotFoundError
from lastgood.operations.versions import changes, default_old, diff, log, show, sides
from lastgood.project import Project
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, deployed, version, write


def test_log_lists_versions_newest_first_up_to_the_limit(project: ProjectFactory) -> None:
    made = project()
    for marker in ("one", "two", "three"):
        version(made, healthy_files(marker), message=marker)
    assert [v.message for v in log(made)] == ["three", "two", "one"]
    assert [v.number for v in log(made, limit=2)] == [3, 2]
    assert len(log(made, limit=None)) == 3


def test_show_gives_a_versions_files_or_the_one_asked_for(project: ProjectFactory) -> None:
    made = project()
    version(made, {**healthy_files("one"), "logo.png": b"\x89PNG\x00\xff"})

    shown, files = show(made, "v1")
    assert shown.number == 1
    assert sorted(files) == ["health.txt", "logo.png", "scoring/thresholds.yaml"]
    assert show(made, "1", "logo.png")[1] == {"logo.png": b"\x89PNG\x00\xff"}  # exact bytes
    with pytest.raises(NotFoundError) as missing:
        show(made, "v1", "scoring/missing.yaml")
    assert missing.value.message == "v1 has no file 'scoring/missing.yaml'"
    assert missing.value.hint == "'lastgood show v1' lists its files"


def test_diff_names_both_sides_and_marks_added_removed_and_binary_files(
    project: ProjectFactory,
) -> None:
    made = project()
    version(made, {**healthy_files("one"), "old.txt": "gone soon\n", "logo.png": b"\x89\x00"})
    (made.root / "old.txt").unlink()
    version(made, {**healthy_files("two"), "new.txt": "hello\n", "logo.png": b"\x89\x01"})

    text = diff(made, "v1", "v2")

    assert "--- v1/scoring/thresholds.yaml\n+++ v2/scoring/thresholds.yaml\n" in text
    assert "-marker: one\n+marker: two\n" in text
    assert "--- /dev/null\n+++ v2/new.txt\n" in text and "--- v1/old.txt\n+++ /dev/null\n" in text
    assert "Binary file logo.png differs\n" in text
    assert "health.txt" not in text  # unchanged files are left out
    assert changes(*sides(made, "v1", "v2")) == {
        "added": ["new.txt"], "changed": ["logo.png", "scoring/thresholds.yaml"],
        "removed": ["old.txt"],
    }  # fmt: skip


def test_diff_without_a_version_compares_what_is_live_with_the_folder(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    write(made, healthy_files("edited"))

    assert default_old(made) == ("staging:live", "comparing v1 (live on staging) with the folder")
    assert "--- v1/scoring/thresholds.yaml\n+++ workspace/scoring/thresholds.yaml\n" in diff(made)
    assert diff(made, "v1", "workspace") == diff(made)


def test_without_anything_live_the_default_says_what_it_compares_and_why(
    project: ProjectFactory,
) -> None:
    made = project()
    assert default_old(made) == (
        None,
        "comparing nothing (nothing is live on staging yet, and no version is recorded) with "
        "the folder",
    )
    write(made, healthy_files("one"))
    assert "--- /dev/null\n+++ workspace/health.txt\n" in diff(made)
    version(made)
    assert default_old(made) == (
        "v1", "comparing v1, the newest version (nothing is live on staging yet), with the folder",
    )  # fmt: skip
    (made.root / "lastgood.toml").write_text("")  # no environment at all
    bare = Project.open(made.root, actor="tester")
    try:
        assert default_old(bare)[1] == (
            "comparing v1, the newest version (no environment is configured), with the folder"
        )
    finally:
        bare.close()


# ---- secrets: masked for people, real for code -----------------------------------------------

SECRET_TOML = '[secrets]\npaths = ["integrations/*.env"]\nkeys = ["*crm_key*"]\n'


def test_view_masks_and_show_and_reveal_give_the_real_bytes(project: ProjectFactory) -> None:
    from lastgood.operations.versions import view

    made = project(toml=SECRET_TOML)
    files = {"crm.yaml": "crm_key: k-1234567\nrate: 3\n", "integrations/a.env": "A=1\n"}
    version(made, files)
    assert view(made, "v1", "crm.yaml")[1] == {"crm.yaml": "crm_key: ••••••#1\nrate: 3\n".encode()}
    assert view(made, "v1")[1]["integrations/a.env"] == b"(secret file: 4 bytes)\n"
    assert view(made, "v1", reveal=True)[1]["crm.yaml"] == b"crm_key: k-1234567\nrate: 3\n"
    assert show(made, "v1")[1]["integrations/a.env"] == b"A=1\n"


def test_shown_file_refuses_a_secret_file_and_says_when_it_masked(project: ProjectFactory) -> None:
    from lastgood.errors import ForbiddenError
    from lastgood.operations.versions import shown_file

    made = project(toml=SECRET_TOML)
    version(
        made, {**healthy_files(), "crm.yaml": "crm_key: k-1234567\n", "integrations/a.env": "A=1\n"}
    )
    assert shown_file(made, "v1", "crm.yaml") == ("crm_key: ••••••#1\n".encode(), True)
    assert shown_file(made, "v1", "health.txt") == (b"ok\n", False)
    with pytest.raises(ForbiddenError) as refused:
        shown_file(made, "v1", "integrations/a.env")
    assert "integrations/a.env of v1 is a secret file" in refused.value.message
    assert (
        refused.value.hint
        == "read it where the store is: 'lastgood show v1 integrations/a.env --reveal'"
    )


def test_diffs_are_masked_even_for_sides_made_without_the_project(project: ProjectFactory) -> None:
    from lastgood.operations.versions import Side, unified

    made = project(toml=SECRET_TOML)
    version(made, {"crm.yaml": "crm_key: k-1111111\npassword: pw-1111\n"})
    version(made, {"crm.yaml": "crm_key: k-2222222\npassword: pw-2222\n"})
    text = diff(made, "v1", "v2")
    assert "k-1111111" not in text and "+crm_key: ••••••#3 (new value)" in text
    bare = unified(
        Side("a", {"x.yaml": b"password: pw-1\n"}), Side("b", {"x.yaml": b"password: pw-2\n"})
    )
    assert "pw-" not in bare  # no policy given: the defaults still mask
    real = unified(*sides(made, "v1", "v2"), reveal=True)
    assert "+crm_key: k-2222222" in real
