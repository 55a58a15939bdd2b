"""Notifications, judged by what real receivers got: an SMTP server (aiosmtpd) and an HTTP
webhook (stdlib ``http.server``), both on 127.0.0.1 and started by the tests.

Nothing of lastgood is mocked. Waits poll with a deadline; nothing asserts on wall-clock
durations, only on the order in which things happened.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lastgood.config_notify import Route
from lastgood.events import Event, EventKind
from lastgood.notify import routing
from lastgood.operations.notify import send
from tests.conftest import Workspace, eventually
from tests.http_fakes import POLL

SECRET = "Sup3rS3cretPw"
HEADER_SECRET = "TopSecretHeaderValue"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- receivers -----------------------------------------------------------------------------


class Webhook:
    """An HTTP receiver that keeps every POST; in ``hang`` mode it answers only when released."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.hang = False
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size) or b"{}")
                receiver.requests.append(
                    {"path": self.path, "body": body, "at": time.time(), "headers": self.headers}
                )
                if receiver.hang:
                    receiver.release.wait(120)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(POLL,), daemon=True).start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if path is None or r["path"] == f"/{path}"]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)
                )
                return "250 Message accepted"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?to=ops@example.com&from=lastgood@example.com"

    def subjects(self) -> list[str]:
        return [str(message["subject"]) for message in self.messages]

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    receiver = Mailbox()
    yield receiver
    receiver.close()


def add_config(ws: Workspace, text: str) -> None:
    path = ws.root / "lastgood.toml"
    path.write_text(path.read_text() + textwrap.dedent(text))


def plain_body(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def log_entries(ws: Workspace, *args: str) -> list[dict[str, Any]]:
    result = ws.run("notify", "log", "--json", *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


# ---- routing rules (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "envs", "kind", "env", "sent"),
    [
        ((), (), EventKind.AUTO_ROLLED_BACK, "staging", True),
        ((), (), EventKind.DEPLOY_SUCCEEDED, "staging", False),
        ((), (), EventKind.CHECK_ROUND, "staging", False),
        ((), (), EventKind.DIGEST, None, True),
        (("*",), (), EventKind.CHECK_ROUND, "staging", True),
        (("deploy-succeeded",), (), EventKind.DEPLOY_SUCCEEDED, "staging", True),
        (("deploy-succeeded",), (), EventKind.DEPLOY_FAILED, "staging", False),
        ((), ("production",), EventKind.DEPLOY_FAILED, "staging", False),
        ((), ("production",), EventKind.DEPLOY_FAILED, "production", True),
        ((), ("production",), EventKind.NOTIFY_TEST, None, True),
    ],
)
def test_route_takes_events_by_kind_and_env(
    events: tuple[str, ...], envs: tuple[str, ...], kind: EventKind, env: str | None, sent: bool
) -> None:
    route = Route(name="r", to=("json://x",), events=events, envs=envs)
    assert routing.wants(route, Event(kind, "m", env=env)) is sent


def test_dedupe_keys() -> None:
    assert routing.dedupe_key(Event(EventKind.DRIFT_DETECTED, "m", key="k")) == ("k", True)
    derived = Event(EventKind.AUTO_ROLLED_BACK, "m", env="staging", deployment=4, version=1)
    assert routing.dedupe_key(derived) == ("auto-rolled-back:staging:4:1", True)
    one_off = routing.dedupe_key(Event(EventKind.WATCH_ALERT, "m", env="staging"))
    assert one_off[1] is False
    assert one_off != routing.dedupe_key(Event(EventKind.WATCH_ALERT, "m", env="staging"))


def test_default_event_set_is_what_the_docs_list() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "notifications.md").read_text()
    section = docs.split("## The default event set", 1)[1].split("\n## ", 1)[0]
    for kind in EventKind:
        assert (f"`{kind.value}`" in section) is (kind.value in routing.DEFAULT_EVENTS), kind


# ---- a failed deploy, end to end -----------------------------------------------------------


def test_auto_rollback_reaches_webhook_and_email(
    workspace: Callable[..., Workspace], webhook: Webhook, mailbox: Mailbox
) -> None:
    ws = workspace()
    add_config(
        ws,
        f"""
        [[notify.route]]
        name = "hook"
        to = "{webhook.url()}"

        [[notify.route]]
        name = "ops-email"
        to = "{mailbox.url()}"
        events = ["auto-rolled-back"]
        format = "text"
        """,
    )
    ws.healthy()
    assert ws.run("deploy", "staging", "-m", "good").returncode == 0
    ws.broken()
    failed = ws.run("deploy", "staging", "-m", "zero scores")
    assert failed.returncode == 3, failed.stderr

    # the CLI drains before it exits, so everything is there already; poll all the same
    eventually(lambda: len(webhook.bodies()) >= 2 and mailbox.messages)
    titles = [body["title"] for body in webhook.bodies()]
    assert titles == ["[staging] deploy-failed: v1 → v2", "[staging] auto-rolled-back: v2 → v1"]
    body = webhook.bodies()[1]["message"]
    for expected in (
        "**auto-rolled-back** on **staging**: restored v1 on staging",
        "- **Who:** lastgood",
        "- **Why:** v2 failed",
        "- **From → to:** v2 → v1",
        "- **Time to restore:**",
        "(budget 5m 00s: within budget)",
        "**Files changed** (v2 → v1):",
        "- `health.txt` (modified)",
        "- `scoring/thresholds.yaml` (modified)",
        "Next step: `lastgood history staging`",
    ):
        assert expected in body, (expected, body)

    assert mailbox.subjects() == ["[staging] auto-rolled-back: v2 → v1"]
    text = plain_body(mailbox.messages[0])
    assert "auto-rolled-back on staging" in text
    assert "Versions: v2 → v1" in text
    assert "modified  scoring/thresholds.yaml" in text

    entries = log_entries(ws)
    assert sorted((e["route"], e["event"], e["status"]) for e in entries) == [
        ("hook", "auto-rolled-back", "sent"),
        ("hook", "deploy-failed", "sent"),
        ("ops-email", "auto-rolled-back", "sent"),
    ]
    assert {e["key"] for e in entries if e["event"] == "auto-rolled-back"} == {
        f"auto-rolled-back:staging:{entries[0]['key'].split(':')[2]}:1"
    }


# ---- routing, dedupe, formats, digests (in process) ----------------------------------------


def two_envs(ws: Workspace) -> None:
    add_config(
        ws,
        """
        [env.production]
        target = { type = "directory", path = "../live-production" }
        """,
    )


def test_routes_filter_by_events_and_envs(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    two_envs(ws)
    add_config(
        ws,
        f"""
        [[notify.route]]
        name = "production-everything"
        to = "{webhook.url("prod")}"
        events = ["*"]
        envs = ["production"]

        [[notify.route]]
        name = "failures"
        to = "{webhook.url("fail")}"
        events = ["deploy-failed"]

        [[notify.route]]
        name = "defaults"
        to = "{webhook.url("default")}"
        """,
    )
    project = ws.project()
    for kind, env in [
        (EventKind.DEPLOY_SUCCEEDED, "staging"),
        (EventKind.DEPLOY_FAILED, "production"),
        (EventKind.DRIFT_DETECTED, "staging"),
        (EventKind.CHECK_ROUND, "production"),
        (EventKind.NOTIFY_TEST, None),
    ]:
        project.emit(Event(kind, f"{kind.value} happened", env=env))
    assert project.notifier is not None and project.notifier.flush(60)

    def kinds(path: str) -> list[str]:
        return sorted(body["title"].split("] ", 1)[1] for body in webhook.bodies(path))

    assert kinds("prod") == ["check-round", "deploy-failed", "notify-test"]
    assert kinds("fail") == ["deploy-failed"]
    assert kinds("default") == ["deploy-failed", "drift-detected", "notify-test"]


def test_same_key_is_delivered_once_even_across_processes(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    add_config(ws, f'[[notify.route]]\nname = "hook"\nto = "{webhook.url()}"\n')
    event = Event(EventKind.DRIFT_DETECTED, "live differs", env="staging", key="drift:staging:7")
    first = ws.project()
    first.emit(event)
    first.emit(event)
    first.close()
    second = ws.project()
    second.emit(event)
    assert second.notifier is not None and second.notifier.flush(60)
    assert len(webhook.bodies()) == 1
    statuses = [d.status for d in reversed(second.store.deliveries(key="drift:staging:7"))]
    assert statuses == ["sent", "suppressed", "suppressed"]


def test_events_without_a_key_are_never_suppressed(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    add_config(ws, f'[[notify.route]]\nname = "hook"\nto = "{webhook.url()}"\n')
    project = ws.project()
    project.emit(Event(EventKind.WATCH_ALERT, "stalled", env="staging"))
    project.emit(Event(EventKind.WATCH_ALERT, "stalled", env="staging"))
    assert project.notifier is not None and project.notifier.flush(60)
    assert len(webhook.bodies()) == 2


def test_html_format_escapes_event_text(
    workspace: Callable[..., Workspace], webhook: Webhook, mailbox: Mailbox
) -> None:
    ws = workspace()
    add_config(
        ws,
        f"""
        [[notify.route]]
        name = "html"
        to = ["{webhook.url()}", "{mailbox.url()}"]
        format = "html"
        """,
    )
    project = ws.project()
    project.emit(
        Event(
            EventKind.HEALTH_FAILED,
            "scores <script>alert(1)</script> are zero",
            env="staging",
            version=3,
            data={"failed": ["scores-not-zero"]},
        )
    )
    project.close()
    body = webhook.bodies()[0]["message"]
    assert body.startswith("<p><strong>health-failed</strong> on <strong>staging</strong>")
    assert "scores &lt;script&gt;alert(1)&lt;/script&gt; are zero" in body
    assert "<li><strong>failed:</strong> scores-not-zero</li>" in body
    assert "<script>" not in body
    html = mailbox.messages[0].get_body(preferencelist=("html",))
    assert html is not None and "<strong>health-failed</strong>" in html.get_content()


def test_digest_sends_each_route_its_own_format(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    add_config(
        ws,
        "".join(
            f'[[notify.route]]\nname = "{fmt}"\nto = "{webhook.url(fmt)}"\nformat = "{fmt}"\n'
            for fmt in ("text", "markdown", "html")
        )
        + f'[[notify.route]]\nname = "titled"\nto = "{webhook.url("titled")}"\n'
        'events = ["digest"]\ntitle = "Weekly: {{ event.data.title }}"\n',
    )
    data = {
        "title": "lastgood weekly report",
        "text": "TEXT REPORT\n",
        "markdown": "**MARKDOWN REPORT**\n",
        "html": "<h1>HTML REPORT</h1>\n",
    }
    project = ws.project()
    results = send(project, Event(EventKind.DIGEST, "weekly", data=data, key="digest:w1"))
    assert [r.status for r in results] == ["sent"] * 4
    for fmt in ("text", "markdown", "html"):
        (body,) = webhook.bodies(fmt)
        assert body["title"] == "lastgood weekly report"
        assert body["message"].strip() == data[fmt].strip()
    (titled,) = webhook.bodies("titled")
    assert titled["title"] == "Weekly: lastgood weekly report"
    assert titled["message"].strip() == "**MARKDOWN REPORT**"


# ---- templates -----------------------------------------------------------------------------


def test_template_overrides_render_and_escapes_fall_back(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    ws.write("notify/good.j2", "Custom {{ event.kind }} via {{ route.name }}: {{ event.message }}")
    ws.write("notify/evil.j2", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    ws.write("notify/nope.j2", "{{ event.kind | no_such_filter }}")  # parses; fails to render
    add_config(
        ws,
        f"""
        [[notify.route]]
        name = "custom"
        to = "{webhook.url("good")}"
        template = "notify/good.j2"
        title = "T {{{{ event.kind }}}}"

        [[notify.route]]
        name = "evil"
        to = "{webhook.url("evil")}"
        template = "notify/evil.j2"
        title = "{{{{ ''.__class__.__mro__ }}}}"

        [[notify.route]]
        name = "missing"
        to = "{webhook.url("missing")}"
        template = "notify/nope.j2"
        """,
    )
    result = ws.run("notify", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    (good,) = webhook.bodies("good")
    assert good["title"] == "T notify-test"
    assert good["message"].startswith("Custom notify-test via custom: test message from lastgood")
    for path in ("evil", "missing"):
        (fallback,) = webhook.bodies(path)
        assert fallback["title"] == "[lastgood] notify-test"
        assert fallback["message"].startswith("**notify-test**: test message from lastgood")
        assert "class" not in fallback["message"]
    details = {e["route"]: e["detail"] for e in log_entries(ws)}
    assert "title template failed (SecurityError" in details["evil"]
    assert "template 'notify/evil.j2' failed (SecurityError" in details["evil"]
    assert "sent the default message" in details["evil"]
    assert "template 'notify/nope.j2' failed (TemplateAssertionError" in details["missing"]
    assert "failed" not in details["custom"]


# ---- failures: retries, masking, hangs, drain ----------------------------------------------


def test_retries_then_failed_with_secrets_masked_everywhere(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace()
    url = f"json://admin:{SECRET}@127.0.0.1:{free_port()}/hook?+X-Token={HEADER_SECRET}"
    add_config(
        ws,
        f"""
        [notify]
        timeout = "5s"
        retries = 2

        [[notify.route]]
        name = "down"
        to = "{url}"
        """,
    )
    tested = ws.run("notify", "test")
    assert tested.returncode == 1
    assert "failed  down  json://admin:****@127.0.0.1:" in tested.stdout
    assert "gave up after 3 attempts: A Connection error occurred" in tested.stdout
    assert "1 of 1 destination did not get the test message" in tested.stderr
    assert "notify: route 'down' to json://admin:****@" in tested.stderr

    logged = ws.run("notify", "log")
    as_json = ws.run("notify", "log", "--json", "--status", "failed")
    entries = json.loads(as_json.stdout)
    assert [(e["attempt"], e["status"]) for e in reversed(entries)] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert "retrying in 0.5 s" in entries[2]["detail"]
    assert "retrying in 1 s" in entries[1]["detail"]
    assert entries[0]["destination"].startswith("json://admin:****@127.0.0.1:")

    store_bytes = b"".join(p.read_bytes() for p in (ws.root / ".lastgood").iterdir())
    for secret in (SECRET, HEADER_SECRET):
        for output in (tested.stdout, tested.stderr, logged.stdout, logged.stderr, as_json.stdout):
            assert secret not in output
        assert secret.encode() not in store_bytes


def test_hanging_receiver_never_delays_the_rollback_and_drain_bounds_exit(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    add_config(
        ws,
        f"""
        [notify]
        timeout = "60s"
        retries = 0
        drain = "3s"

        [[notify.route]]
        name = "stuck"
        to = "{webhook.url()}"
        events = ["deploy-failed", "auto-rolled-back"]
        """,
    )
    ws.healthy()
    assert ws.run("deploy", "staging").returncode == 0
    webhook.hang = True
    ws.broken()
    failed = ws.run("deploy", "staging")
    released_at = time.time()
    webhook.release.set()
    assert failed.returncode == 3, failed.stderr

    # the first message reached the receiver and hung there while the rollback went on
    assert [r["body"]["title"] for r in webhook.requests] == ["[staging] deploy-failed: v1 → v2"]
    project = ws.project()
    (rollback,) = [d for d in project.store.deployments("staging") if d.kind == "auto-rollback"]
    assert rollback.status == "succeeded"
    assert rollback.finished_at is not None and rollback.finished_at < released_at
    assert webhook.requests[0]["at"] < released_at

    # the process waited `drain` and then gave up on both, saying so
    entries = project.store.deliveries(route="stuck")
    assert sorted((d.event, d.attempt, d.status) for d in entries) == [
        ("auto-rolled-back", 0, "abandoned"),
        ("deploy-failed", 1, "abandoned"),
    ]
    assert "waited 3 s, [notify] drain" in entries[0].detail
    assert "2 deliveries abandoned after waiting 3 s" in failed.stderr


def test_each_attempt_is_bounded_by_the_timeout(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    add_config(
        ws,
        f"""
        [notify]
        timeout = "1s"
        retries = 1

        [[notify.route]]
        name = "slow"
        to = "{webhook.url()}"
        """,
    )
    webhook.hang = True
    tested = ws.run("notify", "test", "--json")
    finished_at = time.time()
    webhook.release.set()
    assert tested.returncode == 1
    (result,) = json.loads(tested.stdout)["results"]
    assert (result["status"], result["attempts"]) == ("failed", 2)
    assert len(webhook.requests) == 2
    assert all(request["at"] < finished_at for request in webhook.requests)


# ---- the CLI -------------------------------------------------------------------------------


def test_notify_test_and_log_commands(
    workspace: Callable[..., Workspace], webhook: Webhook, mailbox: Mailbox
) -> None:
    ws = workspace()
    add_config(
        ws,
        f"""
        [[notify.route]]
        name = "hook"
        to = "{webhook.url()}"
        events = ["auto-rolled-back"]
        envs = ["staging"]

        [[notify.route]]
        name = "mail"
        to = "{mailbox.url()}"
        """,
    )
    tested = ws.run("notify", "test")
    assert tested.returncode == 0, tested.stderr
    lines = tested.stdout.splitlines()
    assert lines[0].startswith(f"sent    hook  json://127.0.0.1:{webhook.port}/hook  (1 attempt)")
    assert lines[1].startswith(f"sent    mail  mailto://127.0.0.1:{mailbox.port}/ops%40example.com")
    assert "all 2 destinations got the test message" in tested.stderr
    assert mailbox.subjects() == ["[lastgood] notify-test"]

    one = ws.run("notify", "test", "--route", "mail", "--json")
    assert one.returncode == 0
    report = json.loads(one.stdout)
    assert report["ok"] is True
    assert [(r["route"], r["status"]) for r in report["results"]] == [("mail", "sent")]

    unknown = ws.run("notify", "test", "--route", "nope")
    assert unknown.returncode == 2
    assert "no route named 'nope'" in unknown.stderr
    assert "routes: 'hook', 'mail'" in unknown.stderr

    table = ws.run("notify", "log", "--route", "mail")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "when", "route", "event", "env", "destination", "try", "status", "detail"
    ]  # fmt: skip
    assert len(table.stdout.splitlines()) == 3
    assert len(log_entries(ws, "--limit", "1")) == 1


def test_notify_commands_without_routes_explain_how_to_add_one(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace()
    for args in (("notify", "test"), ("notify", "log")):
        result = ws.run(*args)
        assert result.returncode == 2, result.stderr
        assert "no [[notify.route]] in" in result.stderr
        assert "[[notify.route]]" in result.stderr.split("hint:", 1)[1]
        assert "Traceback" not in result.stderr


# ---- PostgreSQL as the store ---------------------------------------------------------------


@pytest.mark.postgres
def test_deliveries_and_dedupe_on_postgresql(
    workspace: Callable[..., Workspace], webhook: Webhook, pg_url: str
) -> None:
    ws = workspace(store=pg_url)
    add_config(ws, f'[[notify.route]]\nname = "hook"\nto = "{webhook.url()}"\n')
    tested = ws.run("notify", "test")
    assert tested.returncode == 0, tested.stderr
    project = ws.project()
    event = Event(EventKind.DOCUMENT_CHANGED, "pricing changed", key="document-changed:p:2")
    project.emit(event)
    project.emit(event)
    assert project.notifier is not None and project.notifier.flush(60)
    assert len(webhook.bodies()) == 2
    assert [e["status"] for e in reversed(log_entries(ws))] == ["sent", "sent", "suppressed"]


# ---- start-up cost -------------------------------------------------------------------------


def test_nothing_is_imported_without_routes_and_no_apprise_until_delivery(
    workspace: Callable[..., Workspace], webhook: Webhook
) -> None:
    ws = workspace()
    probe = (
        "import sys; from pathlib import Path; from lastgood.project import Project; "
        "from lastgood.events import Event, EventKind; "
        f"p = Project.open(Path({str(ws.root)!r})); "
        "p.emit(Event(EventKind.DEPLOY_SUCCEEDED, 'not routed', env='staging')); "
        "print(sorted(m for m in ('lastgood.notify', 'lastgood.notify.notifier', 'apprise', "
        "'jinja2') if m in sys.modules)); p.close()"
    )

    def loaded() -> list[str]:
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return list(json.loads(run.stdout.replace("'", '"')))

    assert loaded() == []
    add_config(ws, f'[[notify.route]]\nname = "hook"\nto = "{webhook.url()}"\n')
    assert loaded() == ["lastgood.notify", "lastgood.notify.notifier"]


def test_the_store_keeps_only_masked_destinations(workspace: Callable[..., Workspace]) -> None:
    """The raw SQLite rows, not only what the CLI prints, hold no secret."""
    ws = workspace()
    add_config(
        ws,
        f"""
        [notify]
        retries = 0

        [[notify.route]]
        name = "down"
        to = "form://user:{SECRET}@127.0.0.1:{free_port()}/x"
        """,
    )
    assert ws.run("notify", "test").returncode == 1
    with sqlite3.connect(ws.root / ".lastgood" / "store.db") as db:
        rows = db.execute("SELECT * FROM deliveries").fetchall()
    assert rows and all(SECRET not in str(row) for row in rows)
    assert any("form://user:****@127.0.0.1:" in str(row) for row in rows)


def test_every_step_of_a_change_request_reaches_webhook_and_email(
    workspace: Callable[..., Workspace], webhook: Webhook, mailbox: Mailbox
) -> None:
    ws = workspace()
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "before approvals").returncode == 0
    add_config(
        ws,
        f"""
        [groups]
        ai-team = ["lee"]

        [env.staging.approval]
        approvers = ["ai-team"]

        [[notify.route]]
        name = "hook"
        to = "{webhook.url()}"

        [[notify.route]]
        name = "approvers-email"
        to = "{mailbox.url()}"
        events = ["request-opened", "request-approved", "request-applied"]
        format = "text"
        """,
    )
    ws.healthy("two")
    ws.write("prompts/score.txt", "Score each lead.\nBe strict.\n")
    ws.write("api_key", "sk-live-SECRETVALUE\n")
    assert ws.run("request", "staging", "-m", "new thresholds").returncode == 0
    assert ws.run("request", "approve", "1", env={"LASTGOOD_AUTHOR": "lee"}).returncode == 0
    assert ws.run("request", "apply", "1").returncode == 0

    kinds = ["request-opened", "request-approved", "request-applied"]
    eventually(lambda: len(mailbox.messages) >= 3)
    titles = [body["title"] for body in webhook.bodies()]
    assert [t for t in titles if "request-" in t] == [f"[staging] {k}: v1 → v2" for k in kinds]
    opened = webhook.bodies()[titles.index("[staging] request-opened: v1 → v2")]["message"]
    assert "change request #1 for staging: v2 by tester (new thresholds)" in opened
    assert "needs 1 more: 1 approval from ai-team (default)" in opened
    assert mailbox.subjects() == [f"[staging] {k}: v1 → v2" for k in kinds]
    mail = plain_body(mailbox.messages[0]).replace("\r\n", "\n")  # what an approver reads
    assert "Files changed (v1 → v2):" in mail
    assert "  added     prompts/score.txt (+2 -0)\n" in mail
    assert "  modified  scoring/thresholds.yaml (+1 -1)\n" in mail
    assert "  added     api_key (+1 -0)\n" in mail and "SECRETVALUE" not in mail + opened
    assert "`prompts/score.txt` (added, +2 -0)" in opened  # markdown on the webhook
    assert "approved by:" not in mail and "missing:" in mail  # no empty lines
    assert "lee approved change request #1 for staging" in plain_body(mailbox.messages[1])
    assert "approved by: lee" in plain_body(mailbox.messages[1])


def test_a_route_without_events_hears_every_step_of_a_change_request() -> None:
    steps = {kind.value for kind in EventKind if kind.value.startswith("request-")}
    assert {"request-withdrawn", "request-held"} <= steps <= routing.DEFAULT_EVENTS
