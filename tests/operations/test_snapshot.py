"""``lastgood.operations.snapshot``: the folder becomes a version, once per content."""

from __future__ import annotations

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import RawDataError
from lastgood.operations.snapshot import newest_recorded, snapshot
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, kinds, listen, write


def test_a_snapshot_records_who_why_and_from_where_and_says_so(project: ProjectFactory) -> None:
    made = project()
    heard = listen(made)
    write(made, healthy_files("one"))

    done = snapshot(made, "lower the threshold", source="api")

    assert done.created
    recorded = done.version
    assert (recorded.number, recorded.parent, recorded.file_count) == (1, None, 2)
    assert (recorded.author, recorded.message, recorded.source) == (
        "tester", "lower the threshold", "api",
    )  # fmt: skip
    assert made.store.files(1)["scoring/thresholds.yaml"] == b"threshold: 0.4\nmarker: one\n"
    [event] = heard
    assert event.message == "recorded v1 (2 files) by tester"
    assert event.data == {"hash": recorded.content_hash, "message": "lower the threshold"}
    assert [e.kind for e in made.store.events(None)] == ["snapshot-created"]


def test_an_unchanged_folder_records_nothing_and_says_nothing(project: ProjectFactory) -> None:
    made = project()
    write(made, healthy_files("one"))
    first = snapshot(made, "first").version
    heard = listen(made)

    again = snapshot(made, "again")

    assert not again.created and again.version == first
    assert heard == [] and made.store.head() == first
    write(made, {"prompts/greeting.txt": "hello\n"})
    second = snapshot(made, "")
    assert second.created and (second.version.number, second.version.parent) == (2, 1)
    assert second.version.message == "(no message)"
    assert kinds(heard) == ["snapshot-created"]


def test_a_drill_variant_never_makes_the_next_snapshot_a_duplicate(
    project: ProjectFactory,
) -> None:
    """The newest version the folder was recorded as is compared, not a drill's variant."""
    made = project()
    write(made, healthy_files("one"))
    first = snapshot(made, "first").version
    files = {**made.store.files(1), "lastgood-drill.txt": b"drill\n"}
    made.store.add_version(Bundle(files), author="tester", message="drill", source="drill")

    assert newest_recorded(made) == first
    assert snapshot(made, "unchanged").created is False


def test_data_files_are_refused_by_name_and_nothing_is_recorded(project: ProjectFactory) -> None:
    made = project()
    write(made, {**healthy_files(), "leads.csv": "id,score\n1,0.4\n"})

    with pytest.raises(RawDataError) as refused:
        snapshot(made, "with data")

    assert refused.value.message.startswith("leads.csv looks like raw data (.csv files are data")
    assert 'exclude = ["leads.csv"]' in str(refused.value.hint)
    assert 'allow = ["leads.csv"]' in str(refused.value.hint)
    assert made.store.head() is None and made.store.events(None) == []


def test_a_bundle_read_before_is_recorded_instead_of_the_folder(project: ProjectFactory) -> None:
    made = project()
    write(made, healthy_files("folder"))
    bundle = Bundle({"scoring/thresholds.yaml": b"threshold: 0.5\n"})

    done = snapshot(made, "from the API", bundle=bundle)

    assert done.version.content_hash == bundle.content_hash
    assert made.store.files(done.version.number) == {"scoring/thresholds.yaml": b"threshold: 0.5\n"}


def test_a_snapshot_reports_credentials_in_new_or_changed_files_only(
    project: ProjectFactory,
) -> None:
    made = project()
    heard = listen(made)
    token = "xoxb-1234567890-abcdefghijk"
    write(made, {**healthy_files(), "chat.env": f"SLACK={token}\nAPI_KEY={token}x\n"})

    first = snapshot(made, "chat")

    [suspect] = first.suspects  # line 2 is a marked key: masked, so not reported
    assert (suspect.path, suspect.line, suspect.key) == ("chat.env", 1, "SLACK")
    assert heard[0].data["suspected"] == [suspect.to_json()]
    assert token not in str(heard[0].data)
    write(made, {"health.txt": "ok\n\n"})
    second = snapshot(made, "unrelated")  # chat.env did not change: nothing to say again
    assert second.created and second.suspects == ()
    assert "suspected" not in heard[1].data
