"""``lastgood.operations.fleet``: how far the live version of a served environment has spread,
and when a change has reached every live consumer."""

from __future__ import annotations

import threading
import time

from lastgood.operations.deploy import deploy
from lastgood.operations.fleet import STALE_AFTER, read_fleet, standing, switch_of, wait_for_fleet
from lastgood.record import replace
from lastgood.rows import Consumer, Deployment
from lastgood.server.consumers import Consumers
from tests.conftest import healthy_files
from tests.operations.conftest import ProjectFactory, deployed, write

NOW = 1_000_000.0


def consumer(name: str, version: int | None, since: float, seen: float = NOW) -> Consumer:
    return Consumer(env="prod", consumer_id=name, name=name, version=version,
                    content_hash=None, since=since, seen_at=seen)  # fmt: skip


def switch(kind: str = "rollback", at: float = NOW - 10) -> Deployment:
    return Deployment(
        id=7, env="prod", kind=kind, status="succeeded", from_version=4, to_version=3,
        actor="ana", reason="", source="cli", parent=None, trigger_at=None,
        requested_at=at - 1, activated_at=at, verified_at=at + 1, failed_at=None,
        finished_at=at + 1, detail="",
    )  # fmt: skip


# the restore after a rollout's failed step: its pointer went 0.5 s before the ledger's switch
STOPPED = replace(switch("auto-rollback"), source="rollout", requested_at=NOW - 10.5)


def test_a_rollback_is_complete_when_every_live_consumer_reports_it() -> None:
    fleet = standing(
        "prod",
        [consumer("a", 3, NOW - 9.9), consumer("b", 3, NOW - 9.7)],
        version=3, change=switch(), now=NOW,
    )  # fmt: skip
    assert fleet.complete
    assert fleet.summary == "v3 restored on 2/2 consumers in 300 ms"


def test_consumers_that_did_not_follow_are_named_and_silent_ones_not_counted() -> None:
    fleet = standing(
        "prod",
        [consumer("a", 3, NOW - 9.9), consumer("late", 4, NOW - 50),
         consumer("gone", 4, NOW - 500, seen=NOW - 500)],
        version=3, change=switch(), now=NOW,
    )  # fmt: skip
    assert not fleet.complete and fleet.time_to_all is None
    assert (fleet.total, fleet.following, fleet.gone) == (2, 1, 1)
    assert fleet.summary == "v3 restored on 1/2 consumers; not following: late (v4)"


def test_a_deploy_is_live_and_no_consumers_is_said_plainly() -> None:
    deployed = standing("prod", [consumer("a", 3, NOW - 9)], version=3,
                        change=switch("deploy"), now=NOW)  # fmt: skip
    assert deployed.summary == "v3 live on 1/1 consumers in 1.0 s"
    assert standing("prod", [], version=3, change=None, now=NOW).summary == "no live consumers"


def test_a_consumer_is_live_until_it_has_been_silent_for_stale_after() -> None:
    edge = consumer("edge", 3, NOW - 20, seen=NOW - STALE_AFTER)
    gone = consumer("gone", 3, NOW - 20, seen=NOW - STALE_AFTER - 0.001)
    fleet = standing("prod", [edge, gone], version=3, change=switch(), now=NOW)
    assert (fleet.total, fleet.gone, fleet.complete) == (1, 1, True)
    nothing_live = standing("prod", [consumer("a", 3, NOW - 9)], version=None, change=None, now=NOW)
    assert nothing_live.behind == ["a (v3)"] and not nothing_live.complete


def test_a_fleet_that_did_not_move_for_a_change_has_no_time_not_0() -> None:
    """A last switch before the change (nobody had left the restored version) is no 0 ms."""
    still = standing("prod", [consumer("a", 3, NOW - 60)], version=3, change=switch(), now=NOW)
    assert still.complete and still.time_to_all is None
    assert still.summary == "v3 restored on 1/1 consumers"
    early = standing("prod", [consumer("a", 3, NOW - 10.2)], version=3, change=STOPPED, now=NOW)
    assert early.time_to_all is not None and abs(early.time_to_all - 0.3) < 1e-6
    plain = standing("prod", [consumer("a", 3, NOW - 10.2)], version=3, change=switch(), now=NOW)
    assert plain.time_to_all is None  # only a failed step's restore starts at its request
    bake = replace(STOPPED, source="auto")  # a failed bake's restore: the consumers follow it
    assert standing("prod", [consumer("a", 3, NOW - 10.2)], version=3, change=bake,
                    now=NOW).time_to_all is None  # fmt: skip


def test_a_failed_steps_fleet_is_timed_from_the_unlink_whichever_comes_first() -> None:
    """The consumers' reports and the restore record race after a step's unlink: a last report
    after the record's ``activated_at`` was timed from it (0.3 s here, not 0.8 s), one before
    it from the unlink. Both are timed from the unlink now."""
    for last in (NOW - 10.2, NOW - 9.7):  # before activated_at (NOW - 10), then after it
        fleet = standing("prod", [consumer("a", 3, last)], version=3, change=STOPPED, now=NOW)
        took = last - STOPPED.requested_at
        assert fleet.time_to_all is not None and abs(fleet.time_to_all - took) < 1e-6, fleet


def test_a_consumer_first_seen_after_the_switch_is_counted_but_not_timed() -> None:
    """It never served the version the fleet left: timing it would time its start."""
    old = replace(consumer("old", 3, NOW - 9.7), first_seen=NOW - 100)
    new = replace(consumer("new", 3, NOW - 2), first_seen=NOW - 2)
    unknown = replace(consumer("unknown", 3, NOW - 9.9), first_seen=None)  # kept before 0012
    fleet = standing("prod", [old, new, unknown], version=3, change=switch(), now=NOW)
    assert fleet.complete and (fleet.total, fleet.joined_since) == (3, 1)
    assert fleet.time_to_all is not None and abs(fleet.time_to_all - 0.3) < 1e-6
    assert fleet.summary == "v3 restored on 3/3 consumers in 300 ms; 1 joined since the switch"
    alone = standing("prod", [new], version=3, change=switch(), now=NOW)
    assert alone.complete and alone.time_to_all is None  # nobody had anything to follow
    between = replace(consumer("between", 3, NOW - 10.2), first_seen=NOW - 10.2)
    early = standing("prod", [old, between], version=3, change=STOPPED, now=NOW)
    assert early.joined_since == 1  # it came after the unlink that sent everyone back
    behind = standing("prod", [new, replace(old, version=4)], version=3, change=switch(), now=NOW)
    assert behind.summary == (
        "v3 restored on 1/2 consumers; not following: old (v4); 1 joined since the switch"
    )


def test_the_change_a_fleet_follows_is_the_newest_switch_to_its_version() -> None:
    refused = replace(switch("deploy"), id=9, activated_at=None)
    older, newer = switch("deploy", at=NOW - 100), replace(switch(), id=8)
    newest_first = [refused, newer, older]
    assert switch_of(newest_first, 3) == newer  # the refused one never switched anything
    assert switch_of(newest_first, 4) is None


def test_the_servers_fleet_is_read_and_waited_for_in_process(project: ProjectFactory) -> None:
    """``read_fleet`` with a server's registry sees its reports before any flush; the store's
    view without it; ``wait_for_fleet`` returns once the last consumer follows."""
    made = project("served")
    assert deployed(made, marker="one").exit_code == 0
    assert deployed(made, marker="two").exit_code == 0
    assert read_fleet(made, "nowhere") is None  # no such environment: no fleet
    reports = Consumers(made.store, flush_every=60)
    reports.report("staging", "a", name="a", version=2, content_hash=None)
    reports.report("staging", "b", name="b", version=1, content_hash=None)
    seen = read_fleet(made, "staging", reports)
    assert seen is not None and (seen.following, seen.total) == (1, 2)
    stored = read_fleet(made, "staging")  # nothing flushed yet: the store knows no one
    assert stored is not None and (stored.version, stored.total) == (2, 0)
    started = time.monotonic()
    late = threading.Timer(
        0.2, lambda: reports.report("staging", "b", name="b", version=2, content_hash=None)
    )
    late.start()
    done = wait_for_fleet(made, "staging", reports, 30)
    late.join()
    assert done is not None and done.complete and time.monotonic() - started < 10
    reports.report("staging", "b", name="b", version=1, content_hash=None)
    behind = wait_for_fleet(made, "staging", reports, 0.1)
    assert behind is not None and not behind.complete  # it gave up at the deadline


def test_consumers_that_never_served_a_config_are_shown_apart_not_behind(
    project: ProjectFactory,
) -> None:
    """Apps that failed at start report no version: they cannot follow anything, and each
    attempt of one in a crash loop left a ghost that made every rollback read incomplete."""
    made = project("served")
    assert deployed(made, marker="one").exit_code == 0
    reports = Consumers(made.store, flush_every=60)
    reports.report("staging", "a", name="a", version=1, content_hash=None)
    for attempt in range(3):
        reports.report("staging", f"ghost-{attempt}", name="vm:5485", version=None,
                       content_hash=None)  # fmt: skip
    fleet = read_fleet(made, "staging", reports)
    assert fleet is not None and fleet.complete and not fleet.behind, fleet
    assert (fleet.following, fleet.total, fleet.without_config, fleet.gone) == (1, 1, 3, 0)
    assert fleet.summary.startswith("v1 live on 1/1 consumers")
    assert fleet.summary.endswith("; 3 without config"), fleet.summary
    assert fleet.to_json()["without_config"] == 3
    alone = standing("prod", [consumer("x", None, NOW - 5)], version=3, change=None, now=NOW)
    assert alone.summary == "no live consumers (1 without config)"
    host = replace(consumer("web-2", None, NOW - 5), kind="agent")  # its host serves nothing
    bare = standing("prod", [host], version=3, change=None, now=NOW)
    assert bare.summary == "v3 live on 0/1 consumers (1 agent); not following: web-2 (-)"


def test_the_fleet_follows_what_the_target_serves(project: ProjectFactory) -> None:
    made = project("served")
    deployed(made, marker="one")
    deployed(made, marker="two")
    api = replace(consumer("api-1", 2, time.time() - 1, seen=time.time()), env="staging")
    made.store.save_consumers([api])
    two = read_fleet(made, "staging")
    assert two is not None and two.complete and two.version == 2
    write(made, healthy_files("three"))
    deploy(made, "staging")
    three = read_fleet(made, "staging")
    assert three is not None and (three.version, three.following, three.behind) == (
        3, 0, ["api-1 (v2)"],
    )  # fmt: skip
    assert read_fleet(project(), "staging") is None  # a directory target has no fleet


FLEET_CHECK = """
[[env.staging.check]]
name = "lead-score"
type = "fleet"
metric = "lead_score"
min = 0.01
"""


def test_the_first_deploy_passes_a_fleet_check_nobody_could_report_for(
    project: ProjectFactory,
) -> None:
    """With nothing live before v1 no consumer can report on anything (an SDK with
    ``require=True`` does not even start): the check used to fail the bake, quarantine v1 and
    leave a person to fix the first deploy. Every later deploy is judged as before."""
    made = project("served", bake="50ms", toml=FLEET_CHECK)
    first = deployed(made, marker="one")
    assert first.exit_code == 0, first.summary
    assert made.store.env_state("staging").last_good == 1
    assert first.deployment is not None
    records = made.store.check_records(deployment=first.deployment.id)
    passed = next(r for r in records if r.name == "lead-score")  # the newest: the last round
    assert passed.ok and "passed unjudged: nothing was live before this version" in passed.detail
    second = deployed(made, marker="two")  # v1 was live: consumers could have reported
    assert second.exit_code != 0, second.summary
    assert "'lead-score'" in second.summary and "and the bake time is over" in second.summary
