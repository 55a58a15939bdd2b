"""Change requests through a real ``lastgood serve``: the API, the approver role, and every
``lastgood request`` subcommand with ``--server``.

Three people hold real tokens, named as ``[groups]`` names them: dana opens requests with a
deployer token, lee and sam approve with approver tokens for production; kim approves only on
staging, and the page only reads. Production needs two approvals from the leads.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lastgood.operations.tokens import create_token
from tests.conftest import Workspace, config_text
from tests.requests_team import production_config
from tests.serving import Server
from tests.test_cli_remote import consumer_serves, elsewhere, no_secret, remote

PRODUCTION = production_config("required = 2\n")


class Team:
    """The server, and a token for each person (by name) and role."""

    def __init__(self, ws: Workspace, server: Server, tokens: dict[str, str]) -> None:
        self.ws = ws
        self.server = server
        self.tokens = tokens

    def cli(self, person: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``lastgood --server URL --token T …`` in the workspace folder (it uploads from it)."""
        done = remote(self.server, self.tokens[person], *args, cwd=self.ws.root)
        no_secret(done, self.tokens[person])
        return done

    def api(self, person: str, method: str, path: str, body: Any = None) -> httpx.Response:
        with self.server.client(self.tokens[person]) as http:
            return http.request(method, f"/api/v1{path}", json=body)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    ws = Workspace(tmp_path_factory.mktemp("team"), config_text(bake="0s") + PRODUCTION)
    ws.healthy("one")
    project = ws.project()
    people = {"dana": ("deployer", ["production"]), "sam": ("approver", ["production"]),
              "dana-as-approver": ("approver", ["production"]),  # the same person, two tokens
              "kim": ("approver", ["staging"]), "page": ("viewer", [])}  # fmt: skip
    tokens = {key: create_token(project, name=key.split("-")[0], role=role, envs=envs)[1]
              for key, (role, envs) in people.items()}  # fmt: skip
    server = Server(ws).start()
    tokens["lee"] = server.token("approver", "production", name="lee")  # the real CLI, once
    try:
        yield Team(ws, server, tokens)
    finally:
        server.close()
        ws.close()
        log = server.log.read_text()
        assert "Traceback" not in log, log


def test_three_people_open_approve_and_apply_a_request_through_the_server(team: Team) -> None:
    opened = team.cli("dana", "request", "production", "-m", "first scoring")
    assert opened.returncode == 0, opened.stderr
    assert "uploaded the folder as v1" in opened.stderr
    assert "opened change request #1 for production" in opened.stderr
    assert opened.stdout.startswith("request   #1  production  v1 (based on nothing live)\n")
    assert "needs     2 approvals from leads (default)" in opened.stdout

    mine = team.cli("dana-as-approver", "request", "approve", "1", "-m", "looks fine to me")
    assert mine.returncode == 5 and "dana opened #1 and cannot approve it too" in mine.stderr
    self_approval = team.api("dana-as-approver", "POST", "/requests/1/approve", {"message": "x"})
    assert self_approval.status_code == 409 and self_approval.json()["exit_code"] == 5
    viewer = team.api("page", "POST", "/requests/1/approve", {"message": "x"})
    assert viewer.status_code == 403 and "it needs approver on 'production'" in viewer.text
    elsewhere = team.api("kim", "POST", "/requests/1/approve", {"message": "x"})
    assert elsewhere.status_code == 403
    assert "token 'kim' (approver on staging)" in elsewhere.json()["error"]
    deployer = team.api("dana", "POST", "/requests/1/reject", {"message": "x"})
    assert deployer.status_code == 403

    lee = team.cli("lee", "request", "approve", "1", "-m", "checked the thresholds")
    assert lee.returncode == 0, lee.stderr
    assert "approved  lee" in lee.stdout and "missing   1 more: " in lee.stdout
    sam = team.api("sam", "POST", "/requests/1/approve", {"message": "agreed"})
    assert sam.status_code == 200 and sam.json()["state"] == "approved"
    assert sam.json()["approved_by"] == ["lee", "sam"]

    sneak = team.cli("dana", "deploy", "production", "--version", "v1", "-m", "sneak it in")
    assert sneak.returncode == 5
    assert "production takes changes only through an approved change request" in sneak.stderr
    assert team.api("dana", "POST", "/envs/production/deploy", {"version": "v1"}).status_code == 409

    applied = team.api("dana", "POST", "/requests/1/apply")
    assert applied.status_code == 200, applied.text
    outcome = applied.json()
    assert outcome["exit_code"] == 0 and outcome["version"] == 1
    assert outcome["deployment"]["actor"] == "dana" and outcome["deployment"]["source"] == "request"
    live = team.ws.base / "prod" / "current" / "scoring" / "thresholds.yaml"
    assert live.read_text().endswith("marker: one\n")

    shown = team.api("page", "GET", "/requests/1").json()
    assert shown["state"] == "applied" and shown["requester"] == "dana"
    timeline = [(e["action"], e["actor"], e["via"]) for e in shown["timeline"]]
    assert timeline == [("opened", "dana", "server"), ("approved", "lee", "server"),
                        ("approved", "sam", "server"), ("applying", "dana", "server"),
                        ("applied", "dana", "server")]  # fmt: skip
    assert "+marker: one" in shown["diff"]
    through = team.cli("page", "request", "show", "1", "--json")
    assert json.loads(through.stdout) == shown
    text = team.cli("page", "request", "show", "1")
    assert text.returncode == 0 and "state     applied" in text.stdout
    assert "+marker: one" in text.stdout


def test_update_reject_withdraw_list_and_apply_through_the_cli(team: Team) -> None:
    team.ws.healthy("two")
    opened = json.loads(team.cli("dana", "request", "production", "-m", "two", "--json").stdout)
    number = str(opened["number"])
    rejected = team.cli("lee", "request", "reject", number, "-m", "not this marker")
    assert rejected.returncode == 0 and "rejected  lee" in rejected.stdout
    not_theirs = team.cli("lee", "request", "withdraw", number)
    assert not_theirs.returncode == 5 and "only they can withdraw it" in not_theirs.stderr

    team.ws.healthy("three")
    updated = team.cli("dana", "request", "update", number, "-m", "marker three")
    assert updated.returncode == 0, updated.stderr
    version = re.search(r"uploaded the folder as (v\d+)", updated.stderr)
    assert version is not None and "state     waiting" in updated.stdout
    assert version.group(1) != f"v{opened['version']}"
    assert "dismissed" not in updated.stdout  # a rejection is no approval to dismiss
    for person in ("lee", "sam"):
        assert team.cli(person, "request", "approve", number).returncode == 0
    applied = team.cli("dana", "request", "apply", number)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith(f"{version.group(1)} is live on production")
    assert f"applying request #{number} through" in applied.stderr

    team.ws.healthy("four")
    withdrawn = team.cli("dana", "request", "production", "-m", "four")
    assert withdrawn.returncode == 0
    last = str(int(number) + 1)
    gone = team.cli("dana", "request", "withdraw", last, "-m", "changed my mind", "--json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["state"] == "withdrawn"

    listed = json.loads(team.cli("page", "request", "list", "--json").stdout)
    assert [(r["number"], r["state"]) for r in listed][:2] == [
        (int(last), "withdrawn"), (int(number), "applied")]  # fmt: skip
    assert team.api("page", "GET", "/requests?state=withdrawn").json()[0]["number"] == int(last)
    text = team.cli("page", "request", "list", "--env", "production")
    assert text.returncode == 0 and f"#{last}" in text.stdout and "withdrawn" in text.stdout
    seen_by_kim = json.loads(team.cli("kim", "request", "list", "--json").stdout)
    assert {r["env"] for r in seen_by_kim} <= {"staging"}  # kim's token is for staging only
    hidden = team.cli("kim", "request", "show", number)
    assert hidden.returncode == 5 and "needs viewer on 'production'" in hidden.stderr


def test_the_server_asks_for_a_recorded_version(team: Team) -> None:
    missing = team.api("dana", "POST", "/envs/production/requests", {"message": "why"})
    assert missing.status_code == 400 and missing.json()["exit_code"] == 2
    assert 'needs "version": the server has no folder' in missing.json()["error"]
    assert "POST /api/v1/versions" in missing.json()["hint"]
    unknown = team.api("dana", "POST", "/envs/nowhere/requests", {"message": "m", "version": "v1"})
    assert unknown.status_code == 404
    nothing = team.api("page", "GET", "/requests/999")
    assert nothing.status_code == 404 and "no change request #999" in nothing.json()["error"]
    staging = team.api("kim", "POST", "/envs/staging/requests", {"message": "m", "version": "v1"})
    assert staging.status_code == 201 and staging.json()["requester"] == "kim"
    assert staging.json()["env"] == "staging" and staging.json()["state"] == "waiting"


def test_the_api_takes_strict_booleans_and_plain_text_as_the_cli_does(team: Team) -> None:
    before = team.api("page", "GET", "/requests?limit=1000").json()
    for truthy in ("yes", "true", 1, "1", "on"):
        body = {"message": "typo", "version": "v1", "emergency": truthy}
        sloppy = team.api("dana", "POST", "/envs/production/requests", body)
        assert sloppy.status_code == 422, (truthy, sloppy.text)
        assert "emergency: Input should be a valid boolean" in sloppy.json()["error"]
    for path, field in (("/envs/staging/deploy", "force"), ("/envs/staging/deploy", "dry_run"),
                        ("/envs/staging/deploy", "ignore_baseline"),
                        ("/envs/staging/rollback", "force"),
                        ("/envs/staging/drill", "override_protection")):  # fmt: skip
        answer = team.api("kim", "POST", path, {"version": "v1", field: "yes"})
        assert answer.status_code == 422, (path, field, answer.text)
        assert f"{field}: Input should be a valid boolean" in answer.json()["error"]
    upload = {"files": {"a.txt": {"content": "a"}}, "git_dirty": "no"}
    assert team.api("kim", "POST", "/versions", upload).status_code == 422
    assert team.api("page", "GET", "/requests?limit=1000").json() == before

    team.ws.healthy("plain")
    opened = json.loads(team.cli("dana", "request", "production", "-m", "plain", "--json").stdout)
    number = str(opened["number"])
    bare = team.cli("lee", "request", "reject", number, "-m", " ")
    assert bare.returncode == 2 and f"rejecting #{number} needs a reason" in bare.stderr
    empty = team.cli("lee", "request", "reject", number, "-m", "")
    assert empty.returncode == 2 and f"rejecting #{number} needs a reason" in empty.stderr
    unsaid = team.api("lee", "POST", f"/requests/{number}/reject", {})
    assert unsaid.status_code == 422 and "message: Field required" in unsaid.json()["error"]
    for text in ("ok\x1b[2K", "pay \u202eevil"):
        hostile = team.api("lee", "POST", f"/requests/{number}/approve", {"message": text})
        assert hostile.status_code == 400 and hostile.json()["exit_code"] == 2
        assert "holds a control character" in hostile.json()["error"]
    blank = team.cli("dana", "request", "update", number, "--version", "", "-m", "x")
    assert blank.returncode == 2 and "names no version" in blank.stderr
    assert "uploaded" not in blank.stderr
    shown = team.cli("page", "request", "show", "\u0663")
    assert shown.returncode == 2 and "is not a request number" in shown.stderr
    timeline = team.api("page", "GET", f"/requests/{number}").json()["timeline"]
    assert [e["action"] for e in timeline] == ["opened"]
    assert team.cli("dana", "request", "withdraw", number).returncode == 0


def test_an_emergency_through_the_server_applies_at_once_and_is_signed_off(team: Team) -> None:
    team.ws.healthy("emergency")

    done = team.cli("dana", "request", "production", "--emergency", "-m", "scores are zero")

    assert done.returncode == 0, done.stderr
    assert "opened EMERGENCY change" in done.stderr and "state     applied" in done.stdout
    number = int(done.stdout.split("#", 1)[1].split()[0])
    live = team.ws.base / "prod" / "current" / "scoring" / "thresholds.yaml"
    assert live.read_text().endswith("marker: emergency\n")
    mine = team.api("dana-as-approver", "POST", f"/requests/{number}/signoff", {"message": "x"})
    assert mine.status_code == 409 and "cannot sign off its review" in mine.text
    signed = team.cli("sam", "request", "signoff", str(number), "-m", "right fix")
    assert signed.returncode == 0 and "emergency review signed off" in signed.stdout
    team.ws.healthy("later")
    scheduled = team.cli("dana", "request", "production", "-m", "later", "--at",
                         "2096-10-05T06:00+00:00", "--json")  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    assert json.loads(scheduled.stdout)["apply_at"] == 4_000_255_200


def test_revert_through_the_server_deploys_or_on_a_gated_environment_opens_a_request(
    team: Team,
) -> None:
    for text, marker in (("old\n", "s1"), ("new\n", "s2")):
        team.ws.write("prompts/score.txt", text)
        team.ws.healthy(marker)
        deployed = team.cli("kim", "deploy", "staging", "-m", marker)
        assert deployed.returncode == 0, deployed.stderr
    first = re.findall(r"uploaded the folder as (v\d+)", deployed.stderr)[0]

    done = team.cli("kim", "revert", "staging", "prompts/score.txt", "-m", "wording drops leads")

    assert done.returncode == 0, done.stderr
    assert "reverting prompts/score.txt on staging through" in done.stderr
    assert re.search(r"prompts/score.txt: from v\d+\n", done.stderr)
    made = re.search(r"recorded (v\d+): 1 file differs from what is live", done.stderr)
    assert made is not None and made.group(1) != first
    assert done.stdout.startswith(f"{made.group(1)} is live on staging")
    live = team.ws.base / "live" / "current"
    assert (live / "prompts" / "score.txt").read_text() == "old\n"
    assert (live / "scoring" / "thresholds.yaml").read_text().endswith("marker: s2\n")
    history = team.api("page", "GET", "/envs/staging/history").json()["deployments"][0]
    assert (history["actor"], history["source"]) == ("kim", "revert")

    prod = team.ws.base / "prod" / "current" / "scoring" / "thresholds.yaml"
    before = prod.read_text()
    body = {"paths": ["scoring/thresholds.yaml"], "from": "v1", "message": "back to one"}
    answer = team.api("dana", "POST", "/envs/production/revert", body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["outcome"] is None and data["exit_code"] == 0
    assert data["taken"] == {"scoring/thresholds.yaml": "v1"}
    assert data["changed"] == ["scoring/thresholds.yaml"]
    request = data["request"]
    assert request["state"] == "waiting" and request["requester"] == "dana"
    assert request["version"] == data["version"]["number"]
    assert [(e["action"], e["via"]) for e in request["timeline"]] == [("opened", "server")]
    assert prod.read_text() == before  # approvers first

    gated = team.cli("dana", "revert", "production", "scoring/", "--from", "v1", "-m", "again")
    assert gated.returncode == 0, gated.stderr
    assert "production requires approval: next, its approvers review #" in gated.stderr
    assert re.match(r"change request #\d+ for production: v\d+, waiting for 2 more", gated.stdout)
    as_json = team.cli("dana", "revert", "production", "health.txt", "--from", "v1", "-m", "x",
                       "--json")  # fmt: skip
    assert as_json.returncode == 5 and "health.txt already read on production" in as_json.stderr
    assert prod.read_text() == before

    viewer = team.api("page", "POST", "/envs/production/revert", body)
    assert viewer.status_code == 403 and "needs deployer on 'production'" in viewer.text
    blank = team.api("dana", "POST", "/envs/production/revert", {**body, "message": " "})
    assert blank.status_code == 400 and "a revert needs a reason" in blank.json()["error"]
    nothing = team.api("dana", "POST", "/envs/production/revert", {**body, "paths": []})
    assert nothing.status_code == 422


def test_a_review_through_the_server_names_the_content_it_saw(team: Team) -> None:
    team.ws.healthy("seen")
    opened = json.loads(team.cli("dana", "request", "production", "-m", "seen", "--json").stdout)
    number, seen = opened["number"], opened["content_hash"]
    shown = team.cli("lee", "request", "show", str(number), "--no-diff")
    assert f"content   {seen[:12]}\n" in shown.stdout
    team.ws.healthy("unseen")
    assert team.cli("dana", "request", "update", str(number), "-m", "unseen").returncode == 0
    now = team.api("page", "GET", f"/requests/{number}").json()["content_hash"]

    late = team.cli("lee", "request", "approve", str(number), "--content", seen[:12])
    assert late.returncode == 5, late.stderr
    assert f"#{number} holds other content than you saw: you saw {seen[:12]}, it holds " \
           f"{now[:12]} now" in late.stderr  # fmt: skip
    assert f"'lastgood request show {number}'" in late.stderr
    api = team.api("sam", "POST", f"/requests/{number}/reject",
                   {"message": "no", "content_hash": seen})  # fmt: skip
    assert api.status_code == 409 and api.json()["exit_code"] == 5
    bad = team.api("sam", "POST", f"/requests/{number}/approve", {"content_hash": "zz"})
    assert bad.status_code == 400 and "is not the content hash" in bad.json()["error"]
    timeline = team.api("page", "GET", f"/requests/{number}").json()["timeline"]
    assert [e["action"] for e in timeline] == ["opened", "updated"]  # nothing recorded

    approved = team.api("sam", "POST", f"/requests/{number}/approve", {"content_hash": now})
    assert approved.status_code == 200 and approved.json()["approved_by"] == ["sam"]
    again = team.cli("sam", "request", "approve", str(number), "--content", now[:12])
    assert again.returncode == 0, again.stderr
    assert f"sam already approved #{number} as it stands: nothing recorded" in again.stderr
    assert team.cli("dana", "request", "withdraw", str(number)).returncode == 0


def test_a_stale_request_is_refused_a_review_through_the_server_and_shows_stale(
    team: Team,
) -> None:
    team.ws.healthy("overtaken")
    opened = json.loads(team.cli("dana", "request", "production", "-m", "slow", "--json").stdout)
    number = str(opened["number"])
    team.ws.healthy("overtaking")
    jumped = team.cli("dana", "request", "production", "--emergency", "-m", "fix now", "--json")
    assert jumped.returncode == 0 and json.loads(jumped.stdout)["state"] == "applied"
    live = json.loads(jumped.stdout)["version"]

    late = team.cli("lee", "request", "approve", number, "-m", "looks fine")

    assert late.returncode == 5, late.stderr
    assert f"#{number} is stale: production serves v{live}, not " in late.stderr
    assert f"'lastgood request update {number}'" in late.stderr and "next:" not in late.stderr
    api = team.api("sam", "POST", f"/requests/{number}/approve", {"message": "x"})
    assert api.status_code == 409 and api.json()["exit_code"] == 5
    assert "is stale" in api.json()["error"]
    shown = team.cli("lee", "request", "show", number, "--no-diff")
    assert f"state     stale (production serves v{live}, not v" in shown.stdout
    assert "next:" not in shown.stderr
    data = team.api("page", "GET", f"/requests/{number}").json()
    assert data["state"] == "stale" and data["approved_by"] == []
    assert [e["action"] for e in data["timeline"]] == ["opened", "stale"]


def test_a_revert_through_the_server_waits_for_the_fleet_as_a_rollback_does(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = workspace(target="served", bake="0s", interval="10ms")
    for text, marker in (("old\n", "one"), ("new\n", "two")):
        ws.write("prompts/score.txt", text)
        ws.healthy(marker)
        assert ws.run("deploy", "staging", "-m", marker).returncode == 0
    server = serve(ws)
    pager = server.token("deployer", "staging", name="pager")
    consumer_serves(server, pager, 2)  # one consumer, on what is live

    def follow() -> None:  # it picks up the reverted version a second after it is recorded
        with server.client(pager) as http:
            while http.get("/api/v1/versions/v3").status_code != 200:
                time.sleep(0.01)
        time.sleep(1)
        consumer_serves(server, pager, 3)

    follower = threading.Thread(target=follow)
    follower.start()
    done = remote(server, pager, "revert", "staging", "prompts/score.txt", "-m", "wording",
                  cwd=elsewhere(ws))  # fmt: skip
    follower.join()

    assert done.returncode == 0, done.stderr
    assert re.search(r"^v3 live on 1/1 consumers in ", done.stdout, re.M), done.stdout
    body = {"paths": ["prompts/score.txt"], "from": "v2", "message": "x", "wait_fleet": 0}
    with server.client(pager) as http:
        quick = http.post("/api/v1/envs/staging/revert", json=body)
    assert quick.status_code == 200, quick.text  # nothing to wait for: answers at once
    assert quick.json()["outcome"]["fleet"]["complete"] is False


def test_an_approval_through_the_server_exits_as_the_apply_on_approval_it_started(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = workspace(bake="0s", interval="10ms")
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0  # v1, last known good
    config = ws.root / "lastgood.toml"
    config.write_text(
        config.read_text() + '[env.staging.approval]\napprovers = ["sam"]\napply = "on-approval"\n'
    )
    server = serve(ws)
    dana, sam = server.token("deployer", name="dana"), server.token("approver", name="sam")
    ws.broken("zero")
    opened = remote(server, dana, "request", "staging", "-m", "breaks the check", cwd=ws.root)
    assert opened.returncode == 0, opened.stderr

    approved = remote(server, sam, "request", "approve", "1", "-m", "ok", cwd=ws.root)

    assert approved.returncode == 3, approved.stderr
    assert "#1 was applied and failed: v2 failed 'health-file-ok' on staging" in approved.stderr
    assert "restored v1" in approved.stdout
    with server.client(sam) as http:
        answer = http.get("/api/v1/requests/1").json()
    assert answer["state"] == "failed" and "exit_code" not in answer
    ws.broken("zero again")
    assert remote(server, dana, "request", "staging", "-m", "again", cwd=ws.root).returncode == 0
    with server.client(sam) as http:
        api = http.post("/api/v1/requests/2/approve", json={"message": "ok"})
    assert api.status_code == 200 and api.json()["exit_code"] == 3, api.text


STORE_ONLY = {"init": ["init"], "watch": ["watch"], "serve": ["serve"],
              "notify": ["notify", "log"], "documents": ["documents", "check"],
              "audit": ["audit", "verify"], "store": ["store", "verify"],
              "prune": ["prune"]}  # fmt: skip
"""What docs/server.md says is refused through a server, and how each is tried here."""


def test_what_docs_server_md_says_of_each_command_through_a_server_holds(team: Team) -> None:
    page = (Path(__file__).parent.parent / "docs" / "server.md").read_text()
    row = next(
        line for line in page.splitlines() if line.startswith("|") and "refused with exit 2" in line
    )
    assert re.findall(r"`([a-z-]+)`", row.split("|")[1]) == list(STORE_ONLY)
    admin = team.server.token("admin", name="root")
    for args in STORE_ONLY.values():
        refused = remote(team.server, admin, *args, cwd=team.ws.root)
        assert refused.returncode == 2, (args, refused.stderr)
        assert f"'lastgood {args[0]}' works on a store only, not through a server" in (
            refused.stderr
        )

    made = remote(team.server, admin, "token", "create", "--name", "ci", "--role", "viewer",
                  "--json", cwd=elsewhere(team.ws))  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret, number = json.loads(made.stdout)["token"], json.loads(made.stdout)["id"]
    with team.server.client(secret) as http:
        assert http.get("/api/v1/envs").status_code == 200
    listed = remote(team.server, admin, "token", "list", cwd=elsewhere(team.ws))
    assert listed.returncode == 0 and re.search(rf"#{number}\s+ci\s+viewer", listed.stdout)
    revoked = remote(team.server, admin, "token", "revoke", str(number), cwd=elsewhere(team.ws))
    assert revoked.returncode == 0 and f"revoked token #{number} 'ci'" in revoked.stderr
    not_admin = remote(team.server, team.tokens["sam"], "token", "list", cwd=elsewhere(team.ws))
    assert not_admin.returncode == 5 and "needs admin" in not_admin.stderr
