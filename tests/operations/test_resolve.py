"""``lastgood.operations.resolve``: every form of version reference, as the commands read them.

The grammar itself is table-tested in ``tests/test_refs.py``; here each reference is resolved
against a real store and a real target, which is what ``live`` and ``previous`` read."""

from __future__ import annotations

import pytest

from lastgood.errors import ConfigError, NotFoundError, UsageError
from lastgood.operations.resolve import resolve
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, version


@pytest.fixture
def twice(project: ProjectFactory) -> Project:
    """v1 then v2 deployed to staging, both good; v3 recorded, never deployed."""
    made = project()
    deployed(made, marker="one")
    deployed(made, marker="two")
    version(made, {"prompts/new.txt": "new\n"})
    return made


def test_each_reference_names_its_version(twice: Project) -> None:
    expected = {"1": 1, "v2": 2, "V3": 3, "live": 2, "staging:live": 2, "last-good": 2,
                "staging:last-good": 2, "previous": 1, "staging:previous": 1}  # fmt: skip
    assert {text: resolve(twice, text).number for text in expected} == expected


def test_a_hash_prefix_names_its_version_and_six_digits_may_be_a_number(twice: Project) -> None:
    two = twice.store.version(2)
    assert resolve(twice, two.content_hash[:6]).number == 2
    assert resolve(twice, two.content_hash.upper()).number == 2
    assert resolve(twice, "000001").number == 1  # no content hash starts so: version 1


def test_live_is_what_the_target_serves_not_what_the_ledger_says(twice: Project) -> None:
    twice.target("staging").activate(release_of(twice.store.version(1)))  # by hand
    assert twice.store.env_state("staging").live_version == 2
    assert resolve(twice, "staging:live").number == 1


def test_previous_after_a_rollback_is_the_version_rolled_away_from(twice: Project) -> None:
    rollback(twice, "staging")
    assert resolve(twice, "staging:live").number == 1
    assert resolve(twice, "staging:previous").number == 2


def test_a_reference_that_names_nothing_says_so(twice: Project) -> None:
    for text, error, message in [
        ("v9", NotFoundError, "no version v9"),
        ("abcdef12", NotFoundError, "'abcdef12' names no version"),
        ("nowhere:live", ConfigError, "no environment named 'nowhere'"),
        ("stagign:last-good", ConfigError, "did you mean 'staging'"),
        ("v1.2", UsageError, "'v1.2' is not a version reference"),
    ]:
        with pytest.raises(error) as refused:
            resolve(twice, text)
        assert message in str(refused.value), text


def test_keywords_with_nothing_behind_them_name_nothing(project: ProjectFactory) -> None:
    made = project()
    version(made)
    for text in ("live", "last-good", "previous"):
        with pytest.raises(NotFoundError) as missing:
            resolve(made, text)
        assert missing.value.message == f"{text!r} names no version on staging"
        assert "'lastgood status'" in str(missing.value.hint)


def test_a_keyword_without_any_environment_asks_for_one(project: ProjectFactory) -> None:
    made = project()
    version(made)
    (made.root / "lastgood.toml").write_text("")
    bare = Project.open(made.root, actor="tester")
    try:
        with pytest.raises(UsageError) as refused:
            resolve(bare, "last-good")
        assert refused.value.message == "'last-good' needs an environment"
        assert refused.value.hint == "write it as ENV:last-good"
        assert resolve(bare, "v1").number == 1  # numbers need none
    finally:
        bare.close()
