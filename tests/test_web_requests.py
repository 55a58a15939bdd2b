"""The change-request pages against a real ``lastgood serve``: the list (waiting for me, open,
recent), a request's page with its diff, review and timeline, the buttons each role sees, the
refusals (a forged form, a role that does not allow the step, self-approval, a request that
changed or went stale, a freeze) shown on the page, and the whole approve-and-apply flow in a
real browser (Debian's Chromium through Playwright) on SQLite and PostgreSQL. Nothing is mocked.

The people hold real tokens named as ``[groups]`` names them: alex opens requests (deployer),
lee and sam approve production (leads), kim approves only staging, dana applies (deployer),
finance only reads.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from lastgood.operations import requests as verbs
from lastgood.operations.tokens import create_token
from tests.conftest import Workspace
from tests.requests_team import production_config
from tests.serving import Server
from tests.test_cli_remote import consumer_serves, no_secret, remote
from tests.test_web import CHROMIUM, csrf_of

PEOPLE = {"alex": ("deployer", []), "alex-as-approver": ("approver", ["production"]),
          "lee": ("approver", ["production"]), "sam": ("approver", ["production"]),
          "kim": ("approver", ["staging"]), "dana": ("deployer", ["production", "staging"]),
          "finance": ("viewer", [])}  # fmt: skip


def config(freeze_staging: bool = False) -> str:
    """Production needs one of the leads; its freeze starts in an hour (so it is coming); with
    ``freeze_staging``, staging is frozen now."""
    soon, later = time.time() + 3600, time.time() + 7200
    frozen = """
        [[env.staging.freeze]]
        name = "audit"
        reason = "the auditors are in"
        from = "2020-01-01 00:00"
        until = "2099-01-01 00:00"
        """
    coming = f"""
        [[env.production.freeze]]
        name = "release"
        reason = "release night"
        from = "{_iso(soon)}"
        until = "{_iso(later)}"

        [env.staging]
        target = {{ type = "directory", path = "../stage", keep = 5 }}
        bake = "0s"
        interval = "10ms"
        """
    return production_config() + textwrap.dedent(coming + (frozen if freeze_staging else ""))


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


class Team:
    """A workspace, its server, and each person's token (by the keys of :data:`PEOPLE`)."""

    def __init__(self, ws: Workspace, server: Server, secrets: dict[str, str]) -> None:
        self.ws, self.server, self.secrets = ws, server, secrets

    def project(self, person: str = "alex") -> Any:
        return self.ws.project().acting_as(person)

    def version(self, prompt: str, why: str) -> str:
        """Record the folder with ``prompt`` as a version; its label."""
        self.ws.write("prompts/score.txt", prompt + "\n")
        done = self.ws.run("snapshot", "-m", why)
        assert done.returncode == 0, done.stderr
        return re.findall(r"v\d+", done.stderr + done.stdout)[0]

    def timeline(self, number: int) -> list[tuple[str, str, str]]:
        """What request ``number``'s timeline holds: equal before and after means unchanged."""
        view = verbs.show_request(self.project(), number)
        return [(entry.actor, entry.action, entry.comment) for entry in view.entries]

    @contextlib.contextmanager
    def signed_in(self, person: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.server.url, timeout=60) as http:
            answer = http.post("/login", data={"token": self.secrets[person]})
            assert answer.status_code == 303, answer.text
            yield http


@pytest.fixture
def team(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], request: Any
) -> Iterator[Team]:
    store = getattr(request, "param", None)
    ws = workspace(store=request.getfixturevalue(store) if store == "pg_url" else None)
    ws.write("lastgood.toml", config(freeze_staging=True))
    ws.healthy("one")
    project = ws.project()
    secrets = {key: create_token(project, name=key.split("-")[0], role=role, envs=envs)[1]
               for key, (role, envs) in PEOPLE.items()}  # fmt: skip
    server = serve(ws)
    yield Team(ws, server, secrets)
    log = server.log.read_text()
    assert "Traceback" not in log and all(s not in log for s in secrets.values()), log


def forms_of(html: str) -> set[str]:
    """The actions of the POST forms on a page, and of the buttons that post elsewhere."""
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    return set(actions + re.findall(r'formaction="([^"]+)"', html)) - {"/logout"}


def shown_of(html: str) -> str:
    found = re.search(r'name="shown" value="([^"]+)"', html)
    assert found, "no 'shown' field on the page"
    return found.group(1)


def shown_now(team: Team, number: int) -> str:
    """What a form for request ``number`` would say it showed, for a post from a page that
    offers no such form (a step the page does not offer is refused by the verb all the same)."""
    request = verbs.show_request(team.project(), number).request
    return f"{request.content_hash}:{request.base_hash}"


def test_each_role_sees_only_its_buttons_and_every_post_checks_again(team: Team) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    verbs.open_request(team.project("alex"), "production", reason="first prompt", ref=v1)
    before = team.timeline(1)

    with team.signed_in("finance") as http:
        page = http.get("/requests/1")
        assert page.status_code == 200 and forms_of(page.text) == set()
        assert '<span class="add">+Score each lead from 0 to 100.' in page.text
        assert "1 approval from leads (default)" in page.text
        refused = http.post("/requests/1/approve", data={"csrf": csrf_of(page.text)})
        assert (
            refused.status_code == 403 and "needs approver on &#39;production&#39;" in refused.text
        )
    with team.signed_in("dana") as http:
        page = http.get("/requests/1")
        assert forms_of(page.text) == set()  # a deployer applies, once it is approved
        csrf = csrf_of(page.text)
        assert http.post("/requests/1/approve", data={"csrf": csrf}).status_code == 403
        early = http.post("/requests/1/apply", data={"csrf": csrf, "shown": shown_now(team, 1)})
        assert early.status_code == 409 and "#1 is not approved: it still needs" in early.text
        assert "Change request #1 for" in early.text and "Traceback" not in early.text
    with team.signed_in("kim") as http:
        other = http.get("/requests/1")  # an approver of staging only
        assert other.status_code == 403 and "needs viewer on &#39;production&#39;" in other.text
    with team.signed_in("alex-as-approver") as http:
        page = http.get("/requests/1")
        assert forms_of(page.text) == set()  # not a lead
        assert "alex is not among the approvers this request needs" in page.text
        form = {"csrf": csrf_of(page.text), "shown": shown_now(team, 1)}
        own = http.post("/requests/1/approve", data={**form, "message": "ok"})
        assert own.status_code == 409 and "alex opened #1 and cannot approve it too" in own.text
        other = http.post("/requests/1/reject", data={**form, "message": "no"})
        assert other.status_code == 409 and "alex is not an approver of #1" in other.text
    assert team.timeline(1) == before
    verbs.open_request(team.project("sam"), "production", reason="sam's own", ref=v1)
    with team.signed_in("sam") as http:
        page = http.get("/requests/2")
        assert forms_of(page.text) == {"/requests/2/reject"}  # a lead, but its requester
        assert "sam opened this request: someone else approves it" in page.text
        form = {"csrf": csrf_of(page.text), "shown": shown_of(page.text), "message": "ok"}
        own = http.post("/requests/2/approve", data=form)
        assert own.status_code == 409 and "sam opened #2 and cannot approve it too" in own.text
        assert [action for _, action, _ in team.timeline(2)] == ["opened"]

    with team.signed_in("lee") as http:
        page = http.get("/requests/1")
        assert forms_of(page.text) == {"/requests/1/approve", "/requests/1/reject"}
        good = csrf_of(page.text)
        for form in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": good + "x"}):
            for step in ("approve", "reject", "apply", "signoff"):
                answer = http.post(f"/requests/1/{step}", data={**form, "message": "forged"})
                assert answer.status_code == 403, (step, form)
                assert "security code (CSRF) is missing or wrong" in answer.text
        assert team.timeline(1) == before

        bare = http.post("/requests/1/reject", data={"csrf": good, "shown": shown_of(page.text)})
        assert bare.status_code == 400 and "write why you reject #1" in bare.text
        assert http.get("/requests/nope").status_code == 404
        assert http.get("/requests/99").status_code == 404
        assert team.timeline(1) == before


def test_an_approval_covers_what_the_page_showed_and_a_stale_request_says_so(team: Team) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    v2 = team.version("Score each lead from 0 to 100. Be strict.", "stricter")
    for ref in (v1, v1):  # both based on nothing live; #1 moves on to v2 below
        verbs.open_request(team.project("alex"), "production", reason=f"propose {ref}", ref=ref)

    with team.signed_in("lee") as http:
        page = http.get("/requests/1")
        old = shown_of(page.text)
        verbs.update_request(team.project("alex"), 1, ref=v2, reason="stricter after all")
        form = {"csrf": csrf_of(page.text), "shown": old, "message": "ok"}
        moved = http.post("/requests/1/approve", data=form)
        assert moved.status_code == 409
        assert "#1 changed since you opened it: it proposes v2" in moved.text
        assert "Be strict." in moved.text  # the page shows what it holds now
        assert [a for _, a, _ in team.timeline(1)] == ["opened", "updated"]

        for number in (1, 2):
            page = http.get(f"/requests/{number}")
            done = http.post(
                f"/requests/{number}/approve",
                data={
                    "csrf": csrf_of(page.text),
                    "shown": shown_of(page.text),
                    "message": "reads well",
                },
            )
            assert done.status_code == 303 and done.headers["location"] == (
                f"/requests/{number}?done=approved"
            )
            shown = http.get(done.headers["location"]).text
            assert f"You approved #{number}." in shown and "It is ready to apply." in shown

    with team.signed_in("dana") as http:
        page = http.get("/requests/1")
        assert forms_of(page.text) == {"/requests/1/apply"}
        applied = http.post(
            "/requests/1/apply", data={"csrf": csrf_of(page.text), "shown": shown_of(page.text)}
        )
        assert applied.status_code == 303
        shown = http.get(applied.headers["location"]).text
        assert "Applied: v2 is live on production" in shown
        assert (team.ws.base / "prod" / "current" / "prompts" / "score.txt").read_text() == (
            "Score each lead from 0 to 100. Be strict.\n"
        )

        with team.signed_in("lee") as lee:  # nor Approve or Reject: a review would be refused
            assert forms_of(lee.get("/requests/2").text) == set()
        page = http.get("/requests/2")  # production moved on: no Apply button any more
        assert '<span class="tag state-stale">stale</span>' in page.text
        assert forms_of(page.text) == set()
        form = {"csrf": csrf_of(page.text), "shown": shown_now(team, 2)}
        stale = http.post("/requests/2/apply", data=form)  # anyway
        assert stale.status_code == 409 and "#2 is stale: production serves v2" in stale.text
        assert '<span class="tag state-stale">stale</span>' in stale.text
        assert "request update 2" in stale.text and "Traceback" not in stale.text


def test_a_form_that_does_not_say_what_it_showed_is_refused(team: Team) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    v2 = team.version("Score each lead from 0 to 100. Be strict.", "stricter")
    verbs.open_request(team.project("alex"), "production", reason="first prompt", ref=v1)
    before = team.timeline(1)

    with team.signed_in("lee") as http:
        page = http.get("/requests/1")
        verbs.update_request(team.project("alex"), 1, ref=v2, reason="changed under the reviewer")
        changed = team.timeline(1)
        for shown in ({}, {"shown": ""}, {"shown": ":"}, {"shown": "nohashes"}):
            for step in ("approve", "reject", "apply", "signoff"):
                form = {"csrf": csrf_of(page.text), "message": "x", **shown}
                answer = http.post(f"/requests/1/{step}", data=form)
                assert answer.status_code == 400, (step, shown, answer.text)
                assert "does not say which content it showed you" in answer.text
                assert "Be strict." in answer.text  # the page shows what it holds now
        page = http.get("/requests/1")
        form = {"csrf": csrf_of(page.text), "shown": shown_of(page.text)}
        long = http.post("/requests/1/approve", data={**form, "message": "x" * 2001})
        assert long.status_code == 400 and "the comment is 2001 characters long" in long.text
        bidi = http.post("/requests/1/approve", data={**form, "message": "ok \u202eevil"})
        assert bidi.status_code == 400 and "a control character (U+202E" in bidi.text
        assert http.get("/requests/\u0661").status_code == 404  # an Arabic-Indic one
        assert team.timeline(1) == changed and changed[: len(before)] == before
        assert verbs.show_request(team.project(), 1).state == "waiting"


def test_the_list_says_what_waits_for_whom_and_emergencies_wait_for_a_sign_off(
    team: Team,
) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    v2 = team.version("Score each lead, strictly.", "strict")
    verbs.open_request(team.project("alex"), "production", reason="first prompt", ref=v1)

    def sections(person: str) -> dict[str, str]:
        with team.signed_in(person) as http:
            html = http.get("/requests").text
        parts = re.split(r'<section class="card" id="', html)[1:]
        return {part.split('"', 1)[0]: part for part in parts}

    lee = sections("lee")
    assert 'id="request-1"' in lee["waiting-for-me"] and 'id="request-1"' in lee["open"]
    assert "1 approval from leads (default)" in lee["waiting-for-me"]
    for person in ("alex-as-approver", "kim", "dana", "finance"):
        assert 'id="request-' not in sections(person)["waiting-for-me"], person
    assert 'id="request-1"' not in sections("kim")["open"]  # staging only: not its request

    verbs.review_request(team.project("lee"), 1, approve=True, comment="fine")
    assert 'id="request-1"' not in sections("sam")["waiting-for-me"]  # approved: nobody waits
    verbs.apply_request(team.project("dana"), 1)
    emergency = verbs.open_request(team.project("alex"), "production", reason="zero scores",
                                   ref=v2, emergency=True)  # fmt: skip
    assert emergency.request.status == "applied" and emergency.review_open
    lee = sections("lee")
    assert (
        'id="request-2"' in lee["waiting-for-me"]
        and "a sign-off of its review" in lee["waiting-for-me"]
    )
    assert 'id="request-1"' in lee["recent"] and 'id="request-1"' not in lee["open"]
    assert 'id="request-2"' not in sections("alex-as-approver")["waiting-for-me"]

    with team.signed_in("lee") as http:
        page = http.get("/requests/2")
        assert "EMERGENCY" in page.text and "review open: someone other than alex" in page.text
        assert forms_of(page.text) == {"/requests/2/signoff"}
        done = http.post(
            "/requests/2/signoff",
            data={"csrf": csrf_of(page.text), "shown": shown_of(page.text), "message": "right fix"},
        )
        assert done.status_code == 303
        assert (
            "You signed off the review of emergency #2." in http.get(done.headers["location"]).text
        )
    assert 'id="request-2"' not in sections("lee")["waiting-for-me"]
    assert ("lee", "signed-off", "right fix") in team.timeline(2)


def test_the_environment_page_shows_its_requests_and_freezes_and_a_freeze_holds_an_apply(
    team: Team,
) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    verbs.open_request(team.project("alex"), "production", reason="first prompt", ref=v1)
    verbs.open_request(team.project("alex"), "staging", reason="try it", ref=v1)
    with team.signed_in("dana") as http:
        production = http.get("/envs/production").text
        assert 'id="request-1"' in production and 'id="request-2"' not in production
        assert "coming:</span> freeze &#39;release&#39; (release night) starts" in production
        assert "/envs/production/deploy" not in production and "/envs/production/rollback" in (
            production
        )  # only requests go live there; a rollback needs nobody
        staging = http.get("/envs/staging").text
        assert "frozen now:</span> freeze &#39;audit&#39; (the auditors are in)" in staging
        assert 'action="/envs/staging/deploy"' in staging
        assert 'href="/requests"' in http.get("/").text

    verbs.review_request(team.project("kim"), 2, approve=True)
    with team.signed_in("dana") as http:
        page = http.get("/requests/2")
        assert "frozen now:" in page.text
        held = http.post(
            "/requests/2/apply", data={"csrf": csrf_of(page.text), "shown": shown_of(page.text)}
        )
        assert held.status_code == 409 and "freeze &#39;audit&#39;" in held.text
        assert "Traceback" not in held.text
    assert not (team.ws.base / "stage" / "current").exists()


@pytest.mark.parametrize("team", [None, "pg_url"], ids=["sqlite", "postgres"], indirect=True)
def test_a_request_is_approved_and_applied_in_a_browser(team: Team) -> None:
    from playwright.sync_api import expect, sync_playwright

    team.ws.write("prompts/score.txt", "Score each lead from 0 to 100.\n")
    opened = remote(team.server, team.secrets["alex"], "request", "production", "-m",
                    "first prompt", cwd=team.ws.root)  # fmt: skip
    no_secret(opened, team.secrets["alex"])
    assert opened.returncode == 0 and "opened change request #1" in opened.stderr, opened.stderr
    live = team.ws.base / "prod" / "current" / "prompts" / "score.txt"
    assert not live.exists()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(team.server.url + "/requests")
        page.get_by_label("API token").fill(team.secrets["lee"])
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(team.server.url + "/requests")
        waiting = page.locator("#waiting-for-me")
        expect(waiting.locator("#request-1")).to_contain_text("first prompt")
        waiting.get_by_role("link", name="#1").click()

        expect(page.locator("h1")).to_contain_text("Change request #1 for production")
        expect(page.locator("pre.diff .add")).to_contain_text(["+Score each lead from 0 to 100."])
        expect(page.get_by_role("button", name="Apply")).to_have_count(0)
        page.get_by_label("Comment").fill("the prompt reads well")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status")).to_contain_text("You approved #1. It is ready to apply.")
        expect(page.locator("table.timeline")).to_contain_text("the prompt reads well")
        page.get_by_role("button", name="Sign out").click()

        page.goto(team.server.url + "/requests/1")
        page.get_by_label("API token").fill(team.secrets["dana"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Approve")).to_have_count(0)
        page.get_by_role("button", name="Apply").click()
        expect(page.get_by_role("status")).to_contain_text("Applied: v1 is live on production")
        expect(page.locator(".tag.state-applied")).to_have_text("applied")
        page.get_by_role("link", name="production").first.click()
        expect(page.locator("dd.big").first).to_have_text("v1")
        browser.close()

    assert live.read_text() == "Score each lead from 0 to 100.\n"
    steps = team.timeline(1)
    assert ("lee", "approved", "the prompt reads well") in steps
    assert [action for _, action, _ in steps] == ["opened", "approved", "applying", "applied"]
    history = team.ws.run("history", "production", "--json").stdout
    assert '"actor": "dana"' in history


# ---- proposing from the environment's page ---------------------------------------------------


def propose_form(http: httpx.Client, env: str = "production") -> str:
    """The CSRF code of the propose form on ``env``'s page, once the page offers the form."""
    page = http.get(f"/envs/{env}")
    assert f'action="/envs/{env}/requests"' in page.text, page.text
    return csrf_of(page.text)


def propose(http: httpx.Client, env: str = "production", **form: str) -> httpx.Response:
    return http.post(f"/envs/{env}/requests", data=form)


def test_a_deployer_proposes_from_the_page_and_each_refusal_shows_there(team: Team) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")

    with team.signed_in("finance") as http:  # a viewer sees no form, and may not post one
        page = http.get("/envs/production")
        assert page.status_code == 200 and "/envs/production/requests" not in page.text
        refused = propose(http, csrf=csrf_of(page.text), version=v1, message="x")
        assert refused.status_code == 403
        assert "needs deployer on &#39;production&#39;" in refused.text
    with team.signed_in("kim") as http:  # an approver of staging only
        csrf = propose_form(http, "staging")
        assert propose(http, csrf=csrf, version=v1, message="x").status_code == 403
    with team.signed_in("alex") as http:
        csrf = propose_form(http)
        for forged in ({}, {"csrf": ""}, {"csrf": csrf + "x"}):
            answer = propose(http, **forged, version=v1, message="forged")
            assert answer.status_code == 403 and "security code (CSRF)" in answer.text
        unknown = propose(http, csrf=csrf, version=v1, reference="v99", message="typed wrong")
        assert unknown.status_code == 404 and 'role="alert"' in unknown.text
        assert "v99" in unknown.text and 'value="typed wrong"' in unknown.text
        bare = propose(http, csrf=csrf, version=v1, message="  ")
        assert bare.status_code == 400
        assert "write why you propose this change to production" in bare.text
        assert f'<option value="{v1}" selected>' in bare.text  # the choice is kept
        none = propose(http, csrf=csrf, message="why")
        assert none.status_code == 400 and "choose the version to propose" in none.text
        when = propose(http, csrf=csrf, version=v1, message="why", apply_at="tomorrow")
        assert when.status_code == 400 and "&#39;Apply at&#39; &#39;tomorrow&#39;" in when.text
        assert verbs.list_requests(team.project(), None) == []

        done = propose(http, csrf=csrf, version="", reference=v1, message="first prompt",
                       apply_at="2099-01-01T09:30")  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == "/requests/1?done=opened"
        shown = http.get(done.headers["location"]).text
        assert "You opened #1." in shown
        assert "It waits for 1 more: 1 approval from leads (default)." in shown
    view = verbs.show_request(team.project(), 1)
    assert (view.request.requester, view.request.reason) == ("alex", "first prompt")
    assert view.request.apply_at == datetime(2099, 1, 1, 9, 30).timestamp()  # server time
    assert [(e.actor, e.action, e.via) for e in view.entries] == [("alex", "opened", "web")]


def test_an_emergency_from_the_page_is_confirmed_first_and_applies_at_once(team: Team) -> None:
    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    v2 = team.version("Score each lead, strictly.", "strict")
    live = team.ws.base / "prod" / "current" / "prompts" / "score.txt"

    with team.signed_in("dana") as http:
        csrf = propose_form(http)
        form = {"csrf": csrf, "version": v1, "message": "scores are zero", "emergency": "on"}
        scheduled = http.post("/envs/production/requests",
                              data={**form, "apply_at": "2099-01-01T09:30"})  # fmt: skip
        assert scheduled.status_code == 400 and "cannot also be scheduled" in scheduled.text
        confirm = http.post("/envs/production/requests", data=form)
        assert confirm.status_code == 200 and "Emergency change to production?" in confirm.text
        assert '<span class="add">+Score each lead from 0 to 100.' in confirm.text
        assert 'name="confirmed" value="yes"' in confirm.text
        assert verbs.list_requests(team.project(), None) == [] and not live.exists()

        stale = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm.text))
        verbs.open_request(team.project("alex"), "production", reason="other", ref=v2,
                           emergency=True)  # fmt: skip
        moved = http.post("/envs/production/requests", data=stale)
        assert moved.status_code == 409 and "v2 is live on production now, not -" in moved.text
        assert live.read_text() == "Score each lead, strictly.\n"

        confirm = http.post("/envs/production/requests", data=form)
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm.text))
        assert fields["live"] == "v2" and fields["version"] == v1
        done = http.post("/envs/production/requests", data=fields)
        assert done.status_code == 303
        shown = http.get(done.headers["location"]).text
        assert "You opened #2." in shown and "Applied at once: v1 is live on production" in shown
        assert "EMERGENCY" in shown
        again = http.post("/envs/production/requests",
                          data={"csrf": csrf, "version": v1, "message": "once more"})  # fmt: skip
        assert again.status_code == 409 and "v1 is what production serves now" in again.text
    assert live.read_text() == "Score each lead from 0 to 100.\n"
    view = verbs.show_request(team.project(), 2)
    assert view.request.emergency and view.review_open and view.request.requester == "dana"


def test_a_change_is_proposed_in_a_browser(team: Team) -> None:
    from playwright.sync_api import expect, sync_playwright

    v1 = team.version("Score each lead from 0 to 100.", "first prompt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(team.server.url + "/envs/production")
        page.get_by_label("API token").fill(team.secrets["alex"])
        page.get_by_role("button", name="Sign in").click()
        propose = page.locator("#propose")
        propose.get_by_label("Version to propose").select_option(v1)
        propose.get_by_label("Why?").fill("the first scoring prompt")
        propose.get_by_role("button", name="Propose").click()
        expect(page).to_have_url(team.server.url + "/requests/1?done=opened")
        expect(page.get_by_role("status")).to_contain_text("You opened #1.")
        expect(page.locator("h1")).to_contain_text("Change request #1 for production")
        expect(page.locator("pre.diff .add")).to_contain_text(["+Score each lead from 0 to 100."])
        browser.close()
    assert verbs.show_request(team.project(), 1).request.reason == "the first scoring prompt"


def test_an_emergency_from_the_page_waits_for_the_fleet_as_a_rollback_does(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = workspace(target="served", bake="0s", interval="10ms")
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "one").returncode == 0
    config = ws.root / "lastgood.toml"
    config.write_text(config.read_text() + '\n[env.staging.approval]\napprovers = ["sam"]\n')
    ws.healthy("two")
    assert ws.run("snapshot", "-m", "two").returncode == 0
    server = serve(ws)
    dana = server.token("deployer", "staging", name="dana")
    consumer_serves(server, dana, 1)  # one consumer, on what is live

    def follow() -> None:  # it picks up v2 a second after it goes live
        with server.client(dana) as http:
            while http.get("/api/v1/envs/staging").json()["live_version"] != 2:
                time.sleep(0.01)
        time.sleep(1)
        consumer_serves(server, dana, 2)

    follower = threading.Thread(target=follow)
    follower.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/login", data={"token": dana}).status_code == 303
        form = {"csrf": propose_form(http, "staging"), "version": "v2", "emergency": "on",
                "message": "scores are zero"}  # fmt: skip
        confirm = http.post("/envs/staging/requests", data=form)
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', confirm.text))
        done = http.post("/envs/staging/requests", data=fields)
        follower.join()
        assert done.status_code == 303, done.text
        shown = http.get(done.headers["location"]).text

    assert "Applied at once: v2 is live on staging" in shown
    assert re.search(r'<dd class="fleet good">v2 live on 1/1 consumers in [^<]+</dd>', shown), shown
