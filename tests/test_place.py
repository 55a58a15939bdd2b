"""``lastgood.operations.place`` in process: an environment resolved once for a verb."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lastgood.errors import ConfigError
from lastgood.operations.place import Place
from lastgood.operations.status import history
from tests.conftest import Workspace


def test_a_place_checks_its_name_and_lists_the_known_ones(
    workspace: Callable[..., Workspace],
) -> None:
    project = workspace().project()
    with pytest.raises(ConfigError) as caught:
        Place(project, "stagign")
    assert "no environment named 'stagign'" in caught.value.message
    assert "did you mean 'staging'?" in (caught.value.hint or "")


def test_a_place_holds_the_projects_own_settings_target_and_store(
    workspace: Callable[..., Workspace],
) -> None:
    project = workspace().project()
    place = Place(project, "staging")
    assert place.name == "staging"
    assert place.settings is project.config.environment("staging")
    assert place.target is project.target("staging")  # one target instance per project
    assert place.target is place.target
    assert place.store is project.store
    assert repr(place) == "Place('staging')"


def test_a_place_opens_its_target_only_when_a_verb_needs_it(
    workspace: Callable[..., Workspace],
) -> None:
    """``history`` reads the ledger alone: a target that cannot even be opened (a directory
    target without a path) does not stop it, as before places; the verbs that read the target
    still say what is wrong with it."""
    ws = workspace()
    (ws.root / "lastgood.toml").write_text('[env.staging]\ntarget = { type = "directory" }\n')
    project = ws.project()
    place = Place(project, "staging")
    assert history(project, "staging").deployments == []
    with pytest.raises(ConfigError, match="has no path"):
        place.target  # noqa: B018 (the property is what is tested)
