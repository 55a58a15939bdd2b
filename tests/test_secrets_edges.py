"""Secrets never travel with a diff, at every edge, with real processes: the CLI (``diff``,
``show``, ``request show``, ``documents``), a real ``lastgood serve`` (API and web pages),
alerts a real watcher sends to a real webhook, and the warning ``snapshot`` prints. And the
stored version, and what goes live, keep the real bytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Workspace, eventually
from tests.serving import Server
from tests.test_notify import Webhook

Factory = Callable[..., Workspace]

SECRETS = """
[secrets]
keys = ["*crm_key*"]
paths = ["integrations/*.env"]
values = ["crm.yaml:$.auth.key"]
"""
OLD = {"key": "AAAA-1111-old", "api": "sk-old-aaaa-bbbb", "crm": "crm-old-zzzz", "env": "ENV=one-1"}
NEW = {"key": "BBBB-2222-new", "api": "sk-new-cccc-dddd", "crm": "crm-new-yyyy", "env": "ENV=two-2"}
EVERY_SECRET = [*OLD.values(), *NEW.values(), "one-1", "two-2"]


def write_version(ws: Workspace, values: dict[str, str], threshold: str) -> None:
    ws.write(
        "crm.yaml",
        f"auth:\n  key: {values['key']}\n  api_key: {values['api']}\n"
        f"crm_key: {values['crm']}\nthreshold: {threshold}\n",
    )
    ws.write("integrations/crm.env", values["env"] + "\n")


def assert_no_secret(text: str) -> None:
    for value in EVERY_SECRET:
        assert value not in text, value


@pytest.fixture
def ws(workspace: Factory) -> Workspace:
    """v1 (deployed on staging) and v2 (recorded): every secret changed, and the threshold."""
    ws = workspace(bake="0s", interval="10ms")
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + SECRETS)
    ws.healthy("one")
    write_version(ws, OLD, "0.4")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    write_version(ws, NEW, "0.5")
    assert ws.run("snapshot", "-m", "rotate the keys").returncode == 0
    return ws


# ---- CLI -------------------------------------------------------------------------------------


def test_cli_diff_shows_that_each_secret_changed_and_never_the_value(ws: Workspace) -> None:
    done = ws.run("diff", "v1", "v2")
    assert done.returncode == 0, done.stderr
    assert_no_secret(done.stdout)
    assert "-  key: ••••••#1\n" in done.stdout and "+  key: ••••••#4 (new value)\n" in done.stdout
    assert "+crm_key: ••••••#6 (new value)\n" in done.stdout
    assert "-(secret file: 10 bytes)\n+(secret file: 10 bytes, changed)\n" in done.stdout
    assert "-threshold: 0.4\n" in done.stdout and "+threshold: 0.5\n" in done.stdout
    as_json = json.loads(ws.run("diff", "v1", "v2", "--json").stdout)
    assert_no_secret(as_json["diff"])
    assert as_json["files"]["changed"] == ["crm.yaml", "integrations/crm.env"]
    live = ws.run("diff", "staging:live")  # against the folder
    assert live.returncode == 0 and "(new value)" in live.stdout
    assert_no_secret(live.stdout)
    revealed = ws.run("diff", "v1", "v2", "--reveal")
    assert f"+  key: {NEW['key']}" in revealed.stdout


def test_cli_show_masks_unless_revealed_and_the_version_keeps_the_real_bytes(ws: Workspace) -> None:
    one = ws.run("show", "v2", "crm.yaml")
    assert (
        one.stdout
        == "auth:\n  key: ••••••#1\n  api_key: ••••••#2\ncrm_key: ••••••#3\nthreshold: 0.5\n"
    )
    whole = ws.run("show", "v2", "integrations/crm.env")
    assert whole.stdout == "(secret file: 10 bytes)\n"
    as_json = ws.run("show", "v2", "--json")
    assert_no_secret(as_json.stdout)
    revealed = ws.run("show", "v2", "integrations/crm.env", "--reveal")
    assert revealed.stdout == NEW["env"] + "\n"

    stored = ws.project().store.files(2)  # the store: the exact bytes, nothing masked
    assert stored["integrations/crm.env"] == (NEW["env"] + "\n").encode()
    assert f"api_key: {NEW['api']}".encode() in stored["crm.yaml"]
    live = (ws.base / "live" / "current" / "crm.yaml").read_text()  # and so does the target
    assert f"key: {OLD['key']}" in live


def test_reveal_is_refused_through_a_server(ws: Workspace) -> None:
    done = ws.run("--server", "http://127.0.0.1:9", "show", "v2", "crm.yaml", "--reveal")
    assert done.returncode == 2 and "--reveal works on the store only" in done.stderr


def test_request_show_masks_the_diff_approvers_read(ws: Workspace) -> None:
    write_version(ws, {**NEW, "crm": "crm-third-xxxx"}, "0.6")
    opened = ws.run("request", "staging", "-m", "rotate")
    assert opened.returncode == 0, opened.stderr
    shown = ws.run("request", "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert "+crm_key: ••••••#" in shown.stdout and "(new value)" in shown.stdout
    assert_no_secret(shown.stdout) and "crm-third-xxxx" not in shown.stdout
    as_json = json.loads(ws.run("request", "show", "1", "--json").stdout)
    assert "crm-third-xxxx" not in as_json["diff"] and "(new value)" in as_json["diff"]


def test_snapshot_deploy_and_request_warn_of_a_credential_outside_a_marked_key(
    ws: Workspace,
) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
    ws.write("prompts/system.md", f"You are helpful.\nUse {token} for the repo.\n")
    done = ws.run("snapshot", "-m", "oops")
    assert done.returncode == 0  # a warning, never a refusal
    assert "warning: prompts/system.md line 2 holds what looks like a GitHub token" in done.stderr
    assert "hint: if it is a secret, mark it in lastgood.toml" in done.stderr
    assert token not in done.stderr + done.stdout
    again = ws.run("snapshot", "-m", "same")  # nothing new recorded: nothing to say again
    assert "warning" not in again.stderr

    ws.write("routing.yaml", "partner_ref: xK9mP2qL7vN4wR8tY3zB6cF1\n")
    deployed = ws.run("deploy", "staging", "-m", "routing")
    assert deployed.returncode == 0, deployed.stderr
    assert (
        "warning: routing.yaml line 1 holds what looks like a high-entropy string"
        in deployed.stderr
    )
    assert '[secrets] keys = ["partner_ref"]' in deployed.stderr
    ws.write("more.env", "SLACK=xoxb-1234567890-abcdefghijk\n")
    requested = ws.run("request", "staging", "-m", "slack")
    assert "warning: more.env line 1 holds what looks like a Slack token" in requested.stderr
    history = ws.run("history", "staging", "--json")
    assert "xoxb-1234567890" not in history.stdout


def test_reports_carry_no_file_content(ws: Workspace) -> None:
    done = ws.run("report", "--format", "text")
    assert done.returncode == 0, done.stderr
    assert_no_secret(done.stdout)


# ---- server: API and web pages --------------------------------------------------------------


@pytest.fixture
def server(ws: Workspace, serve: Callable[..., Server]) -> Server:
    return serve(ws)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.token("viewer")) as http:
        yield http


def test_api_diff_versions_and_request_diff_are_masked(ws: Workspace, api: httpx.Client) -> None:
    diff = api.get("/api/v1/diff", params={"old": "v1", "new": "v2"})
    assert diff.status_code == 200 and "(new value)" in diff.json()["diff"]
    assert_no_secret(diff.text)
    version = api.get("/api/v1/versions/v2")
    assert version.status_code == 200
    files = version.json()["files"]
    assert files["integrations/crm.env"]["content"] == "(secret file: 10 bytes)\n"
    assert "key: ••••••#1" in files["crm.yaml"]["content"]
    assert_no_secret(version.text)
    write_version(ws, {**NEW, "crm": "crm-third-xxxx"}, "0.6")
    assert ws.run("request", "staging", "-m", "rotate").returncode == 0
    request = api.get("/api/v1/requests/1")
    assert request.status_code == 200, request.text
    assert "(new value)" in request.json()["diff"] and "crm-third-xxxx" not in request.text


def test_api_refuses_a_secret_file_and_masks_values_in_the_others(api: httpx.Client) -> None:
    refused = api.get("/api/v1/versions/v2/files/integrations/crm.env")
    assert refused.status_code == 403
    assert "is a secret file" in refused.json()["error"] and NEW["env"] not in refused.text
    assert "--reveal" in refused.json()["hint"]
    masked = api.get("/api/v1/versions/v2/files/crm.yaml")
    assert masked.status_code == 200 and masked.headers["x-lastgood-masked"] == "yes"
    assert masked.text.startswith("auth:\n  key: ••••••#1\n")
    plain = api.get("/api/v1/versions/v2/files/health.txt")
    assert plain.content == b"ok\n" and "x-lastgood-masked" not in plain.headers


def test_snapshot_through_the_server_warns_too(ws: Workspace, server: Server) -> None:
    secret = server.token("deployer")
    ws.write("prompts/key.md", "AKIAIOSFODNN7EXAMPLE\n")
    done = ws.run("--server", server.url, "snapshot", "-m", "aws", env={"LASTGOOD_TOKEN": secret})
    assert done.returncode == 0, done.stderr
    assert (
        "warning: prompts/key.md line 1 holds what looks like an AWS access key id" in done.stderr
    )
    assert "AKIAIOSFODNN7EXAMPLE" not in done.stderr


def test_web_diff_and_version_pages_are_masked(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/login", data={"token": server.token("viewer")}).status_code == 303
        diff = http.get("/diff", params={"old": "v1", "new": "v2"})
        assert diff.status_code == 200 and "(new value)" in diff.text
        assert "(secret file: 10 bytes, changed)" in diff.text
        assert_no_secret(diff.text)
        first = http.get("/versions/v1")  # no parent: everything is added, still masked
        assert first.status_code == 200 and "••••••#1" in first.text
        assert_no_secret(first.text)
        second = http.get("/versions/v2")
        assert second.status_code == 200 and "(new value)" in second.text
        assert_no_secret(second.text)


# ---- alerts: drift and documents --------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


def test_drift_alerts_and_the_ledger_never_hold_the_edited_secret(
    ws: Workspace, webhook: Webhook
) -> None:
    route = f'\n[[notify.route]]\nto = "{webhook.url()}"\nevents = ["drift-detected"]\n'
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + route)
    live = ws.base / "live" / "current"
    (live / "crm.yaml").write_text(
        (live / "crm.yaml").read_text().replace(OLD["api"], "sk-hand-edit-9")
    )
    (live / "integrations" / "crm.env").write_text("ENV=by-hand\n")
    done = ws.run("watch", "--cycles", "1")
    assert done.returncode == 0, done.stderr
    body = eventually(webhook.bodies)[0]
    text = json.dumps(body, ensure_ascii=False)
    assert "+  api_key: ••••••#" in text and "(secret file: 12 bytes, changed)" in text
    assert "sk-hand-edit-9" not in text and "by-hand" not in text
    assert_no_secret(text)
    ledger = ws.run("history", "staging", "--json").stdout
    assert "sk-hand-edit-9" not in ledger and "drift-detected" in ledger


def test_document_changes_are_masked_in_alerts_and_views(ws: Workspace, webhook: Webhook) -> None:
    extra = (
        f'\n[[notify.route]]\nto = "{webhook.url()}"\nevents = ["document-changed"]\n'
        '\n[[watch.document]]\nname = "partner"\npath = "../partner.yaml"\n'
    )
    (ws.root / "lastgood.toml").write_text((ws.root / "lastgood.toml").read_text() + extra)
    partner = ws.base / "partner.yaml"
    partner.write_text("token: partner-token-one\nrate: 3\n")
    assert ws.run("documents", "check").returncode == 0  # the baseline
    partner.write_text("token: partner-token-two\nrate: 4\n")
    assert ws.run("documents", "check").returncode == 0
    text = json.dumps(eventually(webhook.bodies)[0], ensure_ascii=False)
    assert "+token: ••••••#2 (new value)" in text and "+rate: 4" in text
    assert "partner-token" not in text
    for args in (("show", "partner", "--diff"), ("show", "partner")):
        done = ws.run("documents", *args)
        assert done.returncode == 0, done.stderr
        assert "partner-token" not in done.stdout and "••••••#" in done.stdout
    log = ws.run("documents", "log", "partner", "--json")
    assert "partner-token" not in log.stdout
    assert "+token: ••••••#2 (new value)" in json.loads(log.stdout)[0]["diff"]
