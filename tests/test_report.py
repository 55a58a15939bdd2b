"""The status digest through the real CLI: what a stakeholder reads after a week of deploys,
failures, rollbacks and a drill, in text, Markdown, HTML and JSON, and the numbers behind it.
Versions are judged in one round (FAST): the digest reports what the ledger recorded, however
long the bakes were."""

from __future__ import annotations

import importlib.util
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import FAST, Workspace
from tests.http_fakes import POLL
from tests.test_drill import DRILL

Factory = Callable[..., Workspace]
DAY = 86400.0
ROLLBACKS = ("rollback", "auto-rollback", "offline-rollback")


def seconds(value: float) -> str:
    """How the digest shows a restore time (kept independent of the code under test)."""
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.1f} s"


def week(ws: Workspace) -> None:
    """Two authors deploy, one deploy fails and is rolled back by itself, one rollback by hand,
    then a drill: the week the digest must tell."""
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(DRILL + '\n[versioning]\nexclude = ["drills/**"]\n')
    ws.write("drills/broken-health.txt", "fail\n")
    alice, bob = {"LASTGOOD_AUTHOR": "alice"}, {"LASTGOOD_AUTHOR": "bob"}
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first rules", env=alice).returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "raise threshold", env=bob).returncode == 0
    ws.broken("three")
    assert ws.run("deploy", "staging", "-m", "zero <scores>", env=alice).returncode == 3
    ws.healthy("two")
    done = ws.run("rollback", "staging", "-m", "back to the first rules", env=bob)
    assert done.returncode == 0, done.stderr
    assert ws.run("drill", "staging").returncode == 0


def report(ws: Workspace, *args: str) -> str:
    result = ws.run("report", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Cells(HTMLParser):
    """The text of every table cell, grouped by section id and table class."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.table = ""
        self.rows: dict[tuple[str, str], list[list[str]]] = {}
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.section = found.get("id") or ""
        elif tag == "table":
            self.table = found.get("class") or ""
        elif tag == "tr":
            self.rows.setdefault((self.section, self.table), []).append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[(self.section, self.table)][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def figures(self, env: str) -> dict[str, str]:
        return {row[0]: row[1] for row in self.rows[(f"env-{env}", "figures")]}


def parse_html(text: str) -> Cells:
    cells = Cells()
    cells.feed(text)
    return cells


def test_a_week_reads_the_same_in_every_format(workspace: Factory) -> None:
    ws = workspace(**FAST)
    week(ws)
    timeline = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
    drill_at = next(d for d in timeline if d["kind"] == "drill")["requested_at"]
    rollbacks = [d for d in timeline if d["kind"] in ROLLBACKS and d["requested_at"] < drill_at]
    restores = sorted(d["time_to_active"] for d in rollbacks)
    verified = sorted(d["time_to_verified"] for d in rollbacks)
    assert len(restores) == 2

    digest = json.loads(report(ws, "--json"))
    staging = digest["envs"][0]
    assert (staging["env"], digest["quiet"]) == ("staging", False)
    assert [(c["version"], c["actor"], c["result"]) for c in staging["changes"]] == [
        (1, "alice", "succeeded"), (2, "bob", "succeeded"), (3, "alice", "failed-restored"),
    ]  # fmt: skip
    assert staging["people"] == {"alice": 2, "bob": 1}
    assert [i["kind"] for i in staging["incidents"]] == ["deploy-failed"]
    assert (staging["automatic_rollbacks"], staging["manual_rollbacks"]) == (1, 1)
    assert staging["restore_p50"] == pytest.approx(statistics.median(restores), abs=1e-9)
    assert staging["restore_max"] == pytest.approx(max(restores), abs=1e-9)
    assert staging["verified_max"] == pytest.approx(max(verified), abs=1e-9)
    assert (staging["over_budget"], staging["budget"]) == (0, 300.0)
    assert [d["status"] for d in staging["drills"]] == ["passed"]
    assert staging["last_drill"]["status"] == "passed" and staging["drill_overdue"] is None
    assert (staging["live_version"], staging["last_good"]) == (1, 1)

    text = report(ws)
    headline = next(line for line in text.splitlines() if line.startswith("staging:"))
    assert headline.startswith("staging: 3 changes by 2 people, 1 incident, 2 rollbacks")
    assert f"{seconds(max(restores))} at most (budget 5 min)" in headline
    assert headline.endswith("last drill just now: passed")
    assert "v3 by alice (zero <scores>): failed its checks, rolled back" in text
    assert "who: alice 2, bob 1" in text
    assert "live now v1, last known good v1" in text

    markdown = report(ws, "--format", "markdown")
    assert markdown.startswith("## lastgood digest: ")
    assert "### staging" in markdown and "**3 changes by 2 people, 1 incident" in markdown
    assert "| v3 | alice | zero \\<scores\\> | failed its checks, rolled back |" in markdown
    assert f"Restored in: p50 **{seconds(statistics.median(restores))}**" in markdown
    assert f"max **{seconds(max(verified))}** (budget 5 min on verified, 0 over)" in markdown

    html = report(ws, "--format", "html")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "zero &lt;scores&gt;" in html and "<scores>" not in html
    cells = parse_html(html)
    figures = cells.figures("staging")
    assert (figures["Changes"], figures["People"], figures["Incidents"]) == ("3", "2", "1")
    assert (figures["Automatic rollbacks"], figures["Manual rollbacks"]) == ("1", "1")
    assert figures["Restored in (p50, max)"] == (
        f"{seconds(statistics.median(restores))}, {seconds(max(restores))}"
    )
    assert figures["Verified in (p50, max)"] == (
        f"{seconds(statistics.median(verified))}, {seconds(max(verified))}"
    )
    assert (figures["Restore budget"], figures["Over budget"]) == ("5 min", "0")
    assert (figures["Drills"], figures["Last drill"]) == ("1", "passed, just now")
    assert (figures["Live now"], figures["Last known good"]) == ("v1", "v1")
    changes = cells.rows[("env-staging", "changes")]
    assert changes[0] == ["When", "Version", "Who", "Why", "Result"]
    assert [row[1:3] for row in changes[1:]] == [["v1", "alice"], ["v2", "bob"], ["v3", "alice"]]
    how = [row[1:3] for row in cells.rows[("env-staging", "rollbacks")][1:]]
    assert how == [["automatic", "v3 → v2"], ["by hand", "v2 → v1"]]


def add_env(ws: Workspace, name: str) -> None:
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(
            f'\n[env.{name}]\ntarget = {{ type = "directory", path = "../{name}", keep = 5 }}\n'
            'bake = "0.3s"\ninterval = "0.1s"\nbudget = "1m"\nprotected = true\n'
        )


def test_records_before_since_are_left_out(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy()
    assert ws.run("deploy", "staging", "-m", "this week").returncode == 0
    now = time.time()
    store = ws.project().store
    for days, actor in ((10, "old-carol"), (40, "older-dave")):
        store.begin_deployment(
            env="staging", kind="deploy", status="succeeded", from_version=None, to_version=1,
            actor=actor, reason="long ago", source="cli", requested_at=now - days * DAY,
            finished_at=now - days * DAY,
        )  # fmt: skip
        store.record_event("health-failed", "scores fell", env="staging", at=now - days * DAY)
    store.add_document_version("pricing", b"a\n", source="x", diff="", added=1, removed=0,
                               at=now - 10 * DAY)  # fmt: skip
    store.add_document_version("pricing", b"a\nb\nc\n", source="x", diff="", added=2, removed=0,
                               at=now - DAY)  # fmt: skip

    week_digest = json.loads(report(ws, "--json"))
    staging = week_digest["envs"][0]
    assert [c["actor"] for c in staging["changes"]] == ["tester"]
    assert staging["incidents"] == []
    assert week_digest["documents"] == [
        {"name": "pricing", "versions": [2], "added": 2, "removed": 0, "last_at": now - DAY}
    ]
    since = time.strftime("%Y-%m-%d", time.localtime(now - 20 * DAY))
    month = json.loads(report(ws, "--since", since, "--json"))["envs"][0]
    assert [c["actor"] for c in month["changes"]] == ["old-carol", "tester"]
    assert [i["kind"] for i in month["incidents"]] == ["health-failed"]
    markdown = report(ws, "--since", "20d", "--format", "markdown")
    assert "| pricing | v2 | +2 -0 |" in markdown  # v1, the first reading, is not a change
    assert "2 changes by 2 people, 1 incident" in markdown


def test_env_filter_and_unknown_env(workspace: Factory) -> None:
    ws = workspace(**FAST)
    add_env(ws, "production")
    ws.healthy()
    assert ws.run("deploy", "staging").returncode == 0

    both = json.loads(report(ws, "--json"))
    assert [e["env"] for e in both["envs"]] == ["staging", "production"]
    only = json.loads(report(ws, "production", "--json"))
    assert [e["env"] for e in only["envs"]] == ["production"]
    production = only["envs"][0]
    assert (production["changes"], production["budget"], production["live_version"]) == (
        [], 60.0, None,
    )  # fmt: skip
    text = report(ws, "production")
    assert "production: no changes" in text and "staging" not in text
    assert "never drilled" not in text  # protected: drills are not expected there

    unknown = ws.run("report", "prod")
    assert unknown.returncode == 2
    assert "no environment named 'prod'" in unknown.stderr
    assert "known environments: production, staging" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_an_empty_period_says_so_plainly(workspace: Factory) -> None:
    ws = workspace(**FAST)
    text = report(ws)
    assert "Nothing happened from " in text
    assert "no changes, no incidents, no rollbacks, no drills" in text
    assert "\nstaging: no changes, never drilled\n" in text  # never deployed: not overdue yet
    assert "live now nothing, last known good nothing" in text
    assert json.loads(report(ws, "--json"))["quiet"] is True
    cells = parse_html(report(ws, "--format", "html"))
    assert cells.figures("staging")["Changes"] == "0"
    assert "Nothing happened" in report(ws, "--format", "markdown")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday' is neither a duration nor a date"),
        (["--since", "2999-01-01"], "--since '2999-01-01' is in the future"),
        (["--send"], "no [[notify.route]]"),
        (["--format", "pdf"], "Invalid value for '--format'"),
    ],
)
def test_bad_input_is_a_clear_error(workspace: Factory, args: list[str], message: str) -> None:
    ws = workspace(**FAST)
    result = ws.run("report", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    if args == ["--send"]:
        assert 'events = ["digest"]' in result.stderr  # the hint says how to add one


def test_output_file_and_a_route_without_digests(workspace: Factory) -> None:
    ws = workspace(**FAST)
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(
            '\n[[notify.route]]\nto = "json://127.0.0.1:9/x"\nevents = ["drift-detected"]\n'
        )
    out = ws.base / "digest.html"
    result = ws.run("report", "--format", "html", "--output", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text().startswith("<!DOCTYPE html>")
    refused = ws.run("report", "--send")
    assert refused.returncode == 2 and "sends 'digest' events" in refused.stderr


def test_on_postgresql(workspace: Factory, pg_url: str) -> None:
    ws = workspace(store=pg_url, **FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging", env={"LASTGOOD_AUTHOR": "alice"}).returncode == 0
    ws.broken()
    assert ws.run("deploy", "staging", env={"LASTGOOD_AUTHOR": "bob"}).returncode == 3
    timeline = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
    restore = next(d["time_to_active"] for d in timeline if d["kind"] == "auto-rollback")
    staging = json.loads(report(ws, "--json"))["envs"][0]
    assert staging["people"] == {"alice": 1, "bob": 1}
    assert len(staging["incidents"]) == 1 and staging["automatic_rollbacks"] == 1
    assert staging["restore_p50"] == pytest.approx(restore) == staging["restore_max"]
    assert "rolled back automatically in" in report(ws)


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def notifier_ready() -> bool:
    """The notifier package exists (not merely its folder, a namespace package while it is
    being written)."""
    spec = importlib.util.find_spec("lastgood.notify")
    return spec is not None and spec.origin not in (None, "namespace")


@pytest.mark.skipif(
    not notifier_ready(), reason="the notifier (lastgood.notify) is being built concurrently"
)
def test_send_delivers_the_markdown_digest(
    workspace: Factory, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = receiver
    ws = workspace(**FAST)
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(
            f'\n[[notify.route]]\nname = "team-chat"\nto = "json://127.0.0.1:{port}/hook"\n'
            'events = ["digest"]\nformat = "markdown"\n'
        )
    ws.healthy()
    assert ws.run("deploy", "staging", "-m", "ship it").returncode == 0
    result = ws.run("report", "--send")
    assert result.returncode == 0, result.stderr
    assert "sent 'lastgood digest: " in result.stderr and "to team-chat" in result.stderr
    assert "staging: 1 change by 1 person" in result.stdout
    assert len(received) == 1
    body = json.dumps(received[0])
    assert "lastgood digest" in body and "### staging" in body
    assert "1 change by 1 person" in body


def test_a_documents_first_reading_is_not_news(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy()
    store = ws.project().store
    store.add_document_version("pricing", b"a\n", source="x", diff="", added=1, removed=0)
    digest = json.loads(report(ws, "--json"))
    assert digest["documents"] == []
    assert "pricing" not in report(ws)


def test_status_report_and_history_show_the_same_restore_figures(workspace: Factory) -> None:
    """One definition per figure: restored in = trigger → active, verified in = trigger →
    verified; every view labels both and shows the same numbers for the same rollbacks."""
    ws = workspace(**FAST)
    for marker in ("one", "two", "three"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    for _ in range(2):
        assert ws.run("rollback", "staging").returncode == 0
    records = json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
    rollbacks = [d for d in records if d["kind"] in ROLLBACKS]
    restored = [d["time_to_active"] for d in rollbacks]
    verified = [d["time_to_verified"] for d in rollbacks]
    assert all(a < v for a, v in zip(restored, verified, strict=True))

    [status] = json.loads(ws.run("status", "staging", "--json").stdout)
    digest = json.loads(report(ws, "--json"))["envs"][0]
    for view in (status, digest):
        assert view["restore_max"] == pytest.approx(max(restored), abs=1e-9)
        assert view["restore_p50"] == pytest.approx(statistics.median(restored), abs=1e-9)
        assert view["verified_max"] == pytest.approx(max(verified), abs=1e-9)
        assert view["verified_p50"] == pytest.approx(statistics.median(verified), abs=1e-9)
    text = ws.run("status", "staging").stdout
    assert "restored in p50" in text and "verified in p50" in text
    table = ws.run("history", "staging").stdout
    assert "restored in" in table and "verified in" in table


def test_status_and_report_leave_drills_out_of_the_restore_figures_alike(
    workspace: Factory,
) -> None:
    ws = workspace(**FAST)
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write('\n[env.staging.drill]\nfiles = { "health.txt" = "drills/broken.txt" }\n')
        config.write('\n[versioning]\nexclude = ["drills/**"]\n')
    ws.write("drills/broken.txt", "fail\n")
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    assert ws.run("rollback", "staging").returncode == 0  # the one restore that counts
    assert ws.run("drill", "staging").returncode == 0  # its own rollback does not
    [status] = json.loads(ws.run("status", "staging", "--json").stdout)
    digest = json.loads(report(ws, "--json"))["envs"][0]
    assert len(status["restores"]) == 1 and len(digest["rollbacks"]) == 1
    assert status["restore_p50"] == pytest.approx(digest["restore_p50"], abs=1e-9)
    assert status["verified_max"] == pytest.approx(digest["verified_max"], abs=1e-9)


def test_status_and_report_count_an_interrupted_rollback_alike(workspace: Factory) -> None:
    ws = workspace(**FAST)
    for marker in ("one", "two", "three"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    killed = ws.run("rollback", "staging", env={"LASTGOOD_FAILPOINT": "rollback.after-activate"})
    assert killed.returncode != 0
    assert ws.run("rollback", "staging").returncode == 0
    [status] = json.loads(ws.run("status", "staging", "--json").stdout)
    digest = json.loads(report(ws, "--json"))["envs"][0]
    assert len(digest["rollbacks"]) == 2 and len(status["restores"]) == 2
    for figure in ("restore_p50", "restore_max", "verified_p50", "verified_max"):
        assert status[figure] == pytest.approx(digest[figure], abs=1e-9), figure
    assert not status["within_budget"] and digest["over_budget"] == 1  # the miss, in both
