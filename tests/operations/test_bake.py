"""``lastgood.operations.bake`` through real deploys: rounds after activation, a trip after
``failures`` red rounds in a row, never a known good version on a red round, and a bake that
stops without judging when the target was switched under it. (The trip after ``failures`` red
rounds is in ``test_deploy.py``.)"""

from __future__ import annotations

import pytest

from lastgood.errors import LeaseLostError
from lastgood.events import Event, EventKind
from lastgood.operations.restore import release_of
from lastgood.outcome import OK
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed

# fails its first two rounds, passes from the third on (it counts in ../rounds)
THIRD_TIME_LUCKY = """
[[env.staging.check]]
name = "warms-up"
type = "command"
run = 'n=$(( $(cat ../rounds 2>/dev/null || echo 0) + 1 )); echo $n > ../rounds; test $n -ge 3'
"""


def bake_rounds(made: Project, deployment: int) -> list[bool]:
    found = made.store.check_records(deployment=deployment)
    return [c.ok for c in reversed(found) if c.phase == "bake"]


def test_a_bake_whose_time_is_up_goes_on_until_a_round_passes(project: ProjectFactory) -> None:
    made = project(checks=False, toml=THIRD_TIME_LUCKY, failures=3)  # bake = 0 s: up at once
    outcome = deployed(made, marker="one")
    assert outcome.exit_code == OK, outcome.summary
    assert outcome.deployment is not None
    assert bake_rounds(made, outcome.deployment.id) == [False, False, True]
    assert made.store.verdicts("staging") == {1: "good"}


def test_without_checks_a_long_bake_ends_at_once_and_says_nothing_proved_it(
    project: ProjectFactory,
) -> None:
    made = project(checks=False, bake="1h")
    outcome = deployed(made, marker="one")
    assert outcome.exit_code == OK
    assert outcome.summary == (
        "v1 is live on staging; no checks are configured, so nothing proved it healthy (it "
        "became last known good at once: with no checks there is nothing to bake)"
    )


def test_a_target_switched_during_the_bake_stops_it_without_a_verdict(
    project: ProjectFactory,
) -> None:
    """Someone puts v1 back by hand while v2's round runs (the event is the moment): v2 is
    judged on content that is no longer live, so nothing is claimed for it."""
    made = project()
    deployed(made, marker="one")
    one = release_of(made.store.version(1))

    def switch_back(event: Event) -> None:
        if event.kind is EventKind.CHECK_ROUND and event.data["phase"] == "bake":
            made.target("staging").activate(one)

    made.events.subscribe(switch_back)
    with pytest.raises(LeaseLostError) as stopped:
        deployed(made, marker="two")

    assert stopped.value.message == (
        "staging was switched to v1 by someone else while v2 was being checked; this process "
        "stops without judging it"
    )
    record = made.store.deployments("staging")[0]
    assert (record.to_version, record.status) == (2, "interrupted")
    assert record.detail == stopped.value.message
    assert made.store.verdicts("staging") == {1: "good"}
    assert made.store.env_state("staging").last_good == 1
