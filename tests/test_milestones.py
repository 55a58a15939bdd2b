"""Milestones are events like any other: a new last known good in production, and a restore
slower than its budget. Versions are judged in one round (FAST): a milestone follows the
verdict, however long the bake."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import FAST, Workspace

Factory = Callable[..., Workspace]


def kinds(ws: Workspace, kind: str) -> list[dict[str, object]]:
    events = json.loads(ws.run("history", "staging", "--json").stdout)["events"]
    return [e for e in events if e["kind"] == kind]


def test_a_new_last_known_good_in_a_protected_environment_is_announced(
    workspace: Factory,
) -> None:
    ws = workspace(**FAST)
    config = ws.root / "lastgood.toml"
    config.write_text(
        config.read_text().replace("verify_rounds = 2", "verify_rounds = 2\nprotected = true")
    )
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    assert ws.run("deploy", "staging").returncode == 0  # unchanged: no milestone
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    events = kinds(ws, "last-good-changed")
    assert [e["message"] for e in events] == [
        "v2 is now last known good on staging (was v1)",
        "v1 is now last known good on staging (was nothing)",
    ]
    assert events[0]["data"]["message"] == "second"  # type: ignore[index]


def test_an_unprotected_environment_has_no_last_good_milestones(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    assert kinds(ws, "last-good-changed") == []


def test_a_restore_slower_than_the_budget_is_announced(workspace: Factory) -> None:
    ws = workspace(**FAST)
    config = ws.root / "lastgood.toml"
    config.write_text(
        config.read_text().replace("verify_rounds = 2", 'verify_rounds = 2\nbudget = "1ms"')
    )
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.broken()
    assert ws.run("deploy", "staging").returncode == 3
    events = kinds(ws, "budget-exceeded")
    assert len(events) == 1
    assert "over the budget of 1 ms" in str(events[0]["message"])
    assert events[0]["data"]["kind"] == "auto-rollback"  # type: ignore[index]
    status = json.loads(ws.run("status", "staging", "--json").stdout)[0]
    assert status["within_budget"] is False


def test_a_restore_within_budget_is_quiet(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.broken()
    assert ws.run("deploy", "staging").returncode == 3
    assert kinds(ws, "budget-exceeded") == []
