"""``lastgood serve`` as an operator runs it: the access log, stopping it while applications hold
long-polls, a port already taken, the sign-in page's word on sessions, and ``/docs`` working on a
machine without internet. Real server processes on 127.0.0.1, real HTTP, Debian's Chromium."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lastgood.client import LiveConfig
from tests.conftest import LASTGOOD, Workspace
from tests.serving import Server

CHROMIUM = "/usr/bin/chromium"


def served(workspace: Callable[..., Workspace]) -> Workspace:
    """A served staging with v1 live."""
    ws = workspace(target="served", bake="0.1s")
    ws.healthy("one")
    done = ws.run("deploy", "staging", "-m", "first")
    assert done.returncode == 0, done.stderr
    return ws


def stopped(server: Server, sig: int = signal.SIGTERM) -> str:
    """Stop the server with ``sig`` and return what it printed; it must exit within 5 s."""
    assert server.process is not None
    server.process.send_signal(sig)
    server.process.wait(5)  # TimeoutExpired fails the test
    return server.log.read_text()


def some_requests(server: Server, token: str) -> None:
    """A health check, a config read (the fast path) and a refused read (FastAPI)."""
    with server.client(token) as http:
        assert http.get("/healthz").status_code == 200
        read = http.get("/api/v1/envs/staging/config", params={"wait": "0"})
        assert read.status_code == 200
        assert http.get("/api/v1/envs/nowhere/config").status_code == 404


def test_access_log_has_every_request_only_when_asked(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    logged = serve(ws, "--access-log")
    token = logged.token("viewer")
    some_requests(logged, token)
    output = stopped(logged)
    for line in ("GET /healthz 200", "GET /api/v1/envs/staging/config 200",
                 "GET /api/v1/envs/nowhere/config 404"):  # fmt: skip
        assert re.search(rf"127\.0\.0\.1:\d+ {re.escape(line)} \d+\.\d ms", output), output
    assert token not in output and "wait=" not in output  # no token, no query string
    quiet = serve(ws)
    some_requests(quiet, token)
    output = stopped(quiet)
    assert "GET /" not in output and " ms" not in output


def hold_a_long_poll(server: Server, token: str, answers: list[httpx.Response]) -> None:
    """A raw long-poll with the current ETag, which the server holds for up to 60 s; it says
    who it is, so the fleet view shows when the server has it."""
    with server.client(token) as http:
        etag = http.get("/api/v1/envs/staging/config").headers["etag"]
        headers = {"If-None-Match": etag, "X-Lastgood-Consumer": "raw-poll"}
        answers.append(http.get("/api/v1/envs/staging/config", params={"wait": "60"},
                                headers=headers))  # fmt: skip


def follow_the_stream(server: Server, token: str, seen: list[str]) -> None:
    """Read the event stream to its end, noting its first event and how it ended."""
    with (
        server.client(token) as http,
        http.stream("GET", "/api/v1/envs/staging/config/stream") as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("event:") and not seen:
                seen.append(line)
    seen.append("ended")


def held(server: Server, token: str, consumer: str) -> None:
    """Wait until the server has the long-poll of ``consumer`` (it reports before waiting)."""
    deadline = time.monotonic() + 10
    with server.client(token) as http:
        while consumer not in http.get("/api/v1/envs/staging/consumers").text:
            assert time.monotonic() < deadline, f"the server never saw {consumer}"
            time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_with_held_long_polls_is_prompt_and_clean(
    sig: int, workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """The held long-polls are ended at once with a clean 503, and no traceback is printed."""
    ws = served(workspace)
    server = serve(ws)
    token = server.token("viewer")
    answers: list[httpx.Response] = []
    seen: list[str] = []
    poller = threading.Thread(target=hold_a_long_poll, args=(server, token, answers))
    reader = threading.Thread(target=follow_the_stream, args=(server, token, seen))
    with LiveConfig(server.url, "staging", token=token, cache=False, wait=60) as live:
        poller.start()
        reader.start()
        held(server, token, "raw-poll")
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline, "the event stream sent nothing"
            time.sleep(0.05)
        output = stopped(server, sig)
        assert live.version == 1  # still serving what it had
    poller.join(5)
    reader.join(5)
    assert "Traceback" not in output and "ERROR" not in output, output
    assert answers[0].status_code == 503
    assert answers[0].json()["error"] == "the server is stopping and did not answer this request"
    assert seen == ["event: config", "ended"]  # the stream was ended, not cut


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_exits_0_and_says_so_with_one_process_or_workers(
    sig: int, workers: str, workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A stop that was asked for and done is a success, whatever ``--workers`` says: one
    process used to exit 143 after a blank line and ``terminated`` (130 and ``interrupted``
    on SIGINT) while ``--workers 2`` exited 0 in silence, so a supervisor saw a tuning flag
    change how a clean stop looks."""
    server = serve(served(workspace), "--workers", workers)
    output = stopped(server, sig)
    assert server.process is not None and server.process.returncode == 0, output
    name = signal.Signals(sig).name
    assert output.endswith(f"\nlastgood stopped serving {server.url} on {name}\n"), output
    assert "terminated" not in output and "interrupted" not in output and "\n\n" not in output


def test_the_access_log_has_the_held_reads_a_stop_ended(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A long-poll the server ended with 503 when it stopped is a request like any other: it
    is logged (it used to be left out when the read was held inside the HTTP protocol)."""
    ws = served(workspace)
    server = serve(ws, "--access-log")
    token = server.token("viewer")
    answers: list[httpx.Response] = []
    poller = threading.Thread(target=hold_a_long_poll, args=(server, token, answers))
    poller.start()
    held(server, token, "raw-poll")
    output = stopped(server)
    poller.join(5)
    assert answers[0].status_code == 503
    assert re.search(r"GET /api/v1/envs/staging/config 503 \d+\.\d ms", output), output


def test_a_port_in_use_is_a_usage_error(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = served(workspace)
    first = serve(ws)
    second = subprocess.run([LASTGOOD, "-C", str(ws.root), "serve", "--port", str(first.port)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert second.returncode == 2, second.stderr
    assert f"could not listen on 127.0.0.1:{first.port}" in second.stderr
    assert "another --port" in second.stderr and "Traceback" not in second.stderr


def test_the_sign_in_page_says_sessions_survive_restarts(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    server = serve(served(workspace))
    page = httpx.get(f"{server.url}/login").text
    words = " ".join(page.split())
    assert "until the server restarts" not in words
    assert "across server restarts" in words and "every server that shares this store" in words


def same_origin_urls(html: str) -> list[str]:
    """Every URL the page loads (src, href, and Swagger UI's spec url)."""
    found = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert found, html
    return found


def test_docs_loads_everything_from_the_server(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    server = serve(served(workspace))
    with server.client() as http:
        page = http.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        urls = same_origin_urls(page.text)
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = http.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url
        assert {"/docs/assets/swagger-ui-bundle.js", "/openapi.json"} <= set(urls)
        script = http.get("/docs/assets/swagger-ui-bundle.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert b"SwaggerUIBundle" in script.content
        assert http.get("/docs/assets/../../etc/passwd").status_code == 404
        assert http.get("/docs/assets/index.html").status_code == 404
        assert http.get("/redoc").status_code == 404  # it would load ReDoc from a CDN


def test_docs_renders_in_a_browser_without_internet(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """Chromium with every request to another host refused: Swagger UI still shows the API."""
    from playwright.sync_api import Route, expect, sync_playwright

    server = serve(served(workspace))
    elsewhere: list[str] = []

    def offline(route: Route) -> Any:
        if route.request.url.startswith(server.url + "/"):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text)
                if message.type == "error" else None)  # fmt: skip
        page.route("**/*", offline)
        page.goto(server.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("lastgood")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        expect(page.get_by_text("/api/v1/envs/{env}/config", exact=True).first).to_be_visible()
        browser.close()
    assert elsewhere == [] and problems == [], (elsewhere, problems)
