"""``log PATH`` and ``blame PATH`` in process: which versions changed a path, where each change
was live, and who last changed each line (``lastgood.operations.file_history`` and ``.blame``).
The CLI's text, with git commits, is in ``tests/test_file_history.py``."""

from __future__ import annotations

import pytest

from lastgood.errors import NotFoundError, UsageError
from lastgood.operations.blame import blame
from lastgood.operations.drill import drill
from lastgood.operations.file_history import file_log
from lastgood.operations.rollback import rollback
from lastgood.project import Project
from tests.conftest import broken_files, healthy_files
from tests.operations.conftest import ProjectFactory, deployed, version, write

RULES = "scoring/thresholds.yaml"


def files(marker: str, prompt: str | None = None) -> dict[str, str]:
    made = healthy_files(marker)
    if prompt is not None:
        made["prompts/score.txt"] = prompt
    return made


def changes_of(project: Project, path: str) -> list[tuple[int, str]]:
    return [(c.version.number, c.change) for c in file_log(project, path)]


def test_the_versions_that_added_changed_and_removed_a_file_or_a_folder(
    project: ProjectFactory, store_url: str
) -> None:
    made = project(store=store_url)
    version(made, files("one"), message="rules")  # v1: no prompt yet
    version(made, files("one", "be kind\n"), message="a prompt")  # v2 adds it
    version(made, files("two", "be kind\n"), message="rules only")  # v3: the prompt stays
    version(made, files("two", "be brief\n"), message="shorter")  # v4 changes it
    (made.root / "prompts" / "score.txt").unlink()
    version(made, files("two"), message="no prompt")  # v5 removes it
    version(made, files("two", "be kind\n"), message="back")  # v6 brings it back

    assert changes_of(made, "prompts/score.txt") == [
        (6, "added"), (5, "removed"), (4, "changed"), (2, "added")
    ]  # fmt: skip
    assert changes_of(made, "./prompts/") == changes_of(made, "prompts/score.txt")  # the folder
    assert changes_of(made, RULES) == [(3, "changed"), (1, "added")]
    newest = file_log(made, "prompts/score.txt", limit=1)
    assert [c.version.message for c in newest] == ["back"]
    assert newest[0].to_json()["kind"] == "file" and newest[0].live == []
    assert file_log(made, "prompts")[0].to_json()["kind"] == "folder"


def test_a_path_never_held_or_outside_is_refused_with_the_next_step(
    project: ProjectFactory,
) -> None:
    made = project()
    with pytest.raises(NotFoundError, match="no version is recorded yet"):
        file_log(made, RULES)
    version(made, files("one"))
    with pytest.raises(NotFoundError, match=r"no version holds 'scoring/threshold\.yaml'; did "
                       r"you mean scoring/thresholds\.yaml\?"):  # fmt: skip
        file_log(made, "scoring/threshold.yaml")
    for outside in ("../secrets.txt", "/etc/passwd", "", "."):
        with pytest.raises(UsageError, match="is not a path inside the workspace"):
            file_log(made, outside)


def test_each_change_knows_where_and_when_it_was_live(project: ProjectFactory) -> None:
    made = project(toml='\n[env.production]\ntarget = { type = "directory", path = "../prod" }\n')
    deployed(made, files=files("one", "be kind\n"))  # v1 on staging
    deployed(made, "production", files=files("one", "be kind\n"))  # v1 on production too
    deployed(made, files=files("two", "be kind\n"))  # v2: rules only, the prompt stays
    deployed(made, files=files("two", "be brief\n"))  # v3: the prompt changes
    rollback(made, "staging", to="2", reason="the brief prompt drops leads")  # v2 back

    prompt = {c.version.number: c for c in file_log(made, "prompts/score.txt")}
    first = prompt[1].live
    assert [(s.env, s.version, s.started_by.kind) for s in first] == [
        ("production", 1, "deploy"), ("staging", 1, "deploy"), ("staging", 2, "rollback")
    ]  # fmt: skip
    production, staging, again = first
    assert production.until is None and production.ended_by is None  # live there still
    assert staging.ended_by is not None and staging.ended_by.to_version == 3  # v2 carried it on
    assert staging.until == staging.ended_by.activated_at
    assert again.until is None and again.started_by.reason == "the brief prompt drops leads"
    brief = prompt[3].live
    assert [(s.env, s.version) for s in brief] == [("staging", 3)]
    assert brief[0].ended_by is not None and brief[0].ended_by.kind == "rollback"
    ended = brief[0].to_json()["ended_by"]
    assert ended == {"id": brief[0].ended_by.id, "kind": "rollback", "status": "succeeded",
                     "from_version": 3, "to_version": 2, "actor": "tester",
                     "reason": "the brief prompt drops leads"}  # fmt: skip


def test_a_failed_deploy_is_live_until_its_automatic_rollback(project: ProjectFactory) -> None:
    made = project()
    deployed(made, files=healthy_files("one"))
    deployed(made, files=broken_files("zero"))  # fails its bake: last good restored

    spans = {c.version.number: c.live for c in file_log(made, RULES)}

    failed = spans[2][0]
    assert (failed.started_by.kind, failed.started_by.status) == ("deploy", "failed-restored")
    assert failed.ended_by is not None and failed.ended_by.kind == "auto-rollback"
    assert [(s.version, s.started_by.kind, s.until) for s in spans[1]][1] == (
        1, "auto-rollback", None
    )  # fmt: skip


def test_a_drill_variant_is_no_change_and_its_rollback_resumes_the_span(
    project: ProjectFactory,
) -> None:
    made = project(toml='\n[env.staging.drill]\nfiles = { "health.txt" = "drills/bad.txt" }\n'
                   '\n[versioning]\nexclude = ["drills/**"]\n')  # fmt: skip
    write(made, {"drills/bad.txt": "fail\n"})
    deployed(made, files=healthy_files("one"))
    assert drill(made, "staging").passed
    version(made, healthy_files("one") | {"health.txt": "ok\nstill\n"}, message="after")

    health = file_log(made, "health.txt")

    assert [(c.version.number, c.change) for c in health] == [(3, "changed"), (1, "added")]
    spans = health[1].live
    ended = [(s.ended_by.source, s.ended_by.to_version) if s.ended_by else None for s in spans]
    assert [s.started_by.kind for s in spans] == ["deploy", "auto-rollback"]
    assert ended == [("drill", 2), None]  # the drill put its variant, v2, live for a moment
    assert [c.version.number for c in file_log(made, RULES)] == [1]  # the drill left it alone


def test_blame_names_the_version_that_last_changed_each_line(
    project: ProjectFactory, store_url: str
) -> None:
    made = project(store=store_url)
    version(made, files("one", "line a\nline b\nline c\n"), message="first")
    version(made, files("one", "line a\nline B\nline c\nline d\n"), message="second")
    version(made, files("two", "line a\nline B\nline c\nline d\n"), message="rules only")
    version(made, files("two", "line a\nline c\nline d\n"), message="drop b")

    found = blame(made, "prompts/score.txt", "v4")

    assert [(line.number, line.version.number, line.text) for line in found.lines] == [
        (1, 1, "line a"), (2, 1, "line c"), (3, 2, "line d")
    ]  # fmt: skip
    older = blame(made, "prompts/score.txt", "2")
    assert [line.version.number for line in older.lines] == [1, 2, 1, 2]
    assert found.to_json()["lines"][2] == {  # type: ignore[index]
        "line": 3, "version": 2, "commit": None, "author": "tester",
        "when": older.lines[1].version.created_at, "text": "line d",
    }  # fmt: skip


def test_blame_starts_afresh_after_a_removal_and_reads_live_by_default(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, files=files("one", "same\n"))  # v1, live on staging
    (made.root / "prompts" / "score.txt").unlink()
    version(made, files("one"))  # v2: removed
    version(made, files("one", "same\nmore\n"))  # v3: back

    assert [line.version.number for line in blame(made, "prompts/score.txt").lines] == [1]
    assert [line.version.number for line in blame(made, "prompts/score.txt", "3").lines] == [3, 3]
    with pytest.raises(NotFoundError, match=r"v2 has no file 'prompts/score\.txt'"):
        blame(made, "prompts/score.txt", "2")
    with pytest.raises(UsageError, match="prompts is a folder in v3; blame works on one file"):
        blame(made, "prompts", "3")


def test_blame_masks_secrets_as_show_does_and_refuses_binary(project: ProjectFactory) -> None:
    made = project(toml='\n[secrets]\nkeys = ["api_key"]\npaths = ["keys/*.pem"]\n')
    version(made, files("one") | {"crm.yaml": "url: x\napi_key: sk-live-aaaa1111\n",
                                  "keys/crm.pem": "-----BEGIN KEY-----\nAAAA\n"})  # fmt: skip
    version(made, files("one") | {"crm.yaml": "url: x\napi_key: sk-live-bbbb2222\n",
                                  "keys/crm.pem": "-----BEGIN KEY-----\nAAAA\n",
                                  "logo.png": b"\x89PNG\r\n\x00\x01"})  # fmt: skip
    version(made, files("two") | {"crm.yaml": "url: x\napi_key: sk-live-bbbb2222\n",
                                  "keys/crm.pem": "-----BEGIN KEY-----\nBBBB\n",
                                  "logo.png": b"\x89PNG\r\n\x00\x01"})  # fmt: skip

    crm = blame(made, "crm.yaml", "3")
    assert [(line.version.number, line.text) for line in crm.lines] == [
        (1, "url: x"), (2, "api_key: ••••••#1")
    ]  # fmt: skip
    assert "sk-live" not in str(crm.to_json())
    pem = blame(made, "keys/crm.pem", "3")
    assert [(line.version.number, line.text) for line in pem.lines] == [
        (3, "(secret file: 25 bytes)")
    ]  # fmt: skip
    with pytest.raises(UsageError, match=r"logo\.png in v3 is a binary file; blame works on text"):
        blame(made, "logo.png", "3")
