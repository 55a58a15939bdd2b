"""``lastgood.operations.lease`` in process: one deploy or rollback per environment at a time, a
lease that expires, a live one broken only with ``force`` and the break recorded, and a brief
holder (a ``status`` reconcile) waited out rather than refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lastgood.errors import LeaseLostError, LockedError
from lastgood.operations.lease import EnvLease, env_is_busy
from lastgood.operations.place import Place
from lastgood.project import Project
from lastgood.rows import Lease
from tests.conftest import Workspace
from tests.operations.conftest import ProjectFactory, kinds, listen


def held(project: Project, purpose: str = "deploy", ttl: float = 600.0, name: str = "ana") -> Lease:
    """``env:staging`` taken straight in the store, as another command of this host would.
    ``ttl`` ≤ 0 leaves a lease that has already expired (a holder that stopped renewing)."""
    lease, _ = project.store.acquire_lease(
        "env:staging", purpose=purpose, holder_name=name, ttl=ttl
    )
    return lease


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


def test_a_held_lease_refuses_the_next_change_naming_its_holder(project: ProjectFactory) -> None:
    made = project()
    other = held(made)
    for purpose in ("deploy", "rollback", "status"):
        with pytest.raises(LockedError) as refused, EnvLease(Place(made, "staging"), purpose):
            pass
        assert refused.value.message.startswith(
            f"env:staging is locked by ana (deploy, pid {other.pid} on {other.host}) until "
        )
        assert "--force" in str(refused.value.hint)
    assert made.store.lease("env:staging") == other  # untouched


def test_force_breaks_a_live_lease_and_the_loser_learns_it_at_its_next_fence(
    project: ProjectFactory,
) -> None:
    made = project()
    heard = listen(made)
    with (
        EnvLease(Place(made, "staging"), "deploy") as deploying,
        EnvLease(Place(made, "staging"), "rollback", force=True) as rolling_back,
    ):
        assert rolling_back.took_from == deploying.lease
        rolling_back.fence()
        with pytest.raises(LeaseLostError, match="lost the lease on env:staging"):
            deploying.fence()
    assert kinds(heard) == ["lease-broken"]
    assert heard[0].message.startswith("rollback by tester broke the live lease of tester (deploy")
    assert heard[0].data["purpose"] == "deploy"
    assert [e.kind for e in made.store.events("staging")] == ["lease-broken"]
    assert made.store.lease("env:staging") is None  # the winner gave it back; the loser had none


def test_an_expired_lease_is_taken_over_without_force_and_recorded(
    project: ProjectFactory,
) -> None:
    made = project()
    stuck = held(made, ttl=-1)  # its holder stopped renewing a second ago
    heard = listen(made)
    with EnvLease(Place(made, "staging"), "rollback") as lease:
        assert lease.took_from == stuck
    [event] = heard
    assert event.kind.value == "lease-taken-over"
    assert event.message.startswith("rollback by tester took over the expired lease of ana")


def test_a_change_waits_out_a_status_reconcile_instead_of_failing(
    project: ProjectFactory,
) -> None:
    """The status lease expiring by time is the thing under test: the deploy, retrying, takes it
    over once it has, where it would be refused by a deploy's."""
    made = project()
    held(made, purpose="status", ttl=0.1, name="status")
    with EnvLease(Place(made, "staging"), "deploy") as lease:
        assert lease.took_from is not None and lease.took_from.purpose == "status"
    held(made, purpose="deploy", ttl=2)  # waited for, it would be taken over in 2 s
    with pytest.raises(LockedError), EnvLease(Place(made, "staging"), "deploy"):
        pass  # another deploy is not waited for: refused at once


def test_the_lease_lasts_longer_than_a_round_and_its_renewal(project: ProjectFactory) -> None:
    made = project(interval="2s", lease="1s")  # slowest check: 5 s timeout
    lease = EnvLease(Place(made, "staging"), "deploy")
    assert lease.ttl == 3 * 2 + 5
    with lease:
        assert lease.lease is not None
        assert lease.lease.expires_at - lease.lease.acquired_at == pytest.approx(11)
