"""``lastgood.operations.lease`` in process: whether an environment is busy with a change."""

from __future__ import annotations

import time
from collections.abc import Callable

from lastgood.operations.lease import EnvLease, env_is_busy
from lastgood.operations.place import Place
from tests.conftest import Workspace


def test_an_environment_is_busy_while_a_change_holds_its_lease(
    workspace: Callable[..., Workspace],
) -> None:
    project = workspace().project()
    assert not env_is_busy(project, "staging", time.time())
    with EnvLease(Place(project, "staging"), "deploy"):
        assert env_is_busy(project, "staging", time.time())
        assert not env_is_busy(project, "staging", time.time() + 3600)  # expired by then
    assert not env_is_busy(project, "staging", time.time())


def test_a_status_reconcile_does_not_make_it_busy(workspace: Callable[..., Workspace]) -> None:
    project = workspace().project()
    with EnvLease(Place(project, "staging"), "status"):
        assert not env_is_busy(project, "staging", time.time())
