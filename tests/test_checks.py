"""The built-in checks against real things: HTTP servers, processes, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lastgood.checks import CheckContext, CheckResult, build_check, run_check
from lastgood.checks.command import CommandCheck
from lastgood.checks.http import HttpCheck
from lastgood.checks.sql import SqlCheck, resolve_url
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError

PYTHON = shlex.quote(sys.executable)
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def spec(type_name: str, timeout: float = 5.0, **options: Any) -> CheckSpec:
    """A check as the config loader would hand it over."""
    return CheckSpec(name=f"{type_name}-check", type=type_name, timeout=timeout, options=options)


def run(type_name: str, context: CheckContext, timeout: float = 5.0, **options: Any) -> CheckResult:
    """Build the check through the registry and run it the way deploys do."""
    return run_check(build_check(spec(type_name, timeout, **options)), context)


@pytest.fixture
def context(tmp_path: Path) -> CheckContext:
    root = tmp_path / "workspace"
    root.mkdir()
    return CheckContext(env="staging", version=7, path=tmp_path / "live", root=root)


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What the test server answers on one path."""

    status: int = 200
    body: str | Callable[[BaseHTTPRequestHandler], str] = "ok"
    delay: float = 0.0
    content_type: str = "text/plain"


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the hang tests) breaks the pipe; that is expected here."""


def _handler(routes: dict[str, Reply], release: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            self._reply()

        def _reply(self) -> None:
            reply = routes.get(self.path, Reply(404, "not found"))
            if reply.delay:
                release.wait(reply.delay)
            body = reply.body(self) if callable(reply.body) else reply.body
            data = body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Reply]], str]]:
    """Start real HTTP servers on 127.0.0.1; returns their base URL. Sleepers are released."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
    release = threading.Event()

    def start(routes: dict[str, Reply]) -> str:
        server = QuietServer(("127.0.0.1", 0), _handler(routes, release))
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    release.set()
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _json(document: Any) -> Reply:
    return Reply(body=json.dumps(document), content_type="application/json")


def test_http_passes_on_any_2xx(serve: Any, context: CheckContext) -> None:
    base = serve({"/health": Reply(204, "")})
    result = run("http", context, url=f"{base}/health")
    assert result.ok, result.detail
    assert result.detail.startswith(f"GET {base}/health → 204 in ")
    assert result.data["status"] == 204


def test_http_fails_on_503_saying_what_was_expected(serve: Any, context: CheckContext) -> None:
    base = serve({"/health": Reply(503, "down")})
    result = run("http", context, url=f"{base}/health")
    assert not result.ok
    assert result.detail == f"GET {base}/health → 503 (expected 2xx)"


def test_http_status_option_accepts_a_code_or_a_list(serve: Any, context: CheckContext) -> None:
    base = serve({"/gone": Reply(410), "/missing": Reply(404)})
    assert run("http", context, url=f"{base}/gone", status=410).ok
    result = run("http", context, url=f"{base}/missing", status=[200, 204])
    assert not result.ok
    assert result.detail == f"GET {base}/missing → 404 (expected 200 or 204)"


def test_http_contains(serve: Any, context: CheckContext) -> None:
    base = serve({"/health": Reply(body="status: degraded")})
    assert run("http", context, url=f"{base}/health", contains="status:").ok
    result = run("http", context, url=f"{base}/health", contains="healthy")
    assert not result.ok
    assert "body does not contain 'healthy' (body: status: degraded)" in result.detail


def test_http_json_values_by_dotted_path(serve: Any, context: CheckContext) -> None:
    document = {"status": "ok", "data": {"count": 3, "items": [{"name": "a"}]}, "on": True}
    base = serve({"/stats": _json(document)})
    url = f"{base}/stats"
    expected = {"status": "ok", "data.count": 3, "data.items.0.name": "a", "on": True}
    assert run("http", context, url=url, json=expected).ok
    result = run(
        "http", context, url=url, json={"status": "fine", "data.count": "3", "on": 1, "nope": 1}
    )
    assert not result.ok
    assert f"GET {url} → 200: " in result.detail
    assert 'json status = "ok" (expected "fine")' in result.detail
    assert 'json data.count = 3 (expected "3")' in result.detail
    assert "json on = true (expected 1)" in result.detail
    assert "json nope is missing (expected 1)" in result.detail


def test_http_json_bounds(serve: Any, context: CheckContext) -> None:
    base = serve({"/stats": _json({"avg": 0.5, "label": "x"})})
    url = f"{base}/stats"
    assert run("http", context, url=url, json_min={"avg": 0.01}, json_max={"avg": 1}).ok
    result = run("http", context, url=url, json_min={"avg": 0.6, "label": 1})
    assert not result.ok
    assert "json avg = 0.5 (expected ≥ 0.6)" in result.detail
    assert 'json label = "x" is not a number (expected ≥ 1)' in result.detail
    result = run("http", context, url=url, json_max={"avg": 0.4})
    assert "json avg = 0.5 (expected ≤ 0.4)" in result.detail


def test_http_json_on_a_body_that_is_not_json(serve: Any, context: CheckContext) -> None:
    base = serve({"/stats": Reply(body="<html>oops</html>")})
    result = run("http", context, url=f"{base}/stats", json={"status": "ok"})
    assert not result.ok
    assert "body is not JSON (body: <html>oops</html>)" in result.detail


def test_http_max_latency(serve: Any, context: CheckContext) -> None:
    base = serve({"/slow": Reply(delay=0.3)})
    assert run("http", context, url=f"{base}/slow", max_latency="2s").ok
    result = run("http", context, url=f"{base}/slow", max_latency="100ms")
    assert not result.ok
    assert "(expected ≤ 100 ms)" in result.detail
    assert ": took " in result.detail


def test_http_method_and_headers_are_sent(serve: Any, context: CheckContext) -> None:
    echo = Reply(body=lambda request: f"{request.command} {request.headers.get('X-Token')}")
    base = serve({"/echo": echo})
    options = {"method": "post", "headers": {"X-Token": "s3"}, "contains": "POST s3"}
    result = run("http", context, url=f"{base}/echo", **options)
    assert result.ok, result.detail
    assert result.detail.startswith(f"POST {base}/echo → 200")


def test_http_hang_is_a_failure_within_the_timeout(serve: Any, context: CheckContext) -> None:
    base = serve({"/hang": Reply(delay=10)})
    started = time.monotonic()
    result = run("http", context, timeout=1, url=f"{base}/hang")
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.detail == f"GET {base}/hang → no answer within 1 s"


def test_http_connection_refused_is_a_failure(context: CheckContext) -> None:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("http", context, url=f"http://127.0.0.1:{port}/health")
    assert not result.ok
    assert result.detail.startswith(f"GET http://127.0.0.1:{port}/health → ConnectError")


# --- command ----------------------------------------------------------------------------------


def python(code: str) -> str:
    """A shell command line running ``code`` with this interpreter."""
    return f"{PYTHON} -c {shlex.quote(code)}"


def test_command_passes_on_exit_zero_and_shows_output(context: CheckContext) -> None:
    result = run("command", context, run=python("print('scored 12 leads')"))
    assert result.ok, result.detail
    assert result.detail.endswith("exited 0; output: scored 12 leads")
    assert result.data["exit"] == 0


def test_command_failure_shows_exit_code_and_stderr(context: CheckContext) -> None:
    code = "import sys; print('all scores are zero', file=sys.stderr); sys.exit(3)"
    result = run("command", context, run=python(code))
    assert not result.ok
    assert "exited 3 (expected 0); output: all scores are zero" in result.detail


def test_command_expected_exit_code(context: CheckContext) -> None:
    assert run("command", context, run=python("raise SystemExit(3)"), exit=3).ok
    result = run("command", context, run=python("pass"), exit=3)
    assert not result.ok
    assert "exited 0 (expected 3)" in result.detail


def test_command_list_runs_without_a_shell(context: CheckContext) -> None:
    argv = [sys.executable, "-c", "import sys; print(sys.argv[1])", "$HOME; exit 1"]
    result = run("command", context, run=argv)
    assert result.ok, result.detail
    assert result.detail.endswith("output: $HOME; exit 1")


def test_command_output_keeps_only_the_tail(context: CheckContext) -> None:
    result = run("command", context, run=python("print('x' * 5000 + 'END')"))
    output = result.detail.split("output: ", 1)[1]
    assert output.endswith("END")
    assert output.startswith("…")
    assert len(output) <= 301


def test_command_gets_lastgood_and_process_environment(
    context: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_SETTING", "kept")
    code = (
        "import os; print(*[os.environ[k] for k in "
        "('LASTGOOD_ENV', 'LASTGOOD_VERSION', 'LASTGOOD_PATH', 'TEAM_SETTING')])"
    )
    result = run("command", context, run=python(code))
    assert result.ok, result.detail
    assert result.detail.endswith(f"output: staging v7 {context.path} kept")


def test_command_cwd_is_relative_to_the_workspace(
    context: CheckContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (context.root / "checks").mkdir()
    monkeypatch.chdir(tmp_path)
    code = "import os; print(os.getcwd())"
    assert run("command", context, run=python(code)).detail.endswith(f"output: {context.root}")
    result = run("command", context, run=python(code), cwd="checks")
    assert result.detail.endswith(f"output: {context.root / 'checks'}")


def test_command_that_cannot_start_is_a_failure(context: CheckContext) -> None:
    result = run("command", context, run=["no-such-program-lastgood"])
    assert not result.ok
    assert result.detail.startswith("cannot run `no-such-program-lastgood`")


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
def test_command_hang_kills_the_whole_process_group(context: CheckContext) -> None:
    sleeper = python(
        "import os, time; open('child.pid', 'w').write(str(os.getpid())); time.sleep(30)"
    )
    started = time.monotonic()
    result = run("command", context, timeout=1, run=f"echo started; {sleeper}; echo never")
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.detail.startswith("no answer within 1 s from `echo started;")
    assert result.detail.endswith("(killed); output: started")
    child = int((context.root / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child), "the shell's child survived the timeout"


def _wait_gone(pid: int) -> bool:
    """True once ``pid`` has ended (polls for at most two seconds)."""
    deadline = time.monotonic() + 2
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _running(pid)


@pytest.fixture
def background_pid(context: CheckContext) -> Iterator[Callable[[], int]]:
    """The pid a command wrote to ``bg.pid``; that process is killed after the test."""
    pid_file = context.root / "bg.pid"

    def read() -> int:
        return int(pid_file.read_text())

    yield read
    if pid_file.exists() and _running(read()):
        os.kill(read(), signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
@pytest.mark.parametrize(
    ("command", "ok", "ending"),
    [
        ("sleep 30 & echo $! > bg.pid; echo ok", True, "exited 0; output: ok"),
        (
            "sleep 30 & echo $! > bg.pid; echo broken; exit 3",
            False,
            "exited 3 (expected 0); output: broken",
        ),
    ],
    ids=["passes", "fails"],
)
def test_command_is_judged_when_it_exits_though_a_daemon_holds_its_output(
    context: CheckContext, background_pid: Callable[[], int], command: str, ok: bool, ending: str
) -> None:
    result = run("command", context, timeout=10, run=command)
    assert result.ok is ok, result.detail
    assert result.detail == f"`{command}` {ending}"
    assert _running(background_pid()), "a daemon started by a finished check is left running"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
def test_command_timeout_asks_the_group_to_stop_before_killing_it(context: CheckContext) -> None:
    command = "trap 'echo cleaning up; exit 1' TERM; sleep 30 & echo $! > bg.pid; wait"
    result = run("command", context, timeout=1, run=command)
    assert not result.ok
    assert result.detail.endswith("(killed); output: cleaning up")
    assert _wait_gone(int((context.root / "bg.pid").read_text())), "the background sleep survived"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
def test_command_timeout_kills_a_group_that_ignores_sigterm(context: CheckContext) -> None:
    sleeper = python("import os, time; open('bg.pid', 'w').write(str(os.getpid())); time.sleep(30)")
    result = run("command", context, timeout=1, run=f"trap '' TERM; echo started; {sleeper}")
    assert not result.ok
    assert result.detail.endswith("(killed); output: started")
    assert _wait_gone(int((context.root / "bg.pid").read_text())), "SIGKILL did not follow SIGTERM"


def test_command_works_in_a_process_with_many_open_files(context: CheckContext) -> None:
    """A busy server or watcher may hold more than 1024 descriptors; select() cannot see those."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if min(soft, hard) < 1200:
        pytest.skip(f"the open-files limit ({soft}) is too low to pass 1024 descriptors")
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        result = run("command", context, run=python("print('fine')"))
    finally:
        for descriptor in held:
            os.close(descriptor)
    assert result.ok, result.detail
    assert result.detail.endswith("exited 0; output: fine")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")
def test_a_preflight_that_starts_a_daemon_lets_the_deploy_go_on(workspace: Any) -> None:
    ws = workspace()
    (ws.root / "lastgood.toml").write_text(
        (ws.root / "lastgood.toml").read_text()
        + "\n[[env.staging.preflight]]\n"
        + 'name = "start-scorer"\ntype = "command"\ntimeout = "10s"\n'
        + "run = 'sleep 30 & echo $! > ../scorer.pid; echo scorer started'\n"
    )
    ws.healthy()
    try:
        result = ws.run("deploy", "staging", "-m", "with a daemon")
    finally:
        daemon = int((ws.base / "scorer.pid").read_text())
        if _running(daemon):
            os.kill(daemon, signal.SIGKILL)
    assert result.returncode == 0, result.stderr


# --- SQL --------------------------------------------------------------------------------------


def make_leads(path: Path, scores: list[float | None]) -> None:
    """A real SQLite file with a ``leads(score)`` table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute("create table leads (score real)")
        db.executemany("insert into leads values (?)", [(score,) for score in scores])
        db.commit()


@pytest.fixture
def leads_url(context: CheckContext) -> str:
    make_leads(context.root / "leads.db", [0.2, 0.4])
    return f"sqlite:///{context.root / 'leads.db'}"


def test_sql_min_max_equals(leads_url: str, context: CheckContext) -> None:
    average = "select avg(score) from leads"
    result = run("sql", context, url=leads_url, query=average, min=0.01, max=1)
    assert result.ok, result.detail
    assert result.detail == "query returned 0.30000000000000004 (expected ≥ 0.01 and ≤ 1)"
    result = run("sql", context, url=leads_url, query=average, min=0.5)
    assert not result.ok
    assert result.detail == "query returned 0.30000000000000004, expected ≥ 0.5"
    assert not run("sql", context, url=leads_url, query=average, max=0.1).ok
    assert run("sql", context, url=leads_url, query="select count(*) from leads", equals=2).ok
    result = run("sql", context, url=leads_url, query="select count(*) from leads", equals=3)
    assert result.detail == "query returned 2, expected = 3"


def test_sql_null_and_no_rows_are_failures(leads_url: str, context: CheckContext) -> None:
    null = "select avg(score) from leads where score > 5"
    result = run("sql", context, url=leads_url, query=null, min=0.01)
    assert not result.ok
    assert result.detail == "query returned NULL, expected ≥ 0.01"
    result = run("sql", context, url=leads_url, query="select score from leads where 0", min=0)
    assert not result.ok
    assert result.detail == "query returned no rows, expected ≥ 0"


def test_sql_text_where_a_number_is_expected(leads_url: str, context: CheckContext) -> None:
    result = run("sql", context, url=leads_url, query="select 'high'", min=1)
    assert not result.ok
    assert result.detail == "query returned 'high', expected ≥ 1"
    assert run("sql", context, url=leads_url, query="select 'ok'", equals="ok").ok


def test_sql_relative_sqlite_path_resolves_against_the_workspace(
    context: CheckContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_leads(tmp_path / "data" / "leads.db", [0.5])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = "sqlite:///../data/leads.db"
    result = run("sql", context, url=url, query="select avg(score) from leads", min=0.01)
    assert result.ok, result.detail
    resolved = resolve_url(url, context.root)
    assert resolved.database == str(tmp_path / "data" / "leads.db")


def test_sql_missing_sqlite_file_is_reported_not_created(context: CheckContext) -> None:
    result = run("sql", context, url="sqlite:///missing.db", query="select 1", min=1)
    assert not result.ok
    assert result.detail == f"SQLite database {context.root / 'missing.db'} does not exist"
    assert not (context.root / "missing.db").exists()


def test_sql_query_error_is_a_short_failure(leads_url: str, context: CheckContext) -> None:
    result = run("sql", context, url=leads_url, query="select avg(x) from nope", min=0)
    assert not result.ok
    assert result.detail == f"query failed on {leads_url}: no such table: nope"


def test_sql_bare_postgresql_url_uses_psycopg(tmp_path: Path) -> None:
    assert resolve_url(POSTGRES_URL, tmp_path).drivername == "postgresql+psycopg"
    kept = "postgresql+psycopg2://u@h/db"
    assert resolve_url(kept, tmp_path).drivername == "postgresql+psycopg2"


@pytest.fixture(scope="module")
def postgres() -> str:
    """The test PostgreSQL, or a skip that says why when it cannot be reached."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    return POSTGRES_URL


@pytest.fixture
def pg_leads(postgres: str) -> Iterator[str]:
    """A real table of scores in PostgreSQL, dropped afterwards."""
    import psycopg

    table = f"lastgood_leads_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute(f"create table {table} (score numeric)")
        db.execute(f"insert into {table} values (0.25), (0.75)")
    yield table
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute(f"drop table {table}")


@pytest.mark.postgres
def test_sql_on_postgresql(postgres: str, pg_leads: str, context: CheckContext) -> None:
    average = f"select avg(score) from {pg_leads}"
    result = run("sql", context, url=postgres, query=average, min=0.01, max=1)
    assert result.ok, result.detail
    assert result.detail == "query returned 0.5 (expected ≥ 0.01 and ≤ 1)"
    result = run("sql", context, url=postgres, query=f"{average} where score > 9", min=0.01)
    assert result.detail == "query returned NULL, expected ≥ 0.01"


@pytest.mark.postgres
def test_sql_postgresql_statement_timeout(postgres: str, context: CheckContext) -> None:
    started = time.monotonic()
    result = run("sql", context, timeout=1, url=postgres, query="select pg_sleep(10)", min=0)
    assert time.monotonic() - started < 2
    assert not result.ok
    assert "canceling statement due to statement timeout" in result.detail


@pytest.mark.postgres
def test_sql_postgresql_error_masks_the_password(postgres: str, context: CheckContext) -> None:
    url = postgres.replace("postgres@", "postgres:hunter2@")
    result = run("sql", context, url=url, query="select nope", min=0)
    assert not result.ok
    assert "hunter2" not in result.detail
    assert 'column "nope" does not exist' in result.detail


# --- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "options", "message", "hint"),
    [
        ("http", {"urll": "http://x"}, "http check 'http-check': urll is not an option", "url"),
        ("http", {}, "http check 'http-check': url is missing", "http://127.0.0.1"),
        ("http", {"url": "ftp://x"}, "url = 'ftp://x' is not an http(s) URL", "http://"),
        ("http", {"url": "http://x", "status": "ok"}, "status = 'ok' is not a status", "200"),
        ("http", {"url": "http://x", "json_min": {"a": "1"}}, "json_min a = '1' is not a", "="),
        ("http", {"url": "http://x", "max_latency": "fast"}, "max_latency = 'fast' is not", "ms"),
        ("command", {}, "command check 'command-check': run is missing", "run ="),
        ("command", {"run": "true", "exitt": 1}, "exitt is not an option", "did you mean exit?"),
        # a key every check takes, mistyped: the closest of all keys, not only the type's own
        ("command", {"run": "true", "max_dorp": "9%"}, "max_dorp is not", "mean max_drop?"),
        ("http", {"url": "http://x", "zzz": 1}, "zzz is not an option", "max_drop, max_rise"),
        ("command", {"run": "true", "exit": "0"}, "exit = '0' is not an exit code", "exit = 0"),
        ("command", {"run": "true", "cwd": 1}, "cwd = 1 must be a path", "cwd ="),
        ("sql", {"url": "sqlite://", "query": "select 1"}, "min, max or equals is needed", "min"),
        ("sql", {"url": "leads.db", "query": "q", "min": 0}, "is not a database URL", "sqlite"),
        ("sql", {"url": "sqlite://", "min": 0}, "sql check 'sql-check': query is missing", "q"),
        ("sql", {"url": "sqlite://", "query": "q", "minn": 0}, "minn", "did you mean min?"),
        ("sql", {"url": "sqlite://", "query": "q", "max": "9"}, "max = '9' is not a number", ""),
    ],
)
def test_bad_options_are_config_errors(
    type_name: str, options: dict[str, Any], message: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_check(spec(type_name, **options))
    assert message in caught.value.message
    assert hint in (caught.value.hint or "")


def test_registry_builds_the_builtin_classes() -> None:
    assert isinstance(build_check(spec("http", url="http://x")), HttpCheck)
    assert isinstance(build_check(spec("command", run="true")), CommandCheck)
    assert isinstance(build_check(spec("sql", url="sqlite://", query="q", min=0)), SqlCheck)


def test_sql_runaway_sqlite_query_is_interrupted(leads_url: str, context: CheckContext) -> None:
    endless = (
        "with recursive n(i) as (select 1 union all select i + 1 from n) select count(*) from n"
    )
    started = time.monotonic()
    result = run("sql", context, timeout=0.5, url=leads_url, query=endless, min=0)
    assert time.monotonic() - started < 1.5
    assert not result.ok
    assert result.detail == f"query failed on {leads_url}: interrupted"


def test_http_loopback_ignores_proxy_settings(
    serve: Any, context: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = serve({"/health": Reply(200, "ok")})
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    result = run("http", context, url=f"{base}/health")
    assert result.ok, result.detail
