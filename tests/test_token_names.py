"""A token's name is the actor of everything done with it (the ledger, request timelines, the
audit chain, mail), so it must read as what it is: names with control characters, bidi
overrides, a NUL byte, spaces at either end, or the reserved actors ``lastgood`` and
``schema-upgrade`` are refused, with exit 2 on the CLI and 400 from the API, on SQLite and
PostgreSQL (where a NUL used to reach the database and come back as a 503). And names that an
older store still holds are listed escaped by ``token list`` and ``request list``, never raw.
The rules in process are ``tests/operations/test_tokens.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lastgood.project import Project
from tests.conftest import FAST, Workspace
from tests.test_cli_remote import elsewhere, remote

ESCAPE = "cai\x1b[2K\r\x1b[32mcai"  # shows as "cai" on a terminal
REFUSED = {
    "escape": (ESCAPE, "U+001B (a control character)"),
    "nul": ("nul\x00x", "U+0000 (a control character)"),
    "c1": ("x\x85y", "U+0085 (a control character)"),
    "del": ("x\x7fy", "U+007F (a control character)"),
    "bidi": ("moc.\u202eevil", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    "isolate": ("a\u2066b", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    "spaces": (" ben ", "starts or ends with whitespace"),
    "reserved": ("lastgood", "is reserved"),
    "reserved-case": ("LastGood", "is reserved"),
    "chain": ("schema-upgrade", "is reserved"),
}


def names(project: Project) -> list[str]:
    return [token.name for token in project.store.tokens(include_revoked=True)]


@pytest.mark.parametrize("case", ["escape", "c1", "bidi", "spaces", "reserved"])
def test_the_cli_refuses_a_name_that_cannot_be_an_actor(
    workspace: Callable[..., Workspace], case: str
) -> None:
    ws = workspace(**FAST)
    name, said = REFUSED[case]
    done = ws.run("token", "create", "--name", name, "--role", "viewer")
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr  # the error escapes it
    assert names(ws.project()) == []


def test_the_api_refuses_those_names_with_400_on_either_store(
    workspace: Callable[..., Workspace], serve: Callable[..., Any], store_url: str
) -> None:
    ws = workspace(store=store_url, **FAST)
    server = serve(ws)
    admin = server.token("admin", name="root")
    with server.client(admin) as http:
        for case, (name, said) in REFUSED.items():
            answer = http.post("/api/v1/tokens", json={"name": name, "role": "approver"})
            assert answer.status_code == 400, (case, answer.status_code, answer.text)
            body = answer.json()
            assert said in body["error"], (case, body)
            assert "store" not in body.get("hint", ""), (case, body)  # not a store failure
        made = http.post("/api/v1/tokens", json={"name": "Zoë Ünal", "role": "viewer"})
        assert made.status_code == 200, made.text
    through = remote(server, admin, "token", "create", "--name", "lastgood", "--role", "viewer",
                     cwd=elsewhere(ws))  # fmt: skip
    assert through.returncode == 2 and "is reserved" in through.stderr
    assert names(ws.project()) == ["root", "Zoë Ünal"]


def test_names_an_older_store_holds_are_listed_escaped(
    workspace: Callable[..., Workspace], serve: Callable[..., Any]
) -> None:
    """A token and a request made before the checks, written straight to the store as an
    older lastgood would have: the listings show each hidden character escaped, locally and
    through the server, and ``--json`` keeps the name as it is."""
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("snapshot", "-m", "one").returncode == 0
    store = ws.project().store
    store.add_token(name=ESCAPE, role="approver", envs="", token_hash="e" * 64,
                    created_by="admin\u202e")  # fmt: skip
    content = store.version(1).content_hash
    entry = {"actor": ESCAPE, "action": "opened", "content_hash": content, "base_hash": ""}
    store.open_request(entry, env="staging", version=1, content_hash=content,
                       base_version=None, base_hash="", requester=ESCAPE, reason="why",
                       status="open", risk="low", routing="{}")  # fmt: skip
    server = serve(ws)
    admin = server.token("admin", name="root")
    shown = repr(ESCAPE)  # 'cai\x1b[2K\r\x1b[32mcai'
    for listing in (["token", "list"], ["request", "list"]):
        for done in (ws.run(*listing), remote(server, admin, *listing, cwd=elsewhere(ws))):
            assert done.returncode == 0, done.stderr
            assert "\x1b" not in done.stdout and "\r" not in done.stdout, listing
            assert "\u202e" not in done.stdout, listing
            assert shown in done.stdout, (listing, done.stdout)
    tokens = ws.run("token", "list")
    assert "'admin\\u202e'" in tokens.stdout
    listed = json.loads(ws.run("token", "list", "--json").stdout)
    assert ESCAPE in [token["name"] for token in listed]


def test_numbers_in_other_scripts_never_name_a_token_or_a_count(
    workspace: Callable[..., Workspace],
) -> None:
    """``int()`` reads U+0663 (an Arabic-Indic three) and U+FF13 (a full-width three) as 3: a
    token id that shows as another must not revoke token 3, nor a count read as another."""
    ws = workspace(**FAST)
    for _ in range(3):
        assert ws.run("token", "create", "--name", f"t{_}", "--role", "viewer").returncode == 0
    revoked = ws.run("token", "revoke", "\u0663")
    assert revoked.returncode == 2, revoked.stdout + revoked.stderr
    assert "is not a token id: write it in digits 0-9" in revoked.stderr
    assert all(token.revoked_at is None for token in ws.project().store.tokens())
    listed = ws.run("log", "-n", "\uff13")
    assert listed.returncode == 2 and "is not a count" in listed.stderr, listed.stderr
    assert ws.run("token", "revoke", "3").returncode == 0  # plain digits still work
