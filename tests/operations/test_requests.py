"""Change requests in process: routing, who may approve, approvals bound to content, stale
bases, the deploy gate, and the rollback that never needs anyone."""

from __future__ import annotations

import time

import pytest

from lastgood.config import load
from lastgood.errors import (
    ApprovalRequiredError,
    FrozenError,
    RefusedError,
    RequestError,
    StaleBaseError,
    UsageError,
)
from lastgood.operations.deploy import deploy
from lastgood.operations.drill import drill
from lastgood.operations.maintenance import prune
from lastgood.operations.requests import (
    apply_due_requests,
    apply_request,
    list_requests,
    open_request,
    remind_waiting,
    review_request,
    show_request,
    sign_off_request,
    update_request,
    withdraw_request,
)
from lastgood.operations.rollback import rollback
from lastgood.operations.snapshot import snapshot
from lastgood.outcome import OK
from lastgood.project import Project
from tests.conftest import broken_files, healthy_files
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, live_folder, write

TEAM = """
[groups]
ai-team = ["dana", "lee"]
ops = ["sam", "kim", "dana"]

[env.staging.approval]
approvers = {approvers}
{extra}

[[env.staging.approval.rule]]
name = "prompts"
paths = ["prompts/**"]
approvers = ["ai-team"]

[[env.staging.approval.rule]]
name = "threshold-tweak"
paths = ["scoring/*.yaml"]
max_lines = 4
standard = true
"""


def team(
    project: ProjectFactory,
    extra: str = "",
    approvers: str = '["ops"]',
    history: tuple[str, ...] = ("base",),
    **options: object,
) -> Project:
    """A project whose ``staging`` needs approvals, with a healthy version deployed for each
    marker of ``history`` (put there before the approval table existed, as a team adopting
    requests would have): the last one is live, the others are good versions to go back to."""
    first = project(**options)
    for marker in history:
        deployed(first, marker=marker)
    config = first.root / "lastgood.toml"
    config.write_text(config.read_text() + TEAM.format(extra=extra, approvers=approvers))
    first.config = load(first.root)  # as the next command would read it
    return first


def as_(project: Project, person: str) -> Project:
    return project.acting_as(person)


def prompt(project: Project, text: str) -> None:
    write(project, {**healthy_files("base"), "prompts/score.txt": text})


def test_an_environment_that_needs_approval_refuses_a_plain_deploy_and_records_nothing(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    before = ws.store.head()
    prompt(ws, "You score leads.\n")

    with pytest.raises(ApprovalRequiredError) as refused:
        deploy(ws, "staging", message="sneak it in")

    assert refused.value.exit_code == 5
    assert "staging takes changes only through an approved change request" in str(refused.value)
    assert "lastgood request staging -m WHY" in (refused.value.hint or "")
    assert ws.store.head() == before  # the folder was not even recorded
    with pytest.raises(ApprovalRequiredError):
        deploy(ws, "staging", ref=str(before.number if before else 1))


def test_a_request_is_routed_by_paths_approved_by_its_group_and_applied(
    project: ProjectFactory, store_url: str
) -> None:
    ws = team(project, store=store_url)
    heard = listen(ws)
    prompt(ws, "You score leads.\n")

    opened = open_request(ws, "staging", reason="teach the scorer")

    assert opened.state == "waiting"
    assert [r.rule for r in opened.routing.requirements] == ["prompts"]
    assert opened.tally.missing == ("1 more: 1 approval from ai-team (prompts)",)
    assert opened.changes["added"] == ["prompts/score.txt"]
    assert opened.request.risk == "low" and opened.request.requester == "tester"
    with pytest.raises(RequestError, match="not approved: it still needs 1 more"):
        apply_request(ws, opened.request.number)

    approved = review_request(as_(ws, "lee"), opened.request.number, approve=True, comment="ok")
    assert approved.state == "approved" and approved.tally.approved_by == ("lee",)

    outcome = apply_request(ws, opened.request.number)

    assert outcome.exit_code == OK
    assert (live_folder(ws) / "prompts" / "score.txt").read_text() == "You score leads.\n"
    done = show_request(ws, opened.request.number)
    assert done.state == "applied" and done.request.deployment == outcome.deployment.id  # type: ignore[union-attr]
    assert [e.action for e in done.entries] == ["opened", "approved", "applying", "applied"]
    assert "request-opened" in kinds(heard) and "request-applied" in kinds(heard)
    opened_event = next(e for e in heard if e.kind.value == "request-opened")
    assert opened_event.data["request"] == opened.request.number
    assert "needs 1 more: 1 approval from ai-team (prompts)" in opened_event.message
    assert ws.store.deployments("staging")[0].source == "request"


def test_paths_no_rule_covers_go_to_the_environments_own_approvers(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    write(ws, {**healthy_files("base"), "prompts/score.txt": "p\n", "routing/rules.yaml": "a\n"})

    opened = open_request(ws, "staging", reason="two things")

    assert [r.rule for r in opened.routing.requirements] == ["prompts", "default"]
    review_request(as_(ws, "lee"), opened.request.number, approve=True)
    assert show_request(ws, opened.request.number).tally.missing == (
        "1 more: 1 approval from ops (default)",
    )
    # dana is in both groups: her one approval meets both requirements
    both = review_request(as_(ws, "dana"), opened.request.number, approve=True)
    assert both.state == "approved"


def test_a_person_in_two_groups_counts_once_towards_one_requirement(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra="required = 2", approvers='["ai-team", "ops"]')
    write(ws, {**healthy_files("base"), "routing/rules.yaml": "a\n"})
    opened = open_request(ws, "staging", reason="needs two")

    once = review_request(as_(ws, "dana"), opened.request.number, approve=True)
    assert once.state == "waiting"
    assert once.tally.missing == ("1 more: 2 approvals from ai-team or ops (default)",)
    twice = review_request(as_(ws, "dana"), opened.request.number, approve=True)
    assert twice.tally.approved_by == ("dana",) and twice.state == "waiting"
    assert review_request(as_(ws, "sam"), opened.request.number, approve=True).state == "approved"


def test_approving_the_same_content_twice_records_it_once(project: ProjectFactory) -> None:
    ws = team(project, extra="required = 2")
    write(ws, {**healthy_files("base"), "routing/rules.yaml": "a\n"})
    number = open_request(ws, "staging", reason="needs two").request.number
    first = review_request(as_(ws, "sam"), number, approve=True, comment="ok")
    heard, head = listen(ws), ws.store.audit_head()

    again = review_request(as_(ws, "sam"), number, approve=True, comment="ok again")

    assert again.notice == "sam already approved #1 as it stands: nothing recorded"
    assert again.entries == first.entries and ws.store.audit_head() == head
    assert heard == [] and again.tally.approved_by == ("sam",)
    assert "notice" in again.to_json() and "notice" not in first.to_json()
    rejected = review_request(as_(ws, "sam"), number, approve=False, comment="on second thought")
    assert rejected.tally.rejected_by == ("sam",)
    changed_mind = review_request(as_(ws, "sam"), number, approve=True)  # a new word: recorded
    assert changed_mind.notice == "" and len(changed_mind.entries) == len(first.entries) + 2


def test_the_requester_cannot_approve_their_own_request_unless_the_environment_allows_it(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    prompt(ws, "mine\n")
    number = open_request(as_(ws, "lee"), "staging", reason="mine").request.number

    with pytest.raises(RequestError, match="lee opened #1 and cannot approve it too") as refused:
        review_request(as_(ws, "lee"), number, approve=True)
    assert refused.value.exit_code == 5

    allowed = team(project, extra="self_approval = true")
    prompt(allowed, "mine\n")
    mine = open_request(as_(allowed, "lee"), "staging", reason="mine").request.number
    assert review_request(as_(allowed, "lee"), mine, approve=True).state == "approved"


def test_only_the_routed_approvers_may_approve_or_reject(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number

    for approve in (True, False):
        with pytest.raises(RequestError, match="sam is not an approver of #1: it needs 1 approval"):
            review_request(as_(ws, "sam"), number, approve=approve, comment="no")
    assert [e.action for e in show_request(ws, number).entries] == ["opened"]


def test_an_approval_covers_exact_content_and_comes_back_with_it(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "version A\n")
    number = open_request(ws, "staging", reason="A").request.number
    review_request(as_(ws, "lee"), number, approve=True)

    prompt(ws, "version B\n")
    changed = update_request(ws, number, reason="B instead")
    assert changed.state == "waiting" and changed.tally.dismissed == 1

    prompt(ws, "version A\n")
    back = update_request(ws, number, reason="A after all")
    assert back.state == "approved" and back.tally.approved_by == ("lee",)
    assert [e.action for e in back.entries] == ["opened", "approved", "updated", "updated"]
    assert apply_request(ws, number).exit_code == OK


def test_a_review_names_the_content_it_saw_and_is_refused_for_any_other(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    prompt(ws, "version A\n")
    number = open_request(ws, "staging", reason="A").request.number
    seen = show_request(ws, number).request.content_hash
    prompt(ws, "version B\n")
    now = update_request(ws, number, reason="B instead").request.content_hash
    entries = len(show_request(ws, number).entries)

    for approve in (True, False):
        with pytest.raises(RequestError) as refused:
            review_request(as_(ws, "lee"), number, approve=approve, comment="c", content=seen[:12])
        assert str(refused.value.message) == (
            f"#1 holds other content than you saw: you saw {seen[:12]}, it holds {now[:12]} now "
            "(v3, based on v1); nothing was recorded"
        )
        assert "'lastgood request show 1'" in (refused.value.hint or "")
    for bad in ("xyz", now[:11], now + "0", "g" * 12):
        with pytest.raises(UsageError, match="is not the content hash of a request") as usage:
            review_request(as_(ws, "lee"), number, approve=True, content=bad)
        assert usage.value.exit_code == 2
    assert len(show_request(ws, number).entries) == entries  # nothing recorded

    approved = review_request(as_(ws, "lee"), number, approve=True, content=now[:12].upper())
    assert approved.state == "approved"
    again = review_request(as_(ws, "lee"), number, approve=True, content=now)  # the whole hash
    assert again.notice and approved.entries[-1].content_hash == now


def test_a_review_is_written_only_while_the_request_holds_what_was_checked(
    project: ProjectFactory, store_url: str
) -> None:
    ws = team(project, store=store_url)
    prompt(ws, "version A\n")
    number = open_request(ws, "staging", reason="A").request.number
    seen = show_request(ws, number).request  # what the reviewer's verb read
    prompt(ws, "version B\n")
    update_request(ws, number, reason="B lands before the approval is written")
    entry = {"actor": "lee", "action": "approved", "content_hash": seen.content_hash,
             "base_hash": seen.base_hash}  # fmt: skip

    late = ws.store.add_request_entry_when(
        number, entry, when_status=("open",),
        when={"content_hash": seen.content_hash, "base_hash": seen.base_hash},
    )  # fmt: skip

    assert late is None
    assert [e.action for e in show_request(ws, number).entries] == ["opened", "updated"]
    now = show_request(ws, number).request
    written = ws.store.add_request_entry_when(
        number, {**entry, "content_hash": now.content_hash}, when_status=("open",),
        when={"content_hash": now.content_hash, "base_hash": now.base_hash},
    )  # fmt: skip
    assert written is not None and show_request(ws, number).state == "approved"


def test_a_request_whose_environment_moved_on_is_stale_until_it_gets_a_fresh_look(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    heard = listen(ws)
    write(ws, {**healthy_files("base"), "scoring/t.yaml": "threshold: 1\n"})
    standard = open_request(ws, "staging", reason="tweak")
    assert standard.routing.standard == "threshold-tweak" and standard.state == "approved"
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="prompt").request.number
    review_request(as_(ws, "lee"), number, approve=True)
    apply_request(ws, standard.request.number)  # staging moved on under the second request

    with pytest.raises(RequestError, match="#2 is stale: staging serves v2, not v1 it was"):
        apply_request(ws, number)

    stale = show_request(ws, number)
    assert stale.state == "stale" and "request-stale" in kinds(heard)
    with pytest.raises(RequestError, match="is stale"):
        review_request(as_(ws, "lee"), number, approve=True)
    fresh = update_request(ws, number, reason="on top of the tweak")
    assert fresh.state == "waiting" and fresh.request.base_version == 2
    review_request(as_(ws, "dana"), number, approve=True)
    assert apply_request(ws, number).exit_code == OK


def test_a_standard_change_applies_on_approval_at_once_with_its_rule_recorded(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra='apply = "on-approval"')
    write(ws, {**healthy_files("base"), "scoring/t.yaml": "threshold: 0.7\n"})

    view = open_request(ws, "staging", reason="tweak")

    assert view.state == "applied"
    assert view.routing.standard == "threshold-tweak" and view.routing.requirements == ()
    assert (live_folder(ws) / "scoring" / "t.yaml").read_text() == "threshold: 0.7\n"


def test_on_approval_applies_when_the_last_approval_arrives(project: ProjectFactory) -> None:
    ws = team(project, extra='apply = "on-approval"')
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number

    after = review_request(as_(ws, "lee"), number, approve=True)

    assert after.state == "applied"
    assert (live_folder(ws) / "prompts" / "score.txt").read_text() == "p\n"


def test_a_rejection_blocks_the_apply_until_the_content_changes(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "bad\n")
    number = open_request(ws, "staging", reason="r").request.number
    review_request(as_(ws, "dana"), number, approve=True)
    rejected = review_request(as_(ws, "lee"), number, approve=False, comment="scores drop")
    assert rejected.state == "rejected" and rejected.tally.rejected_by == ("lee",)
    with pytest.raises(RequestError, match="not approved: rejected by lee"):
        apply_request(ws, number)

    prompt(ws, "better\n")
    assert update_request(ws, number, reason="fixed").state == "waiting"


def test_rollback_never_needs_an_approval(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    review_request(as_(ws, "lee"), number, approve=True)
    apply_request(ws, number)

    back = rollback(as_(ws, "kim"), "staging", reason="scores fell")

    assert back.exit_code == OK and back.version == 1
    assert not (live_folder(ws) / "prompts").exists()


def test_withdraw_is_for_the_requester_and_closes_the_request(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    with pytest.raises(RequestError, match="only they can withdraw it"):
        withdraw_request(as_(ws, "lee"), number, reason="no")

    closed = withdraw_request(ws, number, reason="superseded")

    assert closed.state == "withdrawn"
    with pytest.raises(RequestError, match="#1 is withdrawn"):
        apply_request(ws, number)


def test_an_old_request_expires(project: ProjectFactory) -> None:
    ws = team(project, extra='expire = "20ms"')
    heard = listen(ws)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    time.sleep(0.05)  # the expiry time itself is what is under test

    assert [v.state for v in list_requests(ws, "staging")] == ["expired"]
    assert "request-expired" in kinds(heard)
    with pytest.raises(RequestError, match="#1 is expired"):
        review_request(as_(ws, "lee"), number, approve=True)


def test_nothing_to_change_and_no_reason_are_refused(project: ProjectFactory) -> None:
    ws = team(project)
    write(ws, healthy_files("base"))
    with pytest.raises(RequestError, match="is what staging serves now: there is nothing"):
        open_request(ws, "staging", reason="same")
    prompt(ws, "p\n")
    with pytest.raises(UsageError, match="needs a reason") as refused:
        open_request(ws, "staging", reason="  ")
    assert refused.value.exit_code == 2


def test_prune_keeps_what_an_open_request_proposes(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    proposed = open_request(ws, "staging", reason="r").request.version
    for marker in ("x", "y"):
        write(ws, healthy_files(marker))
        snapshot(ws, marker)

    result = prune(ws, keep=0, dry_run=True)

    assert result.kept[proposed] == "proposed by change request #1"


def test_a_drill_on_an_environment_that_needs_approval_is_refused_unless_overridden(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    with pytest.raises(RefusedError, match="takes changes only through approved change requests"):
        drill(ws, "staging")


FREEZE = """
[[env.staging.freeze]]
name = "year-end"
from = "2000-01-01 00:00"
until = "2100-01-01 00:00"
reason = "the books are closing"
"""


def test_a_freeze_holds_deploys_drills_and_applies_but_never_a_rollback(
    project: ProjectFactory,
) -> None:
    ws = project()
    deployed(ws, marker="one")
    deployed(ws, marker="two")
    approved = team(project)
    prompt(approved, "p\n")
    number = open_request(approved, "staging", reason="r").request.number
    review_request(as_(approved, "lee"), number, approve=True)
    for frozen in (ws, approved):
        config = frozen.root / "lastgood.toml"
        config.write_text(config.read_text() + FREEZE)
        frozen.config = load(frozen.root)

    with pytest.raises(FrozenError) as refused:
        deployed(ws, marker="three")
    assert refused.value.exit_code == 5
    assert "staging is closed to changes: freeze 'year-end' (the books are closing)" in str(
        refused.value
    )
    with pytest.raises(FrozenError):
        drill(ws, "staging")
    with pytest.raises(FrozenError):
        apply_request(approved, number)
    held = show_request(approved, number)
    assert held.state == "approved"  # still waiting to be applied
    assert held.freeze is not None and held.freeze["state"] == "active"
    assert held.freeze["text"].startswith("freeze 'year-end' (the books are closing) until")

    back = rollback(ws, "staging", reason="scores fell")
    assert back.exit_code == OK and back.version == 1


# ---- emergencies -----------------------------------------------------------------------------


def test_an_emergency_applies_at_once_past_a_freeze_and_stays_open_for_review(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + FREEZE)
    ws.config = load(ws.root)
    heard = listen(ws)
    prompt(ws, "fixed\n")

    view = open_request(ws, "staging", reason="leads all score zero", emergency=True)

    assert view.state == "applied" and view.review_open
    assert (live_folder(ws) / "prompts" / "score.txt").read_text() == "fixed\n"
    assert [e.action for e in view.entries] == ["opened", "passed-freeze", "applying", "applied"]
    assert "freeze 'year-end'" in view.entries[1].comment
    assert ws.store.deployments("staging")[0].source == "emergency"
    opened = next(e for e in heard if e.kind.value == "request-opened")
    assert opened.message.startswith("EMERGENCY change #1 for staging")
    assert [v.request.number for v in list_requests(ws, status="review")] == [1]

    with pytest.raises(RequestError, match="tester made emergency #1 and cannot sign off"):
        sign_off_request(ws, 1)
    signed = sign_off_request(as_(ws, "kim"), 1, comment="right fix")
    assert not signed.review_open and list_requests(ws, status="review") == []
    with pytest.raises(RequestError, match="already signed off"):
        sign_off_request(as_(ws, "sam"), 1)


def test_an_emergency_waits_for_the_reduced_approval_the_environment_asks(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra="emergency_approvals = 1")
    prompt(ws, "fixed\n")

    view = open_request(ws, "staging", reason="zero scores", emergency=True)
    assert view.state == "waiting"
    with pytest.raises(RequestError, match="cannot approve it too"):
        review_request(ws, view.request.number, approve=True)

    after = review_request(as_(ws, "lee"), view.request.number, approve=True)
    assert after.state == "applied" and after.review_open


def test_an_environment_may_refuse_emergencies(project: ProjectFactory) -> None:
    ws = team(project, extra="emergency = false")
    prompt(ws, "x\n")
    with pytest.raises(RequestError, match="allows no emergency changes"):
        open_request(ws, "staging", reason="now", emergency=True)


# ---- the watcher's part ----------------------------------------------------------------------


def test_a_scheduled_request_is_applied_by_the_watcher_when_due_and_approved(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    prompt(ws, "tonight\n")
    at = time.time() + 3600
    number = open_request(ws, "staging", reason="r", apply_at=at).request.number

    assert apply_due_requests(ws, now=at + 1) == {"#1": "due, but waiting"}
    review_request(as_(ws, "lee"), number, approve=True)  # on-approval waits for the time
    assert show_request(ws, number).state == "approved"
    assert apply_due_requests(ws, now=at - 1) == {}

    done = apply_due_requests(ws, now=at + 1)

    assert done["#1"].startswith("v2 is live on staging")
    applied = show_request(ws, number)
    assert applied.state == "applied" and applied.entries[-1].via == "watch"
    assert (live_folder(ws) / "prompts" / "score.txt").read_text() == "tonight\n"


def test_a_due_request_waits_out_a_freeze_and_says_so_once(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r", apply_at=time.time()).request.number
    review_request(as_(ws, "lee"), number, approve=True)
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + FREEZE)
    ws.config = load(ws.root)

    heard = listen(ws)
    for _ in range(2):
        held = apply_due_requests(ws)
        assert held["#1"].startswith("held: freeze 'year-end'")
    assert [e.action for e in show_request(ws, number).entries].count("held") == 1
    assert kinds(heard) == ["request-held"]  # sent once too
    assert heard[0].message.startswith("change request #1 for staging is due but held until")
    assert heard[0].data["files_changed"] == [
        {"path": "prompts/score.txt", "change": "added", "added": 1, "removed": 0}
    ]
    assert show_request(ws, number).state == "approved"


def test_the_watcher_reminds_approvers_once_per_period(project: ProjectFactory) -> None:
    ws = team(project, extra='remind = "1h"')
    heard = listen(ws)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    opened_at = show_request(ws, number).request.created_at

    assert remind_waiting(ws, now=opened_at + 60) == []
    assert remind_waiting(ws, now=opened_at + 3601) == ["#1"]
    assert remind_waiting(ws, now=opened_at + 3700) == []  # reminded less than 1 h ago

    reminders = [e for e in heard if e.kind.value == "request-reminder"]
    assert len(reminders) == 1
    assert "needs 1 more: 1 approval from ai-team (prompts)" in reminders[0].message


def test_an_environment_may_count_only_approvals_given_through_the_server(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra='approve_via = "server"')
    prompt(ws, "p\n")
    with pytest.raises(RequestError, match="requests for staging count only through the server"):
        open_request(ws, "staging", reason="a claimed name")  # whom approvals are checked against
    with pytest.raises(RequestError, match="requests for staging count only through the server"):
        open_request(ws, "staging", reason="now", emergency=True)
    number = open_request(ws, "staging", reason="r", via="server").request.number

    with pytest.raises(RequestError, match="approvals for staging count only through the server"):
        review_request(as_(ws, "lee"), number, approve=True)
    with pytest.raises(RequestError, match="updates for staging count only through the server"):
        update_request(ws, number, reason="again")

    assert review_request(as_(ws, "lee"), number, approve=True, via="web").state == "approved"


def test_the_watcher_expires_requests_that_waited_too_long(project: ProjectFactory) -> None:
    ws = team(project, extra='expire = "1h"')
    heard = listen(ws)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    opened_at = show_request(ws, number).request.created_at
    prompt(ws, "later\n")
    scheduled = open_request(ws, "staging", reason="r2", apply_at=opened_at + 7200)

    assert apply_due_requests(ws, now=opened_at + 60) == {}
    assert apply_due_requests(ws, now=opened_at + 3601) == {"#1": "expired"}
    assert "request-expired" in kinds(heard)
    # a scheduled request expires only an expiry period after its time
    assert apply_due_requests(ws, now=opened_at + 7200 + 3601) == {
        scheduled.request.label: "expired"
    }


def test_waiting_for_me_lists_what_a_person_may_still_approve(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="prompt").request.number
    write(ws, {**healthy_files("base"), "routing/rules.yaml": "a\n"})
    other = open_request(as_(ws, "lee"), "staging", reason="routing").request.number

    def mine(person: str) -> list[int]:
        return [v.request.number for v in list_requests(as_(ws, person), status="for-me")]

    assert mine("lee") == [number]  # not their own #2, which needs ops anyway
    assert mine("dana") == [other, number]  # ai-team and ops
    assert mine("sam") == [other]
    review_request(as_(ws, "dana"), number, approve=True)
    assert mine("lee") == [] and mine("dana") == [other]


def test_waiting_for_me_includes_my_own_request_where_self_approval_is_allowed(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra="self_approval = true")
    write(ws, {**healthy_files("base"), "routing/rules.yaml": "a\n"})
    number = open_request(as_(ws, "sam"), "staging", reason="routing").request.number

    assert [v.request.number for v in list_requests(as_(ws, "sam"), status="for-me")] == [number]
    review_request(as_(ws, "sam"), number, approve=True)
    assert list_requests(as_(ws, "sam"), status="for-me") == []


def test_a_request_whose_content_went_live_another_way_is_not_called_stale(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    prompt(ws, "same\n")
    first = open_request(ws, "staging", reason="one").request.number
    second = open_request(as_(ws, "kim"), "staging", reason="two").request.number
    for number in (first, second):
        review_request(as_(ws, "lee"), number, approve=True)
    apply_request(ws, first)

    with pytest.raises(RequestError, match="what #2 proposes is live on staging already"):
        apply_request(as_(ws, "kim"), second)
    assert show_request(ws, second).state == "approved"  # not stale: nothing moved under it


def test_a_status_moves_only_from_where_the_writer_saw_it(
    project: ProjectFactory, store_url: str
) -> None:
    ws = team(project, store=store_url)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    withdraw_request(ws, number, reason="changed my mind")
    entries = len(show_request(ws, number).entries)

    late = ws.store.update_request(
        number, {"actor": "x", "action": "stale", "content_hash": "", "base_hash": ""},
        by="x", status="stale", when_status=("open",),
    )  # fmt: skip

    assert late.status == "withdrawn" and len(show_request(ws, number).entries) == entries
    with pytest.raises(RequestError, match="#1 is withdrawn"):
        update_request(ws, number, reason="again")


def test_rollback_force_cannot_put_unreviewed_content_live_where_approval_is_required(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    prompt(ws, "never reviewed\n")
    unreviewed = snapshot(ws, "evil").version

    with pytest.raises(RefusedError, match=f"{unreviewed.label} never ran on staging, which"):
        rollback(ws, "staging", to=unreviewed.label, force=True)

    assert not (live_folder(ws) / "prompts").exists()


def test_under_the_lease_the_deploy_checks_the_claim_and_the_base_again(
    project: ProjectFactory,
) -> None:
    ws = team(project, history=("one", "two"))
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number  # based on v2
    review_request(as_(ws, "lee"), number, approve=True)
    request = show_request(ws, number).request

    with pytest.raises(ApprovalRequiredError, match="#1 is open now, not claimed for this deploy"):
        deploy(ws, "staging", ref=str(request.version), request=request)
    claimed = ws.store.update_request(number, None, by=ws.actor, status="applying")
    rollback(ws, "staging", reason="v2 is bad after all")  # moves the base: v1 is live
    before = ws.store.deployments("staging")[0].id

    with pytest.raises(StaleBaseError, match="staging serves v1 now, not v2 change request #1"):
        deploy(ws, "staging", ref=str(request.version), request=claimed)
    assert ws.store.deployments("staging")[0].id == before  # nothing was switched


def test_an_apply_killed_midway_is_settled_from_the_ledger(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    review_request(as_(ws, "lee"), number, approve=True)
    # claimed, then the process died
    ws.store.update_request(number, None, by=ws.actor, status="applying")

    settled = show_request(ws, number)
    assert settled.request.status == "open"
    assert settled.entries[-1].action == "settled"
    assert "the apply stopped before its deploy began" in settled.request.detail
    assert apply_request(ws, number).exit_code == OK  # and it can be applied after all


def test_one_request_that_cannot_be_applied_does_not_hold_up_the_others(
    project: ProjectFactory,
) -> None:
    ws = team(project)
    at = time.time()
    write(ws, {**healthy_files("base"), "scoring/t.yaml": "threshold: 1\n"})
    first = open_request(ws, "staging", reason="tweak", apply_at=at).request.number  # standard
    prompt(ws, "p\n")
    second = open_request(ws, "staging", reason="prompt", apply_at=at).request.number
    review_request(as_(ws, "lee"), second, approve=True)
    tweak = show_request(ws, first).request.version
    ws.store.update_request(second, None, by=ws.actor, version=tweak)  # damaged: it must refuse

    done = apply_due_requests(ws, now=at + 1)  # newest first: the damaged one comes first

    assert done[f"#{second}"].startswith("not applied: #2 proposes v2, whose content is no")
    assert done[f"#{first}"].startswith("v2 is live on staging")


def test_a_request_shows_stale_as_soon_as_its_environment_moves(project: ProjectFactory) -> None:
    ws = team(project, history=("one", "two"))
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    review_request(as_(ws, "lee"), number, approve=True)
    assert show_request(ws, number).state == "approved"

    rollback(ws, "staging", reason="two was bad")

    assert show_request(ws, number).state == "stale"  # before anyone tries to apply it
    assert [v.state for v in list_requests(ws, "staging")] == ["stale"]


def test_reasons_and_comments_are_plain_text_of_a_sensible_length(project: ProjectFactory) -> None:
    ws = team(project)
    prompt(ws, "p\n")
    for text, character in (("ok\x1b[31mRED\r", "U+001B, character 3"), ("\x9b2K", "U+009B"),
                            ("pay \u202eevil\u202c now", "U+202E, character 5"),
                            ("an \u2066isolate\u2069", "U+2066")):  # fmt: skip
        with pytest.raises(UsageError) as refused:
            open_request(ws, "staging", reason=text)
        assert f"the reason holds a control character ({character}" in refused.value.message
    with pytest.raises(UsageError, match="the reason is 2001 characters long") as long:
        open_request(ws, "staging", reason="x" * 2001)
    assert long.value.exit_code == 2
    with pytest.raises(RequestError, match="the time to apply is in the past"):
        open_request(ws, "staging", reason="r", apply_at=time.time() - 3600)
    number = open_request(ws, "staging", reason="line one\nline two\tand a tab").request.number
    with pytest.raises(UsageError, match="rejecting #1 needs a reason") as bare:
        review_request(as_(ws, "lee"), number, approve=False, comment="   ")
    assert bare.value.exit_code == 2
    for step in (
        lambda: review_request(as_(ws, "lee"), number, approve=True, comment="ok \u202dfine"),
        lambda: update_request(ws, number, reason="\u202a"),
        lambda: withdraw_request(ws, number, reason="\x85"),
    ):
        with pytest.raises(UsageError, match="holds a control character"):
            step()
    assert [e.action for e in show_request(ws, number).entries] == ["opened"]


def test_approving_a_request_whose_environment_moved_on_is_refused_and_marks_it_stale(
    project: ProjectFactory,
) -> None:
    ws = team(project, history=("one", "two"))
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    rollback(ws, "staging", reason="two was bad")  # staging serves v1; #1 was based on v2
    lee = as_(ws, "lee")
    heard, entries = listen(lee), len(show_request(ws, number).entries)

    for approve in (True, True, False):  # the second time it is marked stale already
        with pytest.raises(RequestError) as refused:
            review_request(lee, number, approve=approve, comment="looks fine")
        assert refused.value.exit_code == 5
        assert refused.value.message == "#1 is stale: staging serves v1, not v2 it was based on"
        assert "'lastgood request update 1'" in (refused.value.hint or "")

    stale = show_request(ws, number)
    assert stale.request.status == "stale" and stale.tally.approved_by == ()
    assert [e.action for e in stale.entries][entries:] == ["stale"]
    assert kinds(heard) == ["request-stale"]  # announced once, by the step that found it
    fresh = update_request(ws, number, reason="on top of v1")
    assert review_request(lee, number, approve=True).state == "approved"
    assert fresh.request.base_version == 1


def test_a_step_that_applies_on_approval_carries_the_applys_exit_code(
    project: ProjectFactory,
) -> None:
    ws = team(project, extra='apply = "on-approval"')
    write(ws, {**broken_files("x"), "prompts/score.txt": "p\n"})
    number = open_request(ws, "staging", reason="breaks the check").request.number
    assert show_request(ws, number).exit_code is None  # nothing applied yet

    failed = review_request(as_(ws, "dana"), number, approve=True)

    assert failed.state == "failed" and failed.exit_code == 3
    assert failed.to_json()["exit_code"] == 3 and "exit_code" not in show_request(ws, 1).to_json()
    assert "restored v1" in failed.request.detail
    prompt(ws, "fine\n")
    applied = open_request(ws, "staging", reason="fine")
    assert review_request(as_(ws, "dana"), applied.request.number, approve=True).exit_code == 0

    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + FREEZE)
    ws.config = load(ws.root)
    prompt(ws, "frozen\n")
    held = open_request(ws, "staging", reason="during the freeze").request.number
    refused = review_request(as_(ws, "dana"), held, approve=True)
    assert refused.exit_code == 5 and refused.state == "approved"  # recorded; not applied
    assert refused.notice.startswith(f"#{held} was not applied: staging is closed to changes")
    assert [e.action for e in refused.entries][-3:] == ["approved", "applying", "apply-refused"]


def test_a_stale_request_says_why_it_is_stale_not_what_held_it_before(
    project: ProjectFactory,
) -> None:
    ws = team(project, history=("one", "two"))
    prompt(ws, "p\n")
    number = open_request(ws, "staging", reason="r").request.number
    review_request(as_(ws, "lee"), number, approve=True)
    config = ws.root / "lastgood.toml"
    unfrozen = config.read_text()
    config.write_text(unfrozen + FREEZE)
    ws.config = load(ws.root)
    with pytest.raises(FrozenError):
        apply_request(ws, number)
    assert "freeze 'year-end'" in show_request(ws, number).detail  # what held it, for now
    config.write_text(unfrozen)  # the freeze ended, and staging moved on
    ws.config = load(ws.root)
    rollback(ws, "staging", reason="two was bad")

    stale = show_request(ws, number)

    assert stale.state == "stale" and stale.request.status == "open"
    assert stale.detail == "staging no longer serves v2 it was based on"
    assert stale.summary.endswith(", stale: staging no longer serves v2 it was based on")
    assert stale.to_json()["detail"] == stale.detail and "freeze" not in stale.summary
