"""Comparative checks (``max_drop``, ``max_rise``): a real scoring service whose mean score
follows the deployed files, deploys that move it, and what the user and the ledger see."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lastgood.checks import CheckContext, build_check, run_check
from lastgood.checks.command import printed_value
from lastgood.comparison import Baseline, Comparison, Limit, judge, parse_comparison
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.events import Event
from lastgood.operations.deploy import deploy, plan_deploy
from lastgood.outcome import OK, RESTORED
from tests.conftest import Workspace

Factory = Callable[..., Workspace]
DOCS = Path(__file__).parent.parent / "docs"


class ScoringService:
    """Answers ``GET /scores`` with ``{"scores": {"mean": 40 * weight}}``, the weight read from
    ``scoring/weight.txt`` in the live folder it is pointed at: a change to that file halves
    the scores the way a bad threshold would."""

    def __init__(self) -> None:
        self.folder = Path("/nonexistent")
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    weight = float((service.folder / "scoring" / "weight.txt").read_text())
                    status, body = 200, {"scores": {"mean": round(40 * weight, 6)}}
                except OSError:
                    status, body = 503, {"error": "no live rules"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/scores"


@pytest.fixture(scope="module")
def service() -> Iterator[ScoringService]:
    running = ScoringService()
    thread = threading.Thread(target=running.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    thread.join(5)


def documented_example() -> str:
    """The comparative check of docs/configuration.md, as the docs show it."""
    text = (DOCS / "configuration.md").read_text()
    section = text.split("### Comparing with the value before the change")[1]
    return section.split("```toml\n")[1].split("```")[0]


def scoring_workspace(workspace: Factory, store: str, service: ScoringService) -> Workspace:
    """A workspace whose environment is the documented example, pointed at ``service``."""
    ws = workspace(store=store)
    config = documented_example().replace("http://127.0.0.1:8080/scores", service.url)
    config = config.replace('bake = "5m"', 'bake = "0s"').replace(
        'interval = "10s"', 'interval = "20ms"'
    )
    (ws.root / "lastgood.toml").write_text(config.replace("../live/staging", "../live"))
    service.folder = ws.base / "live" / "current"
    return ws


def weight(ws: Workspace, value: float) -> None:
    ws.write("scoring/weight.txt", f"{value}\n")


def test_a_change_that_halves_the_scores_is_caught_and_rolled_back(
    workspace: Factory, store_url: str, service: ScoringService
) -> None:
    ws = scoring_workspace(workspace, store_url, service)
    project = ws.project()
    weight(ws, 1.0)
    first = deploy(project, "staging", message="first")
    assert first.exit_code == OK, first.summary
    weight(ws, 0.9)  # 40 → 36: -10%, within max_drop 20%
    heard_within: list[Event] = []
    project.events.subscribe(heard_within.append)
    within = deploy(project, "staging", message="a small change")
    assert within.exit_code == OK, within.summary
    weight(ws, 0.45)  # 36 → 18: -50%
    heard: list[Event] = []
    project.events.subscribe(heard.append)
    halved = deploy(project, "staging", message="halve the scores")
    activated = [e.message for e in project.store.events("staging") if e.kind == "activated"]
    assert "mean-score compared with 36 (median of 3 rounds on v2 before v3)" in activated[0]
    assert "mean-score not compared: no baseline (nothing was live before v1)" in activated[-1]
    assert halved.exit_code == RESTORED
    assert (
        "scores.mean 36 → 18 (-50%, over max_drop 20%) against the baseline, median of 3 rounds "
        "on v2 before v3" in halved.summary
    )
    assert "restored v2" in halved.summary
    assert (ws.base / "live" / "current" / "scoring" / "weight.txt").read_text() == "0.9\n"

    store = project.store
    first_rows = store.check_records(deployment=first.deployment.id)
    assert {(r.phase, r.value, r.baseline) for r in first_rows} == {("bake", 40.0, None)}
    assert "not compared: no baseline (nothing was live before v1)" in first_rows[0].detail
    within_rows = store.check_records(deployment=within.deployment.id)
    assert [(r.phase, r.round) for r in within_rows if r.phase == "baseline"] == [
        ("baseline", 3), ("baseline", 2), ("baseline", 1)
    ]  # fmt: skip
    bake = [r for r in within_rows if r.phase == "bake"]
    assert bake and all((r.ok, r.value, r.baseline) == (True, 36.0, 40.0) for r in bake)
    assert "within max_drop 20%" in bake[0].detail
    passing = next(e.message for e in heard_within if e.message.startswith("bake round 1:"))
    assert passing == (
        "bake round 1: 1/1 checks passed; 'mean-score': scores.mean 40 → 36 (-10%, within "
        "max_drop 20%) against the baseline, median of 3 rounds on v1 before v2"
    )
    failed = [r for r in store.check_records(deployment=halved.deployment.id) if not r.ok]
    assert [(r.value, r.baseline) for r in failed] == [(18.0, 36.0), (18.0, 36.0)]
    assert "over max_drop 20%" in store.deployment(halved.deployment.id).detail
    bake_rounds = [e.data for e in heard if e.kind.value == "check-round" and "baselines" in e.data]
    assert bake_rounds[0]["values"] == {"mean-score": 18.0}
    assert bake_rounds[0]["baselines"] == {"mean-score": 36.0}


def test_the_cli_says_what_was_compared(workspace: Factory, service: ScoringService) -> None:
    ws = scoring_workspace(workspace, None, service)
    weight(ws, 1.0)
    assert ws.run("deploy", "staging").returncode == 0
    plan = ws.run("deploy", "staging", "--dry-run")
    assert "mean-score sampled 3 times for their baseline" in plan.stdout + plan.stderr
    checked = ws.run("check", "staging", "--json")
    assert json.loads(checked.stdout)["results"][0]["value"] == 40.0
    weight(ws, 2.5)  # 40 → 100: max_rise 50% is exceeded
    risen = ws.run("deploy", "staging")
    assert risen.returncode == 3, risen.stderr
    said = " ".join((risen.stdout + risen.stderr).split())
    assert "scores.mean 40 → 100 (+150%, over max_rise 50%) against the baseline" in said
    assert "restored v1" in said


def test_no_baseline_means_absolute_bounds_only(
    workspace: Factory, service: ScoringService
) -> None:
    """The first deploy has nothing to compare with: it passes on its own bounds, saying so."""
    ws = scoring_workspace(workspace, None, service)
    project = ws.project()
    weight(ws, 0.1)  # 4: far below anything before, but there was nothing before
    outcome = deploy(project, "staging")
    assert outcome.exit_code == OK
    plan = plan_deploy(project, "staging")
    assert "sampled 3 times" in " ".join(step.detail for step in plan.plan)


def test_a_drill_that_halves_the_scores_is_caught_by_max_drop(
    workspace: Factory, service: ScoringService
) -> None:
    """The drill samples the baseline against the live version, then its variant is judged."""
    from lastgood.operations.drill import drill

    ws = scoring_workspace(workspace, None, service)
    config = ws.root / "lastgood.toml"
    drill_table = '[env.staging.drill]\nfiles = { "scoring/weight.txt" = "drills/halved.txt" }\n'
    config.write_text(config.read_text() + drill_table + '[versioning]\nexclude = ["drills/**"]\n')
    ws.write("drills/halved.txt", "0.5\n")
    weight(ws, 1.0)
    project = ws.project()
    assert deploy(project, "staging").exit_code == OK
    result = drill(project, "staging")
    assert result.passed, result.summary
    caught = project.store.deployments("staging", status="failed-restored")[0]
    assert "scores.mean 40 → 20 (-50%, over max_drop 20%)" in caught.detail


# ---- configuration, checked when it is read or when the checks are built ------------------


def load_error(tmp_path: Path, check: str) -> ConfigError:
    from lastgood import config

    text = '[env.staging]\ntarget = { type = "directory", path = "../live" }\n' + check
    with pytest.raises(ConfigError) as caught:
        parsed = config.parse(config.tomllib.loads(textwrap.dedent(text)), tmp_path)
        for spec in parsed.environments["staging"].checks:
            build_check(spec)
    return caught.value


@pytest.mark.parametrize(
    ("check", "says", "hint"),
    [
        (
            '[[env.staging.check]]\nname = "mean"\ntype = "sql"\nurl = "sqlite:///x.db"\n'
            'query = "select 1"\nmax_drop = "20 percent"\n',
            "env.staging.check.mean in …lastgood.toml: max_drop = '20 percent' is not a percentage",
            'max_drop = "20%"',
        ),
        (
            '[[env.staging.check]]\nname = "mean"\ntype = "sql"\nurl = "sqlite:///x.db"\n'
            'query = "select 1"\nmax_rise = -5\n',
            "max_rise = -5 is not a percentage or a number ≥ 0",
            "max_rise = 5",
        ),
        (
            '[[env.staging.check]]\nname = "up"\ntype = "http"\nurl = "http://127.0.0.1:1/"\n'
            'max_drop = "20%"\n',
            "http check 'up': max_drop and max_rise need a value it measures",
            'value = "scores.mean"',
        ),
        (
            '[[env.staging.check]]\nname = "script"\ntype = "command"\nrun = "true"\n'
            'max_drop = "20%"\n',
            "command check 'script': max_drop and max_rise need a value",
            'value = "last-line"',
        ),
        (
            '[[env.staging.preflight]]\nname = "sample"\ntype = "command"\nrun = "true"\n'
            'value = "last-line"\nmax_drop = "20%"\n',
            "max_drop and max_rise apply to checks, not preflights",
            "[[check]]",
        ),
    ],
    ids=["percent-syntax", "negative", "http-without-value", "command-without-value", "preflight"],
)
def test_bad_comparison_config_is_refused(tmp_path: Path, check: str, says: str, hint: str) -> None:
    error = load_error(tmp_path, check)
    assert all(part in error.message for part in says.split("…")), error.message
    assert hint in (error.hint or "")


def test_an_sql_check_may_be_bounded_by_its_baseline_alone(tmp_path: Path) -> None:
    spec = CheckSpec("mean", "sql", 5.0, {"url": "sqlite:///x.db", "query": "select 1"})
    with pytest.raises(ConfigError, match="min, max or equals is needed"):
        build_check(spec)
    compared = CheckSpec(
        "mean", "sql", 5.0, {"url": "sqlite:///x.db", "query": "select 1"},
        compare=Comparison(max_drop=Limit(20, percent=True)),
    )  # fmt: skip
    assert build_check(compared).measures_value


# ---- the values each built-in check measures ---------------------------------------------


def test_a_command_measures_the_number_it_prints_last(tmp_path: Path) -> None:
    assert printed_value(b"scoring 10 leads\n41.5\n\n", "last-line") == 41.5
    assert printed_value(b'{"scores": {"mean": 19.5}}\n', "scores.mean") == 19.5
    assert printed_value(b"done\n", "last-line") is None
    assert printed_value(b'{"scores": {}}\n', "scores.mean") is None
    context = CheckContext("staging", 1, tmp_path, tmp_path)
    options = {"run": f"{sys.executable} -c 'print(\"no number\")'", "value": "last-line"}
    result = run_check(build_check(CheckSpec("score", "command", 5.0, options)), context)
    assert not result.ok
    assert "exited 0 but printed no number last" in result.detail


def test_an_http_answer_without_its_value_fails(service: ScoringService, tmp_path: Path) -> None:
    service.folder = tmp_path
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "weight.txt").write_text("1")
    context = CheckContext("staging", 1, tmp_path, tmp_path)
    good = CheckSpec("mean", "http", 5.0, {"url": service.url, "value": "scores.mean"})
    assert run_check(build_check(good), context).data["value"] == 40.0
    wrong = CheckSpec("mean", "http", 5.0, {"url": service.url, "value": "scores.median"})
    result = run_check(build_check(wrong), context)
    assert not result.ok
    assert "json scores.median is missing (the value this check measures)" in result.detail


# ---- the comparison itself ---------------------------------------------------------------


def compare(value: float | None, before: float, **limits: object) -> tuple[bool, str]:
    comparison = parse_comparison(limits, "check 'x'")
    assert comparison is not None
    verdict = judge(value, Baseline(before, "1 round on v1 before v2"), comparison)
    return verdict.ok, verdict.text


def test_limits_in_percent_and_in_the_values_own_units() -> None:
    assert compare(19.5, 41.0, max_drop="20%") == (
        False,
        "value 41 → 19.5 (-52%, over max_drop 20%) against the baseline, 1 round on v1 before v2",
    )
    assert compare(33.0, 41.0, max_drop="20%")[0]  # -19.5%
    assert compare(60.0, 41.0, max_drop="20%")[0]  # no max_rise: a rise is fine
    assert not compare(62.0, 41.0, max_rise="50%")[0]
    assert compare(45.0, 41.0, max_rise=5)[0] and not compare(47.0, 41.0, max_rise=5)[0]
    assert compare(40.0, 41.0, max_drop=1.0)[0] and not compare(39.9, 41.0, max_drop=1.0)[0]


def test_a_zero_baseline_allows_no_share() -> None:
    assert compare(0.0, 0.0, max_rise="50%")[0]
    ok, text = compare(2.0, 0.0, max_rise="50%")
    assert not ok and "(+2, over max_rise 50%)" in text
    assert compare(2.0, 0.0, max_rise=5)[0]


def test_a_missing_value_fails_the_comparison() -> None:
    ok, text = compare(None, 41.0, max_drop="20%")
    assert not ok and text == "no value measured to compare with baseline 41"


def test_an_sql_metric_is_compared_with_its_baseline(tmp_path: Path) -> None:
    import sqlite3

    from lastgood.operations.baseline import MeasuredBaseline
    from lastgood.operations.checking import compared

    with sqlite3.connect(tmp_path / "leads.db") as db:
        db.execute("create table leads (score real)")
        db.executemany("insert into leads values (?)", [(0.2,), (0.3,)])
    db.close()
    options = {"url": "sqlite:///leads.db", "query": "select avg(score) from leads", "min": 0.01}
    check = build_check(CheckSpec("lead-scores", "sql", 5.0, options, compare=Comparison(
        max_drop=Limit(20, percent=True))))  # fmt: skip
    context = CheckContext("staging", 2, tmp_path, tmp_path)
    before = MeasuredBaseline({"lead-scores": Baseline(0.5, "1 round on v1 before v2")})
    result = compared(check, run_check(check, context), before)
    assert not result.ok
    assert result.detail == (
        "query returned 0.25 (expected ≥ 0.01); value 0.5 → 0.25 (-50%, over max_drop 20%) "
        "against the baseline, 1 round on v1 before v2"
    )
    assert result.data["baseline"] == 0.5
    nothing = compared(check, run_check(check, context), MeasuredBaseline(reason="no checks"))
    assert nothing.ok and nothing.detail.endswith("; not compared: no baseline (no checks)")
