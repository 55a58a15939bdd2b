"""``revert``: some paths back to an earlier version, the rest of what is live kept."""

from __future__ import annotations

import pytest

from lastgood.config import load
from lastgood.errors import ApprovalRequiredError, LastgoodError, NotFoundError, RefusedError
from lastgood.operations.revert import revert
from lastgood.outcome import OK
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, deployed, live_folder


def files(marker: str, prompt: str, rules: str = "a: 1\n") -> dict[str, str]:
    return {**healthy_files(marker), "prompts/score.txt": prompt, "routing/rules.yaml": rules}


def test_one_file_goes_back_to_the_last_good_before_the_change_and_the_rest_stays(
    project: ProjectFactory,
) -> None:
    ws = project()
    deployed(ws, files=files("one", "old wording\n"))
    deployed(ws, files=files("one", "old wording\n", rules="a: 2\n"))
    deployed(ws, files=files("one", "new wording\n", rules="a: 3\n"))

    done = revert(ws, "staging", ["prompts/score.txt"], reason="the new wording drops leads")

    assert done.outcome is not None and done.outcome.exit_code == OK
    assert done.taken == {"prompts/score.txt": "v2"}  # the newest good one with other wording
    assert done.changed == ["prompts/score.txt"]
    live = live_folder(ws)
    assert (live / "prompts" / "score.txt").read_text() == "old wording\n"
    assert (live / "routing" / "rules.yaml").read_text() == "a: 3\n"  # the rest stays
    assert done.version.source == "revert" and done.version.message == "the new wording drops leads"


def test_from_a_named_version_a_folder_and_a_path_that_did_not_exist_then(
    project: ProjectFactory,
) -> None:
    ws = project()
    deployed(ws, files=healthy_files("one"))
    deployed(ws, files=files("one", "p\n"))

    done = revert(ws, "staging", ["prompts", "routing/rules.yaml"], reason="back", source_ref="1")

    assert done.taken == {"prompts": "removed in v1", "routing/rules.yaml": "removed in v1"}
    assert not (live_folder(ws) / "prompts").exists()
    assert (live_folder(ws) / "health.txt").read_text() == "ok\n"


def test_nothing_to_revert_and_unknown_paths_are_refused(project: ProjectFactory) -> None:
    ws = project()
    deployed(ws, files=files("one", "p\n"))
    with pytest.raises(NotFoundError, match="no earlier good version on staging held"):
        revert(ws, "staging", ["prompts/score.txt"], reason="r")
    deployed(ws, files=files("one", "q\n"))
    with pytest.raises(NotFoundError, match=r"nope\.txt is neither in v2"):
        revert(ws, "staging", ["nope.txt"], reason="r", source_ref="1")
    with pytest.raises(RefusedError, match="already read on staging as in the version"):
        revert(ws, "staging", ["routing/rules.yaml"], reason="r", source_ref="1")


def test_where_approval_is_required_a_revert_opens_a_request(project: ProjectFactory) -> None:
    ws = project()
    deployed(ws, files=files("one", "old\n"))
    deployed(ws, files=files("one", "new\n"))
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + "\n[env.staging.approval]\n")
    ws.config = load(ws.root)

    done = revert(ws, "staging", ["prompts/score.txt"], reason="wording")

    assert done.outcome is None and done.request is not None
    assert done.request.state == "waiting" and done.request.request.version == done.version.number
    assert (live_folder(ws) / "prompts" / "score.txt").read_text() == "new\n"  # nothing live yet


def test_where_requests_open_only_through_the_server_a_local_revert_records_nothing(
    project: ProjectFactory,
) -> None:
    ws = project()
    deployed(ws, files=files("one", "old\n"))
    deployed(ws, files=files("one", "new\n"))
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + '\n[env.staging.approval]\napprove_via = "server"\n')
    ws.config = load(ws.root)
    head = ws.store.head()

    for reason in ("wording", "pay \u202eevil"):
        with pytest.raises(LastgoodError) as refused:
            revert(ws, "staging", ["prompts/score.txt"], reason=reason)
        assert "count only through the server" in refused.value.message or (
            "control character" in refused.value.message
        )
    assert ws.store.head() == head  # no version left behind
    with pytest.raises(ApprovalRequiredError) as deploying:
        deployed(ws, files=files("one", "newer\n"))
    assert "'lastgood --server URL request staging -m WHY'" in (deploying.value.hint or "")

    through = revert(ws, "staging", ["prompts/score.txt"], reason="wording", via="server")
    assert through.request is not None and through.version.number == head.number + 1  # type: ignore[union-attr]
