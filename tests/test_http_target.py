"""The ``http`` target end to end: the recipes of docs/targets.md against real HTTP services.

Every test starts a small service of ``tests/tool_apis.py`` (a workflow tool, a prompt service)
or ``tests/scoring_api.py`` on 127.0.0.1, writes a recipe's ``lastgood.toml`` taken from the
docs (only its bake and interval shortened) and drives the real ``lastgood`` CLI in
subprocesses. Store: SQLite, and PostgreSQL where the ledger's truth matters.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import scoring_api, tool_apis
from tests.conftest_crash_helpers import KILLED
from tests.scoring_api import ScoringApi
from tests.tool_apis import ToolApi
from tests.tool_workspace import ToolWorkspace, sized_for_tests

LASTGOOD = str(Path(sys.executable).with_name("lastgood"))
DOCS = Path(__file__).resolve().parent.parent / "docs"
ENV = "production"
ROLLED_BACK = 3  # exit code: failed its checks, last known good restored
WORKFLOW = "workflows/lead-routing.json"
WORKFLOW_NAME = "lead-routing-production"
GREETING = "prompts/greeting.txt"
THRESHOLD = "scoring/threshold.json"


def recipe(title: str) -> str:
    """A recipe's lastgood.toml from docs/targets.md, with test-sized bake and interval."""
    text = (DOCS / "targets.md").read_text(encoding="utf-8")
    section = text.split(f"## Recipe: {title}\n", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None, f"the recipe {title!r} has no toml block"
    return sized_for_tests(block.group(1))


WORKFLOW_RECIPE = "a workflow tool over its REST API"
PROMPT_RECIPE = "prompts with labels in a prompt service"
SCORING_RECIPE = "the scoring threshold with the `http` target"


@dataclass
class Setup(ToolWorkspace):
    """A workspace using one recipe against one running service."""

    root: Path
    variables: dict[str, str]
    store: str | None = None
    hidden: list[str] = field(default_factory=list)
    author = "http-target-test"

    def tool_env(self) -> dict[str, str]:
        return self.variables

    def secrets(self) -> list[str]:
        return self.hidden

    def write(self, path: str, data: bytes) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_bytes(data)

    def deploy(self, path: str, data: bytes, message: str, code: int = 0) -> str:
        self.write(path, data)
        return self.said("deploy", ENV, "-m", message, code=code)


def make_setup(
    base: Path, config: str, variables: dict[str, str], store: str | None = None
) -> Setup:
    root = base / "ws"
    root.mkdir(parents=True)
    (root / "lastgood.toml").write_text(config)
    secrets = [v for k, v in variables.items() if k.endswith(("_KEY", "_TOKEN"))]
    return Setup(root, variables, store, secrets)


# ---- the workflow tool ----------------------------------------------------------------------


def workflow(min_score: int) -> bytes:
    document = {"nodes": [{"type": "score"}, {"type": "route"}], "min_score": min_score}
    return json.dumps(document, indent=2).encode() + b"\n"


@pytest.fixture
def tool() -> Iterator[ToolApi]:
    with tool_apis.serving("workflow") as running:
        yield running


def workflow_setup(base: Path, tool: ToolApi, config: str = "", store: str | None = None) -> Setup:
    variables = {"WORKFLOW_URL": tool.url, "WORKFLOW_API_KEY": tool_apis.WORKFLOW_KEY}
    return make_setup(base, config or recipe(WORKFLOW_RECIPE), variables, store)


def served_workflow(tool: ToolApi) -> tuple[int, str]:
    """The min_score the tool serves and its version tag."""
    held = tool.workflows[WORKFLOW_NAME]
    content = held["config"][WORKFLOW]["content"]
    return json.loads(content)["min_score"], held["versionTag"]


def test_a_bad_workflow_is_caught_and_the_good_one_restored(
    tmp_path: Path, tool: ToolApi, store_url: str
) -> None:
    setup = workflow_setup(tmp_path, tool, store=store_url)
    setup.deploy(WORKFLOW, workflow(40), "min score 40")
    assert served_workflow(tool) == (40, "v1")
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["drifted"]) == (1, 1, False)

    said = setup.deploy(WORKFLOW, workflow(500), "drop everything", code=ROLLED_BACK)
    assert "min-score-sane" in said and "v1" in said
    assert served_workflow(tool) == (40, "v1")
    assert tool.writes == ["v1", "v2", "v1"]
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["live_verdict"]) == (1, 1, "good")
    assert not report["drifted"]
    restore = next(d for d in setup.history()["deployments"] if d["kind"] == "auto-rollback")
    assert restore["status"] == "succeeded" and restore["verified_at"] is not None


def test_manual_rollback_puts_the_kept_workflow_back(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.deploy(WORKFLOW, workflow(45), "two")
    assert served_workflow(tool) == (45, "v2")
    setup.ok("rollback", ENV, "-m", "routing misbehaves")
    assert served_workflow(tool) == (40, "v1")
    assert setup.status()["live_version"] == 1


def test_offline_rollback_needs_only_the_tool(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.deploy(WORKFLOW, workflow(45), "two")
    store = setup.root / ".lastgood" / "store.db"
    hidden = store.with_name("elsewhere.db")
    store.rename(hidden)
    try:
        done = setup.ok("rollback", ENV, "--offline", "-m", "store down")
    finally:
        hidden.rename(store)
    assert "offline" in done.stdout + done.stderr
    assert served_workflow(tool) == (40, "v1")
    assert setup.status()["live_version"] == 1


def test_an_edit_in_the_tools_editor_is_drift_and_is_put_back(
    tmp_path: Path, tool: ToolApi
) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    edited = {WORKFLOW: {"encoding": "utf-8", "content": workflow(99).decode()}}
    tool.edit_workflow(WORKFLOW_NAME, edited)  # the tag still says v1
    report = setup.status()
    assert report["drifted"] and not report["live_unknown"]
    assert report["live_version"] == 1
    done = setup.ok("watch", "--once", "--json")
    assert "restored" in done.stdout, done.stdout
    assert served_workflow(tool) == (40, "v1")
    events = [e for e in setup.history()["events"] if e["kind"] == "drift-detected"]
    assert events and "99" in events[0]["data"]["diff"]
    assert not setup.status()["drifted"]


def test_a_tool_that_reformats_the_json_is_not_drift(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    parsed = json.loads(workflow(40))
    tool.edit_workflow(WORKFLOW_NAME, {WORKFLOW: json.dumps(parsed, separators=(",", ":"))})
    report = setup.status()
    assert not report["drifted"], report["warnings"]


def test_a_failing_push_closes_the_record_with_the_answer(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    tool.mode = "error"  # and the error answer echoes the request's headers, API key included
    setup.write(WORKFLOW, workflow(45))
    done = setup.run("deploy", ENV, "-m", "two")
    tool.mode = "normal"
    assert done.returncode == 5, done.stderr  # refused: nothing live changed
    said = done.stderr
    assert "nothing live changed (v1 still live on production)" in said
    assert f"PUT {tool.url}/api/v1/workflows/{WORKFLOW_NAME} for production answered 500" in said
    assert "database is read-only" in said and "tried 3 times" in said
    assert tool_apis.WORKFLOW_KEY not in done.stdout + said
    assert served_workflow(tool) == (40, "v1")
    failed = setup.history()["deployments"][0]
    assert failed["status"] == "failed" and failed["finished_at"] is not None
    assert "answered 500" in failed["detail"] and "database is read-only" in failed["detail"]
    assert tool_apis.WORKFLOW_KEY not in json.dumps(failed)
    assert setup.status()["live_version"] == 1


def test_status_with_the_tool_down_shows_the_ledger_view(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.variables["WORKFLOW_URL"] = "http://127.0.0.1:9"  # nothing listens there
    done = setup.run("status", ENV)
    assert done.returncode == 0, done.stderr
    assert "live          unknown (the target could not be read: GET http://127.0.0.1:9/" in (
        done.stdout
    )
    [report] = json.loads(setup.run("status", ENV, "--json").stdout)
    assert report["unreachable"] and (report["ledger_version"], report["last_good"]) == (1, 1)
    assert tool_apis.WORKFLOW_KEY not in done.stdout + done.stderr + json.dumps(report)


def test_a_slow_tool_times_out_and_the_deploy_fails(tmp_path: Path, tool: ToolApi) -> None:
    config = recipe(WORKFLOW_RECIPE).replace('timeout = "10s"', 'timeout = "1s"')
    setup = workflow_setup(tmp_path, tool, config)
    setup.deploy(WORKFLOW, workflow(40), "one")
    tool.mode, tool.delay = "slow", 2.0
    setup.write(WORKFLOW, workflow(45))
    done = setup.run("deploy", ENV, "-m", "two")
    tool.mode = "normal"
    assert done.returncode != 0
    assert "gave no answer within 1 s" in done.stderr
    assert tool_apis.WORKFLOW_KEY not in done.stdout + done.stderr
    assert served_workflow(tool) == (40, "v1")


def test_secrets_never_reach_the_output_the_ledger_or_the_state(
    tmp_path: Path, tool: ToolApi
) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.deploy(WORKFLOW, workflow(500), "bad", code=ROLLED_BACK)
    assert tool.seen_headers[0]["X-API-KEY"] == tool_apis.WORKFLOW_KEY  # it was sent
    setup.ok("history", ENV, "--json")
    setup.ok("status", ENV, "--json")
    key = tool_apis.WORKFLOW_KEY.encode()
    for path in (setup.root / ".lastgood").rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), path


def test_a_missing_variable_is_a_clear_error(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    del setup.variables["WORKFLOW_API_KEY"]
    setup.write(WORKFLOW, workflow(40))
    done = setup.run("deploy", ENV, "-m", "one")
    assert done.returncode != 0
    assert "uses ${WORKFLOW_API_KEY}, which is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_misspelt_option_stops_every_command_with_a_suggestion(
    tmp_path: Path, tool: ToolApi
) -> None:
    config = recipe(WORKFLOW_RECIPE).replace('\nmethod = "PUT"', '\nmethdo = "PUT"')
    setup = workflow_setup(tmp_path, tool, config)
    done = setup.run("status", ENV)
    assert done.returncode == 2
    assert "unknown option env.production.target.methdo" in done.stderr
    assert "did you mean env.production.target.method?" in done.stderr
    bad_field = recipe(WORKFLOW_RECIPE).replace("{version}", "{verison}")
    done = workflow_setup(tmp_path / "b", tool, bad_field).run("status", ENV)
    assert done.returncode == 2 and "did you mean {version}?" in done.stderr


def test_a_drill_pushes_a_broken_workflow_and_the_good_one_comes_back(
    tmp_path: Path, tool: ToolApi
) -> None:
    config = '[versioning]\nexclude = ["drills/**"]\n\n' + recipe(WORKFLOW_RECIPE)
    config += f'\n[env.production.drill]\nfiles = {{ "{WORKFLOW}" = "drills/drop-all.json" }}\n'
    setup = workflow_setup(tmp_path, tool, config)
    setup.write("drills/drop-all.json", workflow(500))
    setup.deploy(WORKFLOW, workflow(40), "one")
    done = setup.ok("drill", ENV)
    assert "drill passed" in done.stdout + done.stderr
    assert served_workflow(tool) == (40, "v1")
    assert setup.status()["live_version"] == 1


@pytest.mark.parametrize("point", ["target.after-switch", "deploy.after-activate"])
def test_killed_between_push_and_ledger_is_reconciled_through_live(
    tmp_path: Path, tool: ToolApi, pg_url: str, point: str
) -> None:
    setup = workflow_setup(tmp_path, tool, store=pg_url)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.write(WORKFLOW, workflow(45))
    killed = setup.run("deploy", ENV, "-m", "two", failpoint=point)
    assert killed.returncode == KILLED, killed.stderr
    assert served_workflow(tool) == (45, "v2")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (2, 2)
    assert not report["drifted"]
    assert setup.history()["deployments"][0]["status"] == "interrupted"
    setup.ok("rollback", ENV, "-m", "back")
    assert served_workflow(tool) == (40, "v1")


def test_killed_rollback_is_reconciled_through_live(tmp_path: Path, tool: ToolApi) -> None:
    setup = workflow_setup(tmp_path, tool)
    setup.deploy(WORKFLOW, workflow(40), "one")
    setup.deploy(WORKFLOW, workflow(45), "two")
    killed = setup.run("rollback", ENV, "-m", "back", failpoint="rollback.after-activate")
    assert killed.returncode == KILLED, killed.stderr
    assert served_workflow(tool) == (40, "v1")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (1, 1)


def test_a_push_that_times_out_but_lands_later_is_recorded_truthfully(
    tmp_path: Path, tool: ToolApi
) -> None:
    config = recipe(WORKFLOW_RECIPE).replace('timeout = "10s"', 'timeout = "1s"')
    config = config.replace('method = "PUT"', 'method = "PUT"\nidempotent = false')
    setup = workflow_setup(tmp_path, tool, config)
    setup.deploy(WORKFLOW, workflow(40), "one")
    tool.mode, tool.delay = "slow-writes", 1.5
    setup.write(WORKFLOW, workflow(45))
    done = setup.run("deploy", ENV, "-m", "two")
    assert done.returncode != 0
    assert "gave no answer within 1 s" in done.stderr and "not retried" in done.stderr
    deadline = time.monotonic() + 10
    while tool.writes[-1] != "v2" and time.monotonic() < deadline:
        time.sleep(0.05)  # the tool applies the write after lastgood gave up
    tool.mode = "normal"
    assert served_workflow(tool) == (45, "v2")
    report = setup.status()
    assert (report["live_version"], report["ledger_version"]) == (2, 2)
    assert any("never verified" in warning for warning in report["warnings"])


# ---- the prompt service ---------------------------------------------------------------------


@pytest.fixture
def prompts() -> Iterator[ToolApi]:
    with tool_apis.serving("prompts") as running:
        yield running


def prompt_setup(base: Path, prompts: ToolApi) -> Setup:
    variables = {"PROMPTS_URL": prompts.url, "PROMPTS_TOKEN": tool_apis.PROMPT_TOKEN}
    return make_setup(base, recipe(PROMPT_RECIPE), variables)


def test_prompts_with_labels_deploy_roll_back_and_restore_drift(
    tmp_path: Path, prompts: ToolApi
) -> None:
    setup = prompt_setup(tmp_path, prompts)
    setup.write("prompts/followup.txt", b"Remind {lead_name} politely.\n")
    setup.deploy(GREETING, b"Hello {lead_name}, thanks for your interest.\n", "one")
    served = prompts.prompt(GREETING, ENV)
    assert served is not None and served["commit"] == "v1"
    assert setup.status()["live_version"] == 1

    said = setup.deploy(GREETING, b"Hello there.\n", "no name", code=ROLLED_BACK)
    assert "greeting-has-name" in said
    served = prompts.prompt(GREETING, ENV)
    assert served is not None and "{lead_name}" in served["prompt"] and served["commit"] == "v1"
    assert setup.status()["live_version"] == 1

    prompts.publish_prompt(GREETING, "Hi from the UI\n", ENV, commit="tweak in the UI")
    report = setup.status()
    assert report["live_unknown"] and report["drifted"]
    done = setup.ok("watch", "--once", "--json")
    assert "restored" in done.stdout, done.stdout
    served = prompts.prompt(GREETING, ENV)
    assert served is not None and served["commit"] == "v1"
    assert not setup.status()["drifted"]


def test_a_failing_post_is_not_retried(tmp_path: Path, prompts: ToolApi) -> None:
    setup = prompt_setup(tmp_path, prompts)
    setup.deploy(GREETING, b"Hello {lead_name}.\n", "one")
    prompts.mode = "error"
    setup.write(GREETING, b"Hello {lead_name}!\n")
    done = setup.run("deploy", ENV, "-m", "two")
    prompts.mode = "normal"
    assert done.returncode != 0
    assert "POST " in done.stderr and "answered 500" in done.stderr
    assert "not retried" in done.stderr
    assert tool_apis.PROMPT_TOKEN not in done.stdout + done.stderr
    assert "label=production" not in done.stderr  # the query string is never shown


# ---- the scoring threshold: the promise ---------------------------------------------


@pytest.fixture
def scoring() -> Iterator[ScoringApi]:
    with scoring_api.serving() as running:
        yield running


def scoring_setup(base: Path, api: ScoringApi, store: str | None = None) -> Setup:
    variables = {"SCORING_URL": api.url, "SCORING_TOKEN": scoring_api.TOKEN}
    return make_setup(base, recipe(SCORING_RECIPE), variables, store)


def test_a_bad_threshold_is_caught_and_restored_by_itself(
    tmp_path: Path, scoring: ScoringApi, store_url: str
) -> None:
    setup = scoring_setup(tmp_path, scoring, store_url)
    good = b'{"threshold": 0.62}\n'
    setup.deploy(THRESHOLD, good, "threshold 0.62")
    assert (scoring.document, scoring.version) == (good, "v1")
    said = setup.deploy(THRESHOLD, b'{"threshold": 1.5}\n', "stricter", code=ROLLED_BACK)
    assert "threshold-sane" in said
    assert (scoring.document, scoring.version) == (good, "v1")
    report = setup.status()
    assert (report["live_version"], report["last_good"], report["drifted"]) == (1, 1, False)
    scoring.edit_by_hand(b'{"threshold": 0.99}\n')
    report = setup.status()
    assert report["drifted"] and report["live_unknown"]
    setup.ok("watch", "--once")
    assert scoring.document == good


def test_kill_9_at_random_moments_leaves_the_ledger_truthful(
    tmp_path: Path, scoring: ScoringApi
) -> None:
    """Deploys killed at random moments; after each, the next command's status must name the
    version the API serves (by its content), and deploys go on."""
    setup = scoring_setup(tmp_path, scoring)
    rng = random.Random(23)
    setup.deploy(THRESHOLD, b'{"threshold": 0.62}\n', "one")
    for trial in range(6):
        setup.write(THRESHOLD, b'{"threshold": 0.%d}\n' % (50 + trial))
        process = subprocess.Popen(
            [LASTGOOD, "-C", str(setup.root), "deploy", ENV, "-m", f"trial {trial}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=setup.environ(),
        )
        try:
            process.wait(rng.uniform(0.2, 0.9))  # start-up, push, 0.3 s bake
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        report = setup.status()
        assert f"v{report['live_version']}" == scoring.version, (trial, report, scoring.version)
        assert report["ledger_version"] == report["live_version"]
        assert not report["drifted"], report["warnings"]
