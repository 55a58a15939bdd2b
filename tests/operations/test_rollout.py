"""The rollout verbs in process: the steps, an abort between two steps, a failed step with no
last known good, and the fleet counted per cohort. (End to end with a server and real
consumers: ``tests/test_rollout.py``.)"""

from __future__ import annotations

import time

from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.operations.rollout_control import cohort_fleets, rolling_standing
from lastgood.outcome import OK, RESTORED
from lastgood.project import Project
from lastgood.rollout import Pointer, gets_new
from lastgood.rows import WITHDRAWN, Consumer
from lastgood.targets.rollout_pointer import remove_pointer
from lastgood.targets.served import ServedTarget
from tests.conftest import broken_files, healthy_files
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, outage

ROLLOUT = """
[env.staging.rollout]
steps = ["5%", "25%", "100%"]
step_bake = "0s"
"""


def served(project: object) -> ServedTarget:
    target = Place(project, "staging").target  # type: ignore[arg-type]
    assert isinstance(target, ServedTarget)
    return target


def test_every_step_bakes_then_current_is_switched(project: ProjectFactory) -> None:
    proj = project(target="served", toml=ROLLOUT)
    assert deployed(proj, marker="one").exit_code == OK  # nothing live: everyone at once
    heard = listen(proj)
    done = deployed(proj, marker="two")
    assert done.exit_code == OK, done.summary
    steps = [e.data["percent"] for e in heard if e.kind is EventKind.ROLLOUT_STEP]
    assert steps == [5.0, 25.0, 100.0]
    order = kinds(heard)
    assert order.index("rollout-step") < order.index("activated") < order.index("bake-passed")
    assert served(proj).rollout() is None and served(proj).live().version == 2  # type: ignore[union-attr]
    state = proj.store.env_state("staging")
    assert state.live_version == 2 and state.last_good == 2


def test_an_abort_between_two_steps_is_never_undone(project: ProjectFactory) -> None:
    """The pointer goes while step 1's last round runs: the deploy must not write step 2's."""
    proj = project(target="served", toml=ROLLOUT)
    deployed(proj, marker="one")
    target = served(proj)

    def abort_in_round(event: Event) -> None:
        if event.kind is EventKind.CHECK_ROUND and target.rollout() is not None:
            remove_pointer(target.path)

    proj.events.subscribe(abort_in_round)
    done = deployed(proj, marker="two")
    assert done.exit_code == RESTORED
    assert "was aborted at step 1/3 (5%); every consumer is back on v1" in done.summary
    assert target.rollout() is None and target.live().version == 1  # type: ignore[union-attr]
    assert done.deployment is not None and done.deployment.status == "aborted"
    assert proj.store.verdicts("staging")[2] == WITHDRAWN


def test_a_failed_step_with_no_last_known_good_leaves_the_stable_version(
    project: ProjectFactory,
) -> None:
    proj = project(target="served", toml=ROLLOUT)
    outage(proj)
    assert deployed(proj, marker="one").exit_code != OK  # v1 live, never proven good
    (proj.root.parent / "outage").unlink()
    done = deployed(proj, files=broken_files("two"))
    assert done.exit_code == RESTORED
    assert "at step 1/3 (5%); every consumer is back on v1" in done.summary
    assert "never proven good here" in done.summary
    assert served(proj).rollout() is None and served(proj).live().version == 1  # type: ignore[union-attr]
    assert proj.store.verdicts("staging")[2] == "bad"


def test_the_fleet_of_a_rollout_counts_each_cohort_against_its_version() -> None:
    now = time.time()
    pointer = Pointer(release="v8-x", version=8, stable="v7-y", stable_version=7, percent=25.0,
                      step=2, steps=(5.0, 25.0, 100.0), started_at=now, step_started_at=now,
                      deployment=1)  # fmt: skip
    ids = [f"app-{n}" for n in range(40)]
    rows = [
        Consumer(
            env="prod",
            consumer_id=i,
            name=i,
            content_hash=None,
            since=now,
            seen_at=now,
            version=8 if gets_new("prod", i, 25.0) else 7,
        )
        for i in ids
    ]
    standing = rolling_standing("prod", rows, pointer)
    assert standing.complete and standing.total == 40 and not standing.behind
    new, stable = cohort_fleets("prod", rows, pointer)
    assert new.total + stable.total == 40 and new.following == new.total
    lagging = [*rows[:-1], Consumer(env="prod", consumer_id="late", name="late", version=6,
                                    content_hash=None, since=now, seen_at=now)]  # fmt: skip
    behind = rolling_standing("prod", lagging, pointer)
    assert not behind.complete and behind.behind[0].startswith("late (v6, wants v")
    ghost = Consumer(env="prod", consumer_id="ghost", name="ghost", version=None,
                     content_hash=None, since=now, seen_at=now)  # fmt: skip
    apart = rolling_standing("prod", [*rows, ghost], pointer)
    assert apart.complete and apart.total == 40 and apart.without_config == 1
    new, stable = cohort_fleets("prod", [*rows, ghost], pointer)
    assert new.total + stable.total == 40  # a consumer with no config is in neither cohort


def test_the_feed_gives_each_cohort_its_version_and_wakes_only_those_it_moves(
    project: ProjectFactory,
) -> None:
    """The server's feed in process: the pointer read beside ``current``, a pick per consumer,
    a long-poll that a step leaving its consumer where it was does not answer."""
    import asyncio

    from lastgood.operations.restore import release_of, stage
    from lastgood.server.live import Feed
    from lastgood.targets.rollout_pointer import write_pointer
    from tests.test_rollout import EARLY, LATE, MIDDLE

    proj = project(target="served")
    deployed(proj, marker="one")
    two = deployed(proj, marker="two")  # v2 live; v1 is kept on the target
    target = served(proj)
    v1 = proj.store.version(1)
    stage(target, release_of(v1), proj.store.files(1))
    now = time.time()

    def point(percent: float, release: str) -> None:
        write_pointer(target.path, Pointer(release=release, version=1, stable=None,
                                           stable_version=two.version, percent=percent, step=1,
                                           steps=(percent, 100.0), started_at=now,
                                           step_started_at=now, deployment=None))  # fmt: skip

    async def scenario() -> None:
        feed = Feed("staging", target)
        await feed.refresh()
        point(5.0, release_of(v1).name)
        assert await feed.refresh()
        versions = [feed.pick(who).version for who in (EARLY, MIDDLE, LATE, None)]  # type: ignore[union-attr]
        assert versions == [1, 2, 2, 2]
        late, middle = feed.pick(LATE).etag, feed.pick(MIDDLE).etag  # type: ignore[union-attr]
        waits = [asyncio.create_task(feed.wait_change(etag, 0.5, who))
                 for who, etag in ((LATE, late), (MIDDLE, middle))]  # fmt: skip
        await asyncio.sleep(0.05)
        started = time.monotonic()
        point(25.0, release_of(v1).name)
        await feed.refresh()
        await waits[1]
        assert time.monotonic() - started < 0.2  # MIDDLE moved to v1 at 25 %: answered now
        assert not waits[0].done()  # LATE stays on v2: still waiting
        await waits[0]
        point(25.0, "v9-00000000")  # a release the target does not hold: everyone stable
        await feed.refresh()
        assert feed.canary is None and feed.pick(EARLY).version == 2  # type: ignore[union-attr]
        remove_pointer(target.path)
        await feed.refresh()
        assert feed.canary is None and feed.pick(EARLY).version == 2  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_an_offline_rollback_ends_a_rollout_and_switches_nothing_else(
    project: ProjectFactory,
) -> None:
    """As the online rollback: the canary cohort goes back to the stable version ``current``
    kept, the new release is withdrawn on the target, and ``current`` (last known good) stays.
    It used to switch ``current`` to the version before it as well, costing everyone v2."""
    from lastgood.config import load
    from lastgood.operations.rollback import rollback_offline
    from lastgood.targets.rollout_pointer import write_pointer

    proj = project(target="served", toml=ROLLOUT)
    deployed(proj, marker="one")
    deployed(proj, marker="two")
    target = served(proj)
    stable = target.live()
    assert stable is not None and stable.version == 2
    target.stage(canary := type(stable)(version=3, content_hash="c" * 64), {"a.txt": b"three"})
    now = time.time()
    pointer = Pointer(release=canary.name, version=3, stable=stable.name, stable_version=2,
                      percent=5.0, step=1, steps=(5.0, 100.0), started_at=now,
                      step_started_at=now, deployment=None)  # fmt: skip
    write_pointer(target.path, pointer)
    done = rollback_offline(load(proj.root), "staging", reason="store down")
    assert done.exit_code == OK and done.version == 2, done.summary
    assert "ended the rollout of v3 on staging offline at step 1/2 (5%)" in done.summary
    assert "every consumer is back on v2" in done.summary
    assert target.rollout() is None and target.live() == stable
    assert target.verdict(canary) == WITHDRAWN


def test_local_status_counts_a_rollouts_consumers_by_cohort(project: ProjectFactory) -> None:
    """``lastgood status`` on the store used to count the canary cohort as not following."""
    from lastgood.operations.status import status
    from lastgood.targets.rollout_pointer import write_pointer

    proj = project(target="served", toml=ROLLOUT)
    deployed(proj, marker="one")
    deployed(proj, marker="two")
    target = served(proj)
    stable = target.live()
    assert stable is not None
    canary = type(stable)(version=3, content_hash="c" * 64)
    target.stage(canary, {"a.txt": b"three"})
    now = time.time()
    write_pointer(target.path, Pointer(
        release=canary.name, version=3, stable=stable.name, stable_version=2, percent=25.0,
        step=2, steps=(5.0, 25.0, 100.0), started_at=now, step_started_at=now, deployment=None,
    ))  # fmt: skip
    ids = [f"app-{n}" for n in range(20)]
    proj.store.save_consumers(
        Consumer(
            env="staging",
            consumer_id=i,
            name=i,
            content_hash=None,
            since=now,
            seen_at=now,
            version=3 if gets_new("staging", i, 25.0) else 2,
        )
        for i in ids
    )
    assert any(gets_new("staging", i, 25.0) for i in ids)  # the canary cohort is not empty
    from lastgood.operations.lease import EnvLease

    with EnvLease(Place(proj, "staging"), "deploy"):  # the deploy running the rollout
        fleet = status(proj, "staging")[0].fleet
    assert fleet is not None and fleet["complete"], fleet
    assert "by cohort" in fleet["summary"] and "not following" not in fleet["summary"]


def orphaned_rollout(proj: Project, *, started_at: float) -> tuple[ServedTarget, Pointer]:
    """v2 live and good, v3 rolled out to 5 % by a deploy that is gone (killed): its record
    still ``running``, its pointer on the target, nobody holding the lease."""
    from lastgood.operations.restore import release_of, stage
    from lastgood.targets.rollout_pointer import write_pointer
    from tests.operations.conftest import version

    deployed(proj, marker="one")
    two = deployed(proj, marker="two").deployment
    assert two is not None  # v2 went live two hours before the rollout began
    proj.store.update_deployment(two.id, by="test", activated_at=started_at - 7200)
    target = served(proj)
    stable = target.live()
    assert stable is not None
    three = version(proj, healthy_files("three"))
    stage(target, release_of(three), proj.store.files(three.number))
    record = proj.store.begin_deployment(
        env="staging", kind="deploy", from_version=2, to_version=three.number, actor="ci",
        source="cli", requested_at=started_at, activated_at=started_at,
        detail="rolling out: step 1/3 (5%)",
    )  # fmt: skip
    pointer = Pointer(release=release_of(three).name, version=three.number, stable=stable.name,
                      stable_version=2, percent=5.0, step=1, steps=(5.0, 25.0, 100.0),
                      started_at=started_at, step_started_at=started_at,
                      deployment=record.id)  # fmt: skip
    write_pointer(target.path, pointer)
    return target, pointer


def back_on_stable(proj: Project, pointer: Pointer, *, at: float) -> None:
    """Sixty consumers report v2: the stable cohort since long before, the canary cohort
    since ``at`` (when it followed the end of the rollout)."""
    ids = [f"app-{n}" for n in range(60)]
    assert any(gets_new("staging", i, pointer.percent) for i in ids)
    canary = {i for i in ids if gets_new("staging", i, pointer.percent)}
    rows = [
        Consumer(env="staging", consumer_id=i, name=i, content_hash=None, seen_at=time.time(),
                 since=at if i in canary else at - 7200, version=2)
        for i in ids
    ]  # fmt: skip
    proj.store.save_consumers(rows)


def test_the_fleet_after_an_abort_is_timed_from_the_abort(project: ProjectFactory) -> None:
    """The restore time of the consumers sent back by an abort used to be measured from an
    earlier switch (hours before, here), not from the moment the pointer went."""
    from lastgood.operations.fleet import read_fleet
    from lastgood.operations.rollout_control import abort_rollout

    proj = project(target="served", toml=ROLLOUT)
    _, pointer = orphaned_rollout(proj, started_at=time.time() - 3600)
    done = abort_rollout(proj, "staging", reason="canary errors")
    assert done.deployment is not None and done.deployment.finished_at is not None
    back_on_stable(proj, pointer, at=done.deployment.finished_at + 0.25)
    fleet = read_fleet(proj, "staging")
    assert fleet is not None and fleet.complete, fleet
    assert fleet.time_to_all is not None and fleet.time_to_all < 60, fleet.summary
    assert fleet.summary.startswith("v2 restored on 60/60 consumers in "), fleet.summary


def test_the_fleet_after_a_failed_step_is_timed_from_the_unlink(project: ProjectFactory) -> None:
    """A failed step removes the pointer before the ledger records the automatic rollback, so
    the consumers are back before its ``activated_at``: the time to all was clamped to 0 ms."""
    from lastgood.operations.fleet import read_fleet

    proj = project(target="served", toml=ROLLOUT)
    assert deployed(proj, marker="one").exit_code == OK
    back: list[float] = []

    def consumers_follow_the_unlink(event: Event) -> None:
        if event.kind is EventKind.ROLLOUT_STOPPED:  # the pointer is gone; nothing recorded yet
            time.sleep(0.01)
            back.append(time.time())
            row = Consumer(env="staging", consumer_id="app", name="app", content_hash=None,
                           version=1, since=back[0], seen_at=back[0])  # fmt: skip
            proj.store.save_consumers([row])

    proj.events.subscribe(consumers_follow_the_unlink)
    done = deployed(proj, files=broken_files("two"))
    assert done.exit_code == RESTORED and back, done.summary
    fleet = read_fleet(proj, "staging")
    assert fleet is not None and fleet.complete, fleet
    restore = proj.store.deployments("staging", limit=1)[0]
    assert restore.kind == "auto-rollback" and restore.activated_at is not None
    assert restore.requested_at < back[0] < restore.activated_at
    assert fleet.time_to_all == back[0] - restore.requested_at, fleet.summary
    assert fleet.time_to_all >= 0.01 and " in 0 ms" not in fleet.summary, fleet.summary


def test_the_fleet_after_reconcile_ends_a_rollout_is_timed_from_the_unlink(
    project: ProjectFactory,
) -> None:
    from lastgood.operations.fleet import read_fleet
    from lastgood.operations.lease import EnvLease
    from lastgood.operations.reconcile import reconcile

    proj = project(target="served", toml=ROLLOUT)
    target, pointer = orphaned_rollout(proj, started_at=time.time() - 3600)
    place = Place(proj, "staging")
    with EnvLease(place, "deploy"):
        reconcile(place)
    assert target.rollout() is None
    assert pointer.deployment is not None
    record = proj.store.deployment(pointer.deployment)
    assert record.status == "interrupted" and record.finished_at is not None
    back_on_stable(proj, pointer, at=record.finished_at + 0.25)
    fleet = read_fleet(proj, "staging")
    assert fleet is not None and fleet.time_to_all is not None, fleet
    assert fleet.time_to_all < 60, fleet.summary


def test_an_offline_end_of_a_rollout_is_recorded_as_its_abort_not_a_rollback(
    project: ProjectFactory,
) -> None:
    """``rollback --offline`` during a rollout was recorded as ``offline-rollback v3 → v2``,
    as if v3 had been live; the rollout's deploy record is closed ``aborted`` instead, at the
    pointer's removal, as after an online abort."""
    from lastgood.config import load
    from lastgood.operations.fleet import read_fleet
    from lastgood.operations.rollback import rollback_offline
    from lastgood.operations.status import status

    proj = project(target="served", toml=ROLLOUT)
    target, pointer = orphaned_rollout(proj, started_at=time.time() - 3600)
    done = rollback_offline(load(proj.root), "staging", reason="store down")
    assert done.exit_code == OK and target.rollout() is None, done.summary
    [found] = status(proj, "staging")  # the next command records it
    assert any("ended the rollout of v3 on staging offline at step 1/3 (5%)" in n
               for n in found.warnings), found.warnings  # fmt: skip
    records = proj.store.deployments("staging", limit=5)
    assert not [r for r in records if r.kind == "offline-rollback"], records
    assert pointer.deployment is not None
    closed = proj.store.deployment(pointer.deployment)
    assert closed.status == "aborted" and closed.finished_at is not None
    assert "offline" in closed.detail and "(store down)" in closed.detail
    assert proj.store.verdicts("staging")[3] == WITHDRAWN
    assert (found.live_version, found.last_good) == (2, 2)
    back_on_stable(proj, pointer, at=closed.finished_at + 0.25)
    fleet = read_fleet(proj, "staging")
    assert fleet is not None and fleet.time_to_all is not None and fleet.time_to_all < 60


def test_aborting_an_orphaned_rollout_closes_its_record_aborted_by_whom(
    project: ProjectFactory,
) -> None:
    """The record used to say ``interrupted`` (reconcile's word for a deploy nobody stopped)
    although a person ended the rollout."""
    from lastgood.operations.rollout_control import abort_rollout

    proj = project(target="served", toml=ROLLOUT)
    target, pointer = orphaned_rollout(proj, started_at=time.time() - 60)
    done = abort_rollout(proj, "staging", reason="canary errors")
    assert target.rollout() is None
    record = done.deployment
    assert record is not None and record.id == pointer.deployment
    assert record.status == "aborted", record
    assert f"{proj.actor} aborted the rollout of v3 on staging" in record.detail, record.detail
    assert proj.store.verdicts("staging")[3] == WITHDRAWN


def test_bake_rounds_are_numbered_per_step_and_name_it(project: ProjectFactory) -> None:
    """Step 2's first round used to be numbered after step 1's last (``bake round 4``)."""
    proj = project(target="served", interval="10ms", toml=ROLLOUT.replace('"0s"', '"30ms"'))
    deployed(proj, marker="one")
    heard = listen(proj)
    assert deployed(proj, marker="two").exit_code == OK
    step, firsts = 0, []
    for event in heard:
        if event.kind is EventKind.ROLLOUT_STEP:
            step = int(event.data["step"])
        elif (
            event.kind is EventKind.CHECK_ROUND
            and event.data["phase"] == "bake"
            and (not firsts or firsts[-1][0] != step)
        ):
            firsts.append((step, event.data["round"], event.message))
    assert [(s, n) for s, n, _ in firsts] == [(1, 1), (2, 1), (3, 1)], firsts
    # 4: the rounds a green step takes at most (one at once, then one every 10 ms for 30 ms)
    assert firsts[1][2].startswith("bake step 2/3 (25%) round 1/4: 1/1 checks passed"), firsts
