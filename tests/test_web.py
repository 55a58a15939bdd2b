"""The web page against a real ``lastgood serve``: signing in, the incident on the dashboard, a
rollback in a real browser (Debian's Chromium through Playwright) that the consumers follow,
deploys, versions and diffs, and the refusals: no session, a wrong token, a missing or wrong
CSRF field, a viewer's token. Nothing is mocked."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from lastgood.server.auth import COOKIE
from tests.conftest import Workspace
from tests.serving import Server

Factory = Callable[..., Workspace]
CHROMIUM = "/usr/bin/chromium"

# Healthy unless ../outage-<marker of the live version> exists: the world can break v2 alone.
CHECK = (
    'grep -qx ok "$LASTGOOD_PATH/health.txt" && '
    'test ! -e "../outage-$(cat "$LASTGOOD_PATH/marker")"'
)
CONFIG = textwrap.dedent(
    f"""
    [env.staging]
    target = {{ type = "served", path = "../app", keep = 5 }}
    bake = "0.3s"
    interval = "0.1s"
    failures = 2
    verify_rounds = 2

    [[env.staging.check]]
    name = "scores-not-zero"
    type = "command"
    run = '{CHECK}'
    timeout = "5s"
    """
)


def two_versions(workspace: Factory, count: int = 2) -> Workspace:
    """A served staging with v1 (marker one) and v2 (marker two) deployed, both healthy."""
    ws = workspace(target="served", bake="0.3s")
    ws.write("lastgood.toml", CONFIG)
    for marker, why in (("one", "first thresholds"), ("two", "raise the threshold"))[:count]:
        ws.healthy(marker)
        ws.write("marker", f"{marker}\n")
        done = ws.run("deploy", "staging", "-m", why)
        assert done.returncode == 0, done.stderr
    return ws


def ledger(ws: Workspace) -> str:
    """The history as the CLI prints it: equal before and after means nothing changed."""
    done = ws.run("history", "staging", "--json")
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def signed_in(server: Server, secret: str) -> Iterator[httpx.Client]:
    """A client holding a session, signed in through the form as a browser would."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/login", data={"token": secret})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        yield http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class SdkConsumer(threading.Thread):
    """An application following staging's live config the way the SDK does: long-polls with
    If-None-Match, saying who it is and what it serves in headers on every read."""

    def __init__(self, server: Server, secret: str, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.url, self.secret, self.label = server.url, secret, name
        self.serving, self.etag, self.version = "none", "", 0
        self.stopping = threading.Event()

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.secret}",
            "X-Lastgood-Consumer": self.label,
            "X-Lastgood-Consumer-Name": self.label,
            "X-Lastgood-Serving": self.serving,
        }
        if self.etag:
            headers["If-None-Match"] = self.etag
        return headers

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stopping.is_set():
                try:
                    answer = http.get("/api/v1/envs/staging/config?wait=20", headers=self.headers())
                except httpx.HTTPError:  # the server stops at the end of the test
                    time.sleep(0.05)
                    continue
                if answer.status_code == 200:
                    body = answer.json()
                    self.etag, self.version = answer.headers["etag"], body["version"]
                    self.serving = f"{body['version']}:{body['content_hash']}"


@pytest.fixture
def consumers() -> Iterator[Callable[[Server, str, int], list[SdkConsumer]]]:
    """Factory: ``consumers(server, secret, 2)`` starts SDK-like consumers; stopped at the end."""
    started: list[SdkConsumer] = []
    servers: list[Server] = []

    def start(server: Server, secret: str, count: int) -> list[SdkConsumer]:
        servers.append(server)
        for number in range(count):
            started.append(SdkConsumer(server, secret, f"scorer-{number + 1}"))
            started[-1].start()
        return started

    yield start
    for consumer in started:
        consumer.stopping.set()
    for server in servers:
        server.kill()  # a graceful stop would wait for the held long-polls (up to 20 s)
    for consumer in started:
        consumer.join(5)


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_incident_rollback_in_a_browser_reaches_every_consumer(
    workspace: Factory, serve: Callable[..., Server], consumers: Callable[..., list[SdkConsumer]]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ws = two_versions(workspace)
    (ws.base / "outage-two").touch()  # the world breaks v2 after it went live
    assert ws.run("check", "staging").returncode != 0
    server = serve(ws)
    secret = server.token("deployer", "staging", name="pager")
    fleet = consumers(server, server.token("viewer", name="scorers"), 2)
    wait_for(lambda: all(c.version == 2 for c in fleet))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(server.url + "/")
        expect(page).to_have_url(server.url + "/login")
        page.get_by_label("API token").fill(secret)
        page.get_by_role("button", name="Sign in").click()

        card = page.locator("#env-staging")
        expect(card).to_have_class(re.compile(r"\bincident\b"))
        expect(card.locator(".badge")).to_contain_text("incident: health checks failing")
        expect(page.get_by_role("alert")).to_contain_text("staging")
        expect(card).to_contain_text("v2 live on 2/2 consumers")

        page.get_by_role("link", name="staging", exact=True).first.click()
        expect(page.locator("svg.timeline circle").first).to_be_visible()
        page.get_by_role("button", name="Roll back", exact=True).click()

        expect(page.locator(".change-line")).to_have_text(re.compile(r"from\s+v2\s+to\s+v1"))
        expect(page.locator("pre.diff .del")).to_contain_text(["-marker: two"])
        expect(page.locator("pre.diff .add")).to_contain_text(["+marker: one"])
        page.get_by_label("Why?").fill("scores dropped to zero")
        page.get_by_role("button", name="Roll back now").click()

        expect(page.locator("h1")).to_have_text("Done")
        expect(page.locator(".fleet")).to_have_text(re.compile(r"v1 restored on 2/2 consumers"))
        page.get_by_role("link", name="All environments").click()
        card = page.locator("#env-staging")
        expect(card).not_to_have_class(re.compile(r"\bincident\b"))
        expect(card.locator("dd.big").first).to_have_text("v1")
        browser.close()

    assert all(c.version == 1 for c in fleet)
    history = ledger(ws)
    assert '"actor": "pager"' in history and '"source": "web"' in history
    assert "scores dropped to zero" in history


def test_signed_out_and_wrong_tokens_get_nothing(
    workspace: Factory, serve: Callable[..., Server]
) -> None:
    ws = two_versions(workspace, count=1)
    server = serve(ws)
    before = ledger(ws)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path in ("/", "/envs/staging", "/versions", "/diff", "/envs/staging/rollback"):
            answer = http.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert http.get("/envs/staging").headers["location"] == "/login?next=/envs/staging"
        assert http.post("/envs/staging/rollback", data={"csrf": "x"}).status_code == 303

        wrong = "lg_not-a-real-token-at-all"
        refused = http.post("/login", data={"token": wrong})
        assert refused.status_code == 401 and "set-cookie" not in refused.headers
        assert "not accepted" in refused.text and wrong not in refused.text
        empty = http.post("/login", data={"token": ""})
        assert empty.status_code == 401 and "paste your API token" in empty.text
        away = http.post("/login", data={"token": server.token("viewer"), "next": "//evil.test/"})
        assert away.headers["location"] == "/"
        lost = http.get("/no/such/page", headers={"Accept": "text/html"})
        assert lost.status_code == 404 and "<h1>That did not work</h1>" in lost.text
        assert http.get("/api/v1/nothing").json()["error"] == "Not Found"
    assert ledger(ws) == before


def test_forged_forms_and_viewers_change_nothing(
    workspace: Factory, serve: Callable[..., Server]
) -> None:
    ws = two_versions(workspace)
    server = serve(ws)
    before = ledger(ws)
    with signed_in(server, server.token("deployer", name="ops")) as http:
        good = csrf_of(http.get("/envs/staging/rollback").text)
        for form in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": good + "x"}):
            for path in ("/envs/staging/rollback", "/envs/staging/deploy"):
                answer = http.post(path, data={**form, "version": "v1", "message": "no"})
                assert answer.status_code == 403, (path, form)
                assert "security code (CSRF) is missing or wrong" in answer.text
                assert "nothing was changed" in answer.text
        assert http.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert http.get("/").status_code == 200  # still signed in

        stale = http.post("/envs/staging/rollback", data={"csrf": good, "live": "v1"})
        assert stale.status_code == 409 and "not v1 as when you opened" in stale.text
        assert ledger(ws) == before

        assert http.post("/logout", data={"csrf": good}).status_code == 303
        assert http.get("/").status_code == 303

    with signed_in(server, server.token("viewer", name="finance")) as http:
        page = http.get("/envs/staging")
        assert page.status_code == 200 and "finance" in page.text
        assert "raise the threshold" in page.text and "<svg" in page.text
        assert "Roll back" not in page.text and "/envs/staging/deploy" not in page.text
        assert http.get("/envs/staging/rollback").status_code == 403
        refused = http.post("/envs/staging/rollback", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
        assert "needs deployer on &#39;staging&#39;" in refused.text
        assert "Traceback" not in refused.text
    assert ledger(ws) == before


def test_a_session_outlives_a_server_restart_and_the_store_keeps_only_its_hash(
    workspace: Factory, serve: Callable[..., Server]
) -> None:
    ws = two_versions(workspace, count=1)
    server = serve(ws)
    secret = server.token("deployer", name="ops")
    with signed_in(server, secret) as http:
        cookie = http.cookies[COOKIE]
        csrf = csrf_of(http.get("/").text)
        server.stop()
        again = serve(ws, port=server.port)
        page = http.get("/envs/staging")
        assert page.status_code == 200 and "ops" in page.text  # still signed in
        assert csrf_of(page.text) == csrf  # the same session, forms from before still valid
        stored = b"".join(path.read_bytes() for path in (ws.root / ".lastgood").glob("*.db*"))
        assert hashlib.sha256(cookie.encode()).hexdigest().encode() in stored
        assert cookie.encode() not in stored and secret.encode() not in stored
        assert http.post("/logout", data={"csrf": csrf}).status_code == 303
    with httpx.Client(base_url=again.url, timeout=30, cookies={COOKIE: cookie}) as replay:
        assert replay.get("/").status_code == 303  # signed out means out, on every server


def test_deploy_versions_and_diffs_never_show_the_secret(
    workspace: Factory, serve: Callable[..., Server]
) -> None:
    ws = two_versions(workspace)
    ws.write("notes.txt", "<script>alert('x')</script>\n")
    ws.write("marker", "three\n")
    assert ws.run("snapshot", "-m", "notes <b>bold</b>").returncode == 0
    server = serve(ws, "--access-log")
    secret = server.token("deployer", name="release-bot")
    pages: list[str] = []
    with signed_in(server, secret) as http:
        for path in ("/", "/envs/staging", "/versions", "/versions/v3", "/diff",
                     "/diff?old=v1&new=v3", "/envs/nope", "/versions/v99"):  # fmt: skip
            pages.append(http.get(path).text)
        assert "no environment named &#39;nope&#39;" in pages[-2]
        assert "<script>alert" not in "".join(pages)
        assert '<span class="add">+&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;' in pages[3]
        assert "notes &lt;b&gt;bold&lt;/b&gt;" in pages[2]
        assert '<span class="del">-marker: one' in pages[5]

        confirm = http.get("/envs/staging/deploy", params={"version": "v3"})
        pages.append(confirm.text)
        assert re.search(r"from\s+<strong[^>]*>v2</strong>\s+to\s+<strong[^>]*>v3</strong>",
                         confirm.text)  # fmt: skip
        done = http.post("/envs/staging/deploy", data={"csrf": csrf_of(confirm.text),
                         "version": "v3", "live": "v2", "message": "ship the notes"})  # fmt: skip
        pages.append(done.text)
        assert done.status_code == 200 and "<h1>Done</h1>" in done.text
    history = ledger(ws)
    assert '"actor": "release-bot"' in history and "ship the notes" in history
    assert all(secret not in html for html in pages)
    assert secret not in server.log.read_text()


def test_the_page_shows_both_restore_figures_as_the_ledger_has_them(
    workspace: Factory, serve: Callable[..., Server]
) -> None:
    from lastgood.units import format_duration

    ws = two_versions(workspace)
    assert ws.run("rollback", "staging", "-m", "undo").returncode == 0
    [record] = [d for d in json.loads(ledger(ws))["deployments"] if d["kind"] == "rollback"]
    restored = format_duration(record["time_to_active"])
    verified = format_duration(record["time_to_verified"])
    assert restored != verified
    server = serve(ws)
    with signed_in(server, server.token("viewer", name="eyes")) as http:
        page = http.get("/envs/staging").text
    assert f">restored in {restored}</text>" in page and f">verified in {verified}</text>" in page
    assert "<th>Restored in</th><th>Verified in</th>" in page
    assert f"<td>{restored}</td>\n        <td>{verified}</td>" in page
