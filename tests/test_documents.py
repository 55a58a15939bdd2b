"""Document change tracking: real files and folders, a real HTTP server, the real CLI.

Changes are judged on normalized content, so the tests make edits that change only bytes
(line endings, spacing, key order, markup, a touched mtime) and check that nothing is stored or
alerted, next to edits that change what a document says and must be.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lastgood.documents import DocumentChange, track, track_all
from lastgood.documents.diff import diff
from lastgood.documents.normalize import normalize, visible_text
from lastgood.documents.tracker import truncated_diff
from lastgood.errors import ConfigError, DocumentError, NotFoundError
from lastgood.events import Event, EventKind
from lastgood.project import Project
from tests.conftest import Workspace
from tests.http_fakes import POLL

DAY = 86400.0


# ---- fixtures ------------------------------------------------------------------------------


class Site:
    """A real HTTP server on 127.0.0.1 whose pages the test changes as it goes."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, bytes, str]] = {}
        self.release = threading.Event()  # set at teardown so slow handlers end at once
        self.slow: set[str] = set()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path in site.slow:
                    site.release.wait(10)
                status, body, kind = site.pages.get(self.path, (404, b"not found", "text/plain"))
                if self.path.startswith("/moved"):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/moved"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def serve(self, path: str, body: str, *, status: int = 200, kind: str = "text/plain") -> None:
        self.pages[path] = (status, body.encode(), kind)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def document(name: str, **options: Any) -> str:
    """One ``[[watch.document]]`` table."""
    lines = [f"name = {json.dumps(name)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "[[watch.document]]\n" + "\n".join(lines) + "\n"


Tracked = Callable[..., tuple[Workspace, Project]]


@pytest.fixture
def tracked(workspace: Callable[..., Workspace]) -> Tracked:
    """Factory: a workspace whose lastgood.toml tracks the given documents, and its project."""

    def make(*documents: str, store: str | None = None) -> tuple[Workspace, Project]:
        ws = workspace(store=store)
        (ws.root / "lastgood.toml").write_text("\n".join(documents))
        return ws, ws.project()

    return make


def spec(project: Project, name: str) -> Any:
    return next(d for d in project.config.watch.documents if d.name == name)


def changed_events(project: Project) -> list[dict[str, Any]]:
    return [e.to_json() for e in project.store.events(kind="document-changed", limit=None)]


def collect(project: Project) -> list[Event]:
    seen: list[Event] = []
    project.events.subscribe(seen.append)
    return seen


# ---- files ---------------------------------------------------------------------------------


def test_whitespace_line_endings_and_a_touched_file_are_no_change(tracked: Tracked) -> None:
    ws, project = tracked(document("pricing sheet", path="shared/pricing.txt"))
    ws.write("shared/pricing.txt", "plan,price\nbasic,10\npro,30\n")
    pricing = spec(project, "pricing sheet")
    seen = collect(project)

    first = track(project, pricing)
    assert first is not None and first.baseline and first.version == 1
    assert first.status == "baseline" and first.previous is None

    path = ws.root / "shared/pricing.txt"
    path.write_bytes(b"plan,price  \r\nbasic,10\t\r\npro,30\r\n\r\n\r\n")
    assert track(project, pricing) is None
    future = time.time() + 3600
    os.utime(path, (future, future))
    assert track(project, pricing) is None

    assert [v.version for v in project.store.document_versions("pricing sheet")] == [1]
    assert changed_events(project) == [] and seen == []  # the baseline alerts nobody


def test_a_real_edit_is_version_2_with_its_diff_and_one_event(tracked: Tracked) -> None:
    ws, project = tracked(document("pricing sheet", path="pricing.txt"))
    ws.write("pricing.txt", "plan,price\nbasic,10\npro,30\n")
    pricing = spec(project, "pricing sheet")
    track(project, pricing)
    seen = collect(project)

    ws.write("pricing.txt", "plan,price\nbasic,12\npro,30\nteam,80\n")
    change = track(project, pricing)

    assert isinstance(change, DocumentChange) and not change.baseline
    assert (change.version, change.previous, change.added, change.removed) == (2, 1, 2, 1)
    assert "-basic,10\n+basic,12\n" in change.diff and "+team,80\n" in change.diff
    assert change.diff.startswith("--- pricing sheet v1\n+++ pricing sheet v2\n")
    stored = project.store.document_versions("pricing sheet")
    assert [(v.version, v.added, v.removed) for v in stored] == [(2, 2, 1), (1, 0, 0)]
    assert project.store.document_content("pricing sheet", 2) == b"plan,price\nbasic,12\n" \
        b"pro,30\nteam,80\n"  # fmt: skip

    [event] = seen
    assert event.kind is EventKind.DOCUMENT_CHANGED
    assert event.key == "document-changed:pricing sheet:2"
    assert event.message == "document 'pricing sheet' changed: +2 -1 lines"
    [ledger] = changed_events(project)
    assert ledger["message"] == event.message
    data = ledger["data"]
    assert {k: data[k] for k in ("name", "source", "version", "previous", "added", "removed")} == {
        "name": "pricing sheet", "source": "pricing.txt", "version": 2, "previous": 1,
        "added": 2, "removed": 1,
    }  # fmt: skip
    assert data["diff"] == change.diff and data["key"] == event.key

    assert track(project, pricing) is None  # seen once, alerted once
    assert len(changed_events(project)) == 1


def test_a_missing_file_is_a_document_error_naming_it(tracked: Tracked) -> None:
    _, project = tracked(document("policy", path="legal/policy.md"))
    with pytest.raises(DocumentError) as caught:
        track(project, spec(project, "policy"))
    message = str(caught.value)
    assert "document 'policy' (legal/policy.md)" in message and "no such file" in message
    assert caught.value.hint and "[[watch.document]]" in caught.value.hint
    assert caught.value.exit_code == 1
    assert project.store.document_versions("policy") == []


def test_bytes_mode_sees_line_endings_and_says_so_in_the_diff(tracked: Tracked) -> None:
    ws, project = tracked(document("raw", path="raw.txt", normalize="bytes"))
    ws.write("raw.txt", "a\nb\n")
    raw = spec(project, "raw")
    track(project, raw)
    (ws.root / "raw.txt").write_bytes(b"a\r\nb")
    change = track(project, raw)
    assert change is not None and change.diff.strip()
    assert "-a\n-b\n+a␍\n+b\n\\ No newline at end of file\n" in change.diff


def test_binary_content_gets_a_one_line_diff(tracked: Tracked) -> None:
    ws, project = tracked(document("logo", path="logo.png", normalize="bytes"))
    (ws.root / "logo.png").write_bytes(b"\x89PNG\0\0" + bytes(range(256)))
    logo = spec(project, "logo")
    track(project, logo)
    (ws.root / "logo.png").write_bytes(b"\x89PNG\0\0" + bytes(range(200)))
    seen = collect(project)
    change = track(project, logo)
    assert change is not None and change.binary
    assert change.diff == "binary content changed (262 → 206 bytes)"
    assert seen[0].message == "document 'logo' changed: binary content changed (262 → 206 bytes)"


# ---- folders -------------------------------------------------------------------------------


def test_a_folder_gaining_losing_editing_and_renaming_files(tracked: Tracked) -> None:
    ws, project = tracked(document("policies", path="policies"))
    ws.write("policies/refunds.md", "Refunds within 30 days.\n")
    ws.write("policies/privacy/data.md", "We keep data for 1 year.\n")
    ws.write("policies/.git/HEAD", "ref: refs/heads/main\n")
    policies = spec(project, "policies")
    baseline = track(project, policies)
    assert baseline is not None and baseline.baseline
    assert project.store.document_content("policies", 1) == (
        b"=== privacy/data.md ===\nWe keep data for 1 year.\n"
        b"=== refunds.md ===\nRefunds within 30 days.\n"
    )

    ws.write("policies/.git/HEAD", "ref: refs/heads/other\n")  # never content
    assert track(project, policies) is None

    ws.write("policies/shipping.md", "Ships in 2 days.\n")
    gained = track(project, policies)
    assert gained is not None and gained.added == 2 and gained.removed == 0
    assert "+=== shipping.md ===\n+Ships in 2 days.\n" in gained.diff

    (ws.root / "policies/privacy/data.md").unlink()
    lost = track(project, policies)
    assert lost is not None and (lost.added, lost.removed) == (0, 2)
    assert "-=== privacy/data.md ===\n-We keep data for 1 year.\n" in lost.diff

    ws.write("policies/refunds.md", "Refunds within 14 days.\n")
    edited = track(project, policies)
    assert edited is not None and "+Refunds within 14 days.\n" in edited.diff

    (ws.root / "policies/shipping.md").rename(ws.root / "policies/delivery.md")
    renamed = track(project, policies)
    assert renamed is not None
    assert "+=== delivery.md ===" in renamed.diff and "-=== shipping.md ===" in renamed.diff
    assert [v.version for v in project.store.document_versions("policies")] == [5, 4, 3, 2, 1]


def test_a_folder_shows_binary_files_by_size_and_hash(tracked: Tracked) -> None:
    ws, project = tracked(document("assets", path="assets"))
    (ws.root / "assets").mkdir()
    (ws.root / "assets/logo.png").write_bytes(b"\0\1\2" * 10)
    folder = spec(project, "assets")
    track(project, folder)
    assert b"=== logo.png ===\n(binary file, 30 bytes, sha256 " in project.store.document_content(
        "assets", 1
    )
    (ws.root / "assets/logo.png").write_bytes(b"\0\1\3" * 10)
    change = track(project, folder)
    assert change is not None and (change.added, change.removed) == (1, 1)


# ---- json and html -------------------------------------------------------------------------


def test_json_key_order_and_spacing_are_no_change_a_value_is(tracked: Tracked) -> None:
    ws, project = tracked(document("limits", path="limits.json", normalize="json"))
    ws.write("limits.json", '{"b": 2, "a": {"y": [1, 2], "x": "é"}}')
    limits = spec(project, "limits")
    track(project, limits)
    assert project.store.document_content("limits", 1).decode() == textwrap.dedent(
        """\
        {
          "a": {
            "x": "é",
            "y": [
              1,
              2
            ]
          },
          "b": 2
        }
        """
    )
    ws.write("limits.json", '{\n  "a": {"x": "\\u00e9", "y": [1,2]},\n  "b": 2\n}\n')
    assert track(project, limits) is None

    ws.write("limits.json", '{"a": {"x": "é", "y": [1, 3]}, "b": 2}')
    change = track(project, limits)
    assert change is not None and (change.added, change.removed) == (1, 1)
    assert "-      2\n+      3\n" in change.diff


def test_invalid_json_is_an_error_naming_the_document(tracked: Tracked) -> None:
    ws, project = tracked(document("limits", path="limits.json", normalize="json"))
    ws.write("limits.json", '{"a": 1,}')
    with pytest.raises(DocumentError) as caught:
        track(project, spec(project, "limits"))
    message = caught.value.message
    assert message.startswith("document 'limits' (limits.json) is not valid JSON")
    assert "line 1 column 9" in message and caught.value.hint


def test_html_markup_and_scripts_are_no_change_text_is(tracked: Tracked) -> None:
    page = """<!doctype html><html><head><title>Pricing</title><style>p {{color: red}}</style>
        <script>var built = "{build}";</script></head>
        <body><h1>Pricing</h1><p>Basic costs <b>10 EUR</b>&nbsp;a month.</p>
        <ul><li>Pro: 30 EUR</li><li>Team: {team} EUR</li></ul></body></html>"""
    ws, project = tracked(document("pricing page", path="pricing.html", normalize="html"))
    ws.write("pricing.html", page.format(build="1", team="80"))
    pricing = spec(project, "pricing page")
    track(project, pricing)
    assert project.store.document_content("pricing page", 1).decode() == (
        "Pricing\nBasic costs 10 EUR a month.\nPro: 30 EUR\nTeam: 80 EUR\n"
    )

    restyled = page.format(build="2", team="80").replace("<b>", '<strong class="x">')
    ws.write("pricing.html", restyled.replace("</b>", "</strong>").replace("<p>", "<p\n  id=a>"))
    assert track(project, pricing) is None

    ws.write("pricing.html", page.format(build="2", team="90"))
    change = track(project, pricing)
    assert change is not None and "-Team: 80 EUR\n+Team: 90 EUR\n" in change.diff


# ---- retention -----------------------------------------------------------------------------


def test_retention_keeps_the_newest_versions(tracked: Tracked) -> None:
    ws, project = tracked(document("notes", path="notes.txt", keep=2))
    notes = spec(project, "notes")
    for number in range(1, 5):
        ws.write("notes.txt", f"edition {number}\n")
        track(project, notes)
    assert [v.version for v in project.store.document_versions("notes")] == [4, 3]
    with pytest.raises(NotFoundError):
        project.store.document_content("notes", 1)


def test_retention_drops_old_versions_but_never_the_newest(tracked: Tracked) -> None:
    ws, project = tracked(document("notes", path="notes.txt", max_age="7d"))
    notes = spec(project, "notes")
    start = time.time() - 30 * DAY
    for number, day in enumerate((0, 1, 20), 1):
        ws.write("notes.txt", f"edition {number}\n")
        track(project, notes, now=start + day * DAY)
    assert [v.version for v in project.store.document_versions("notes")] == [3]

    ws.write("notes.txt", "edition 4\n")
    change = track(project, notes, now=start + 25 * DAY)
    assert change is not None and change.previous == 3 and change.pruned == 0
    assert [v.version for v in project.store.document_versions("notes")] == [4, 3]


# ---- URLs ----------------------------------------------------------------------------------


def test_a_url_is_tracked_through_redirects(tracked: Tracked, site: Site) -> None:
    site.serve("/openapi.json", '{"paths": {"/leads": {}}, "info": {"version": "1"}}')
    _, project = tracked(
        document("partner API", url=site.url("/moved/openapi.json"), normalize="json")
    )
    api = spec(project, "partner API")
    assert track(project, api) is not None
    site.serve("/openapi.json", '{"info": {"version": "1"}, "paths": {"/leads": {}}}')
    assert track(project, api) is None
    site.serve("/openapi.json", '{"info": {"version": "2"}, "paths": {"/leads": {}}}')
    change = track(project, api)
    assert change is not None and change.source == site.url("/moved/openapi.json")
    assert '-    "version": "1"\n+    "version": "2"\n' in change.diff


def test_an_error_status_is_a_document_error_never_a_version(tracked: Tracked, site: Site) -> None:
    site.serve("/status", "all good\n")
    _, project = tracked(document("status page", url=site.url("/status")))
    status = spec(project, "status page")
    track(project, status)
    site.serve("/status", "<h1>Internal Server Error</h1>", status=500)
    with pytest.raises(DocumentError) as caught:
        track(project, status)
    assert str(caught.value).startswith(
        f"document 'status page' ({site.url('/status')}): GET answered 500 Internal Server Error"
    )
    assert [v.version for v in project.store.document_versions("status page")] == [1]
    assert changed_events(project) == []


def test_a_slow_url_times_out_and_does_not_stop_the_others(tracked: Tracked, site: Site) -> None:
    site.serve("/slow", "late\n")
    site.slow.add("/slow")
    site.serve("/broken", "oops", status=503)
    ws, project = tracked(
        document("slow page", url=site.url("/slow"), timeout="0.3s"),
        document("broken page", url=site.url("/broken")),
        document("pricing sheet", path="pricing.txt"),
    )
    ws.write("pricing.txt", "basic,10\n")
    started = time.monotonic()
    results = track_all(project)
    assert time.monotonic() - started < 5
    assert [(r.name, r.status) for r in results] == [
        ("slow page", "error"),
        ("broken page", "error"),
        ("pricing sheet", "baseline"),
    ]
    slow, broken, _ = results
    assert slow.error is not None and "no answer within 0.3 s" in slow.error.message
    assert slow.error.message.startswith(f"document 'slow page' ({site.url('/slow')})")
    assert broken.error is not None and "GET answered 503" in broken.error.message
    assert [v.version for v in project.store.document_versions("pricing sheet")] == [1]
    assert results[0].to_json()["error"]["hint"]


def test_track_all_selects_by_name_and_refuses_unknown_names(tracked: Tracked) -> None:
    ws, project = tracked(document("a", path="a.txt"), document("b", path="b.txt"))
    ws.write("a.txt", "a\n")
    assert [r.name for r in track_all(project, ["a"])] == ["a"]
    with pytest.raises(NotFoundError, match="no document named 'c'; known documents: 'a', 'b'"):
        track_all(project, ["c"])


def test_no_documents_configured_is_a_config_error_with_an_example(tracked: Tracked) -> None:
    _, project = tracked("")
    with pytest.raises(ConfigError) as caught:
        track_all(project)
    assert caught.value.hint is not None and "[[watch.document]]" in caught.value.hint


# ---- pure parts ----------------------------------------------------------------------------


def test_text_normalization() -> None:
    assert normalize(b"\xef\xbb\xbfa \r\nb\rc\t\n\n  \n", "text") == b"a\nb\nc\n"
    assert normalize(b"\n\nx", "text") == b"\n\nx\n"  # leading blank lines are content
    assert normalize(b"", "text") == b"" and normalize(b" \n\n", "text") == b""
    assert normalize(b"caf\xe9\n", "text") == "caf\ufffd\n".encode()
    assert normalize(b"a \r\n", "bytes") == b"a \r\n"


def test_visible_text_keeps_blocks_and_drops_hidden_elements() -> None:
    html = (
        "<head><meta charset=utf-8><title>T</title></head><body><div>a<br>b</div>"
        "<noscript>enable js</noscript><table><tr><td>1</td><td>2</td></tr></table>"
        "<p>x &amp; y</p><script>if (a < b) {}</script>tail</body>"
    )
    assert visible_text(html) == "a\nb\n1\n2\nx & y\ntail"


def test_the_diff_counts_lines_even_when_they_look_like_headers() -> None:
    found = diff(b"+++ a\n", b"--- b\n+++ a\nnew\n", old_label="x v1", new_label="x v2")
    assert (found.added, found.removed) == (2, 0)
    assert diff(b"same\n", b"same\n", old_label="a", new_label="b").text == ""


def test_a_long_diff_is_truncated_in_the_event_with_a_note() -> None:
    text = "".join(f"+line {n}\n" for n in range(2000))
    short = truncated_diff(text, "pricing sheet", 7, limit=100)
    kept, note = short.rsplit("… ", 1)
    assert len(kept) <= 100 and kept.endswith("\n")
    assert note.startswith("diff truncated:")
    assert "lastgood documents show 'pricing sheet' 7 --diff" in note
    assert truncated_diff("short\n", "x", 1) == "short\n"


# ---- the CLI -------------------------------------------------------------------------------


def test_cli_check_log_show_and_exit_codes(tracked: Tracked, site: Site) -> None:
    site.serve("/terms", "<p>Terms v1</p>", kind="text/html")
    ws, _ = tracked(
        document("pricing sheet", path="pricing.txt"),
        document("terms", url=site.url("/terms"), normalize="html"),
    )
    ws.write("pricing.txt", "basic,10\n")

    first = ws.run("documents", "check")
    assert first.returncode == 0, first.stderr
    assert "baseline  pricing sheet  v1" in first.stdout and "baseline  terms" in first.stdout

    ws.write("pricing.txt", "basic,12\n")
    site.serve("/terms", "gone", status=500)
    second = ws.run("documents", "check")
    assert second.returncode == 1
    lines = second.stdout.splitlines()
    assert any(line.split()[:4] == ["changed", "pricing", "sheet", "v2"] for line in lines)
    assert "+1 -1 lines" in second.stdout
    assert "error" in second.stdout and "GET answered 500" in second.stdout
    assert "1 of 2 documents could not be read" in second.stderr

    third = ws.run("documents", "check", "pricing sheet", "--json")
    assert third.returncode == 0
    assert json.loads(third.stdout) == [
        {"name": "pricing sheet", "source": "pricing.txt", "status": "unchanged",
         "change": None, "error": None}
    ]  # fmt: skip

    log = ws.run("documents", "log", "pricing sheet")
    assert log.returncode == 0
    assert [line.split()[0] for line in log.stdout.splitlines()] == ["version", "v2", "v1"]
    assert "+1 -1" in log.stdout and "baseline" in log.stdout
    log_json = json.loads(ws.run("documents", "log", "pricing sheet", "--json").stdout)
    assert [v["version"] for v in log_json] == [2, 1]

    assert ws.run("documents", "show", "pricing sheet").stdout == "basic,12\n"
    assert ws.run("documents", "show", "pricing sheet", "v1").stdout == "basic,10\n"
    shown = ws.run("documents", "show", "pricing sheet", "2", "--diff")
    assert "-basic,10\n+basic,12\n" in shown.stdout
    as_json = json.loads(ws.run("documents", "show", "terms", "--json").stdout)
    assert as_json["content"] == "Terms v1\n" and as_json["version"]["version"] == 1

    unknown = ws.run("documents", "log", "prices")
    assert unknown.returncode == 2
    assert "no document named 'prices'; known documents: 'pricing sheet', 'terms'" in (
        unknown.stderr
    )
    missing = ws.run("documents", "show", "pricing sheet", "v9")
    assert missing.returncode == 2 and "has no version v9 (kept: v1, v2)" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr


def test_cli_without_documents_explains_how_to_add_one(tracked: Tracked) -> None:
    ws, _ = tracked("")
    result = ws.run("documents", "check")
    assert result.returncode == 2
    assert "no documents are tracked" in result.stderr
    assert '[[watch.document]]\n      name = "pricing sheet"' in result.stderr


# ---- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_tracking_on_postgresql(tracked: Tracked, pg_url: str) -> None:
    ws, project = tracked(document("pricing sheet", path="pricing.txt", keep=2), store=pg_url)
    pricing = spec(project, "pricing sheet")
    for price in (10, 11, 12):
        ws.write("pricing.txt", f"basic,{price}\n")
        track(project, pricing)
    ws.write("pricing.txt", "basic,12  \r\n")
    assert track(project, pricing) is None
    assert [v.version for v in project.store.document_versions("pricing sheet")] == [3, 2]
    [latest, _] = changed_events(project)
    assert latest["data"]["key"] == "document-changed:pricing sheet:3"

    shown = ws.run("documents", "show", "pricing sheet", "--diff")
    assert shown.returncode == 0 and "-basic,11\n+basic,12\n" in shown.stdout
