"""``lastgood request`` through the real CLI: what docs/change-requests.md's walk-through does
not show (emergencies, scheduling input, JSON)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from lastgood.cli.request_cmd import request as request_group
from lastgood.operations.gate import REQUEST_SUBCOMMANDS, request_command
from tests.conftest import Workspace, config_text

FREEZE = """
[[env.staging.freeze]]
name = "year-end"
from = "2000-01-01 00:00"
until = "2100-01-01 00:00"
reason = "the books are closing"
"""

APPROVAL = """
[groups]
ops = ["sam", "kim"]

[env.staging.approval]
approvers = ["ops"]
"""


def gated(workspace: Callable[..., Workspace]) -> Workspace:
    ws = workspace(bake="0s", interval="10ms")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + APPROVAL)
    return ws


def test_an_emergency_through_the_cli_is_applied_marked_and_signed_off(
    workspace: Callable[..., Workspace],
) -> None:
    ws = gated(workspace)
    ws.healthy("fix")

    done = ws.run("request", "staging", "--emergency", "-m", "scores are zero")

    assert done.returncode == 0, done.stderr
    assert "opened EMERGENCY change #1 for staging" in done.stderr
    assert "state     applied" in done.stdout
    assert "emergency review open: someone other than the requester signs it off" in done.stdout
    waiting = json.loads(ws.run("request", "list", "--state", "review", "--json").stdout)
    assert [(r["number"], r["emergency"], r["review_open"]) for r in waiting] == [(1, True, True)]

    mine = ws.run("request", "signoff", "1")
    assert mine.returncode == 5 and "cannot sign off its review" in mine.stderr
    signed = ws.run("request", "signoff", "1", "-m", "ok", env={"LASTGOOD_AUTHOR": "kim"})
    assert signed.returncode == 0 and "emergency review signed off" in signed.stdout
    timeline = signed.stdout.split("\ntimeline\n", 1)[1].splitlines()
    actions = [re.match(r"  \S+ \S+  (\S+ +)\S", line) for line in timeline]
    assert [len(found.group(1)) for found in actions if found] == [11] * 4, timeline
    assert timeline[-1].endswith("  signed-off kim: ok")  # the actors' column holds
    history = ws.run("history", "staging", "--json")
    assert json.loads(history.stdout)["deployments"][0]["source"] == "emergency"


def test_bad_input_is_named(workspace: Callable[..., Workspace]) -> None:
    ws = gated(workspace)
    ws.healthy("two")

    when = ws.run("request", "staging", "-m", "later", "--at", "tomorrow morning")
    assert when.returncode == 2
    assert "--at 'tomorrow morning' is not a date and time" in when.stderr
    missing = ws.run("request", "show", "9")
    assert missing.returncode == 2 and "no change request #9" in missing.stderr
    no_reason = ws.run("request", "staging")
    assert no_reason.returncode == 2 and "Missing option '-m'" in no_reason.stderr
    scheduled = json.loads(
        ws.run("request", "staging", "-m", "tonight", "--at", "2099-01-01T06:00", "--json").stdout
    )
    assert scheduled["state"] == "waiting" and scheduled["apply_at"] > 4_000_000_000
    for empty in ("", " "):
        for args in (("staging", "-m", "x"), ("update", "1"), ("open", "staging", "-m", "x")):
            blank = ws.run("request", *args, "--version", empty)
            assert blank.returncode == 2, (args, blank.stderr)
            assert "Invalid value for '--version': names no version" in blank.stderr
    assert "Invalid value for '--version'" in ws.run("deploy", "staging", "--version", "").stderr
    for number in ("\u0661", "1\u0661", "1.0"):  # U+0661: an Arabic-Indic one
        shown = ws.run("request", "show", number)
        assert shown.returncode == 2 and f"{number!r} is not a request number" in shown.stderr
    bare = ws.run("request", "reject", "1", "-m", "", env={"LASTGOOD_AUTHOR": "sam"})
    assert bare.returncode == 2 and "rejecting #1 needs a reason" in bare.stderr
    bidi = ws.run("request", "approve", "1", "-m", "ok \u202eevil", env={"LASTGOOD_AUTHOR": "sam"})
    assert bidi.returncode == 2 and "a control character (U+202E" in bidi.stderr
    timeline = json.loads(ws.run("request", "show", "1", "--json").stdout)["timeline"]
    assert [e["action"] for e in timeline] == ["opened"]  # none of it recorded anything


def test_revert_through_the_cli_deploys_one_file_back(workspace: Callable[..., Workspace]) -> None:
    ws = workspace(bake="0s", interval="10ms")
    ws.healthy("one")
    ws.write("prompts/score.txt", "old\n")
    assert ws.run("deploy", "staging").returncode == 0
    ws.write("prompts/score.txt", "new\n")
    ws.healthy("two")
    assert ws.run("deploy", "staging").returncode == 0

    done = ws.run("revert", "staging", "prompts/score.txt", "-m", "wording drops leads")

    assert done.returncode == 0, done.stderr
    assert "prompts/score.txt: from v1" in done.stderr
    assert "recorded v3: 1 file differs from what is live" in done.stderr
    shown = ws.run("show", "v3", "scoring/thresholds.yaml")
    assert "marker: two" in shown.stdout  # the rest of v2 stayed
    assert ws.run("show", "v3", "prompts/score.txt").stdout == "old\n"
    missing = ws.run("revert", "staging", "-m", "x")
    assert missing.returncode == 2 and "Missing argument 'PATH...'" in missing.stderr


def test_approving_twice_says_so_and_records_one_approval(
    workspace: Callable[..., Workspace],
) -> None:
    ws = gated(workspace)
    ws.healthy("two")
    assert ws.run("request", "staging", "-m", "two").returncode == 0
    sam = {"LASTGOOD_AUTHOR": "sam"}
    assert ws.run("request", "approve", "1", "-m", "ok", env=sam).returncode == 0

    again = ws.run("request", "approve", "1", "-m", "ok", env=sam)

    assert again.returncode == 0, again.stderr
    assert "sam already approved #1 as it stands: nothing recorded" in again.stderr
    shown = json.loads(ws.run("request", "show", "1", "--json").stdout)
    assert [e["action"] for e in shown["timeline"]] == ["opened", "approved"]


def test_request_show_says_when_a_freeze_holds_its_environment(
    workspace: Callable[..., Workspace],
) -> None:
    ws = gated(workspace)
    ws.healthy("two")
    assert ws.run("request", "staging", "-m", "two").returncode == 0
    assert ws.run("request", "approve", "1", env={"LASTGOOD_AUTHOR": "sam"}).returncode == 0
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + FREEZE)

    shown = ws.run("request", "show", "1", "--no-diff")

    assert shown.returncode == 0, shown.stderr
    assert "\nfrozen    staging: freeze 'year-end' (the books are closing) until " in shown.stdout
    assert "next: lastgood request apply 1, once staging is open to changes again" in shown.stderr
    data = json.loads(ws.run("request", "show", "1", "--json").stdout)
    assert data["freeze"]["state"] == "active" and data["freeze"]["name"] == "year-end"
    listed = json.loads(ws.run("request", "list", "--json").stdout)
    assert listed[0]["freeze"] == data["freeze"]
    applied = ws.run("request", "apply", "1")
    assert applied.returncode == 5 and "staging is closed to changes" in applied.stderr


def test_the_request_command_knows_every_subcommand_name() -> None:
    assert set(request_group.commands) == REQUEST_SUBCOMMANDS
    assert request_command("production") == "lastgood request production -m WHY"
    assert request_command("list", "--version v3 -m WHY") == (
        "lastgood request open list --version v3 -m WHY"
    )
    assert request_command("-x") == "lastgood request open -m WHY -- -x"


@pytest.mark.parametrize("env", ["list", "show", "-x"])
def test_a_refused_deploys_hint_works_for_an_environment_named_like_a_subcommand(
    tmp_path: Path, env: str
) -> None:
    text = config_text(env=f'"{env}"', bake="0s", interval="10ms").replace(
        f'[[env."{env}".check]]',
        f'[env."{env}".approval]\napprovers = ["sam"]\n\n[[env."{env}".check]]',
    )
    ws = Workspace(tmp_path, text)
    ws.healthy("one")
    try:
        refused = ws.run("deploy", "--", env) if env.startswith("-") else ws.run("deploy", env)
        assert refused.returncode == 5, refused.stderr
        hinted = re.search(r"open one with '(lastgood request [^']*)'", refused.stderr)
        assert hinted is not None, refused.stderr

        args = shlex.split(hinted.group(1).replace("WHY", "'first rules'"))[1:]
        opened = ws.run(*args)

        assert opened.returncode == 0, opened.stderr
        assert f"opened change request #1 for {env}" in opened.stderr
    finally:
        ws.close()


def test_an_approval_whose_apply_on_approval_fails_exits_as_the_apply(
    workspace: Callable[..., Workspace],
) -> None:
    ws = gated(workspace)
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + 'apply = "on-approval"\n')  # in [env.staging.approval]
    ws.broken("zero")
    assert ws.run("request", "staging", "-m", "breaks the check").returncode == 0

    approved = ws.run("request", "approve", "1", "-m", "ok", env={"LASTGOOD_AUTHOR": "sam"})

    assert approved.returncode == 3, approved.stderr
    assert "state     failed (v2 failed 'health-file-ok' on staging" in approved.stdout
    assert "#1 was applied and failed: v2 failed 'health-file-ok'" in approved.stderr
    ws.broken("zero again")
    assert ws.run("request", "staging", "-m", "again").returncode == 0
    as_json = ws.run("request", "approve", "2", "--json", env={"LASTGOOD_AUTHOR": "kim"})
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["exit_code"] == 3
    ws.healthy("fine")
    assert ws.run("request", "staging", "-m", "fine").returncode == 0
    fine = ws.run("request", "approve", "3", "--json", env={"LASTGOOD_AUTHOR": "kim"})
    assert fine.returncode == 0 and json.loads(fine.stdout)["state"] == "applied"
    assert json.loads(ws.run("request", "show", "3", "--json").stdout).get("exit_code") is None
