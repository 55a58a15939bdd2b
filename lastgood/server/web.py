"""The web page: where anyone on the team sees what is live, what changed, and rolls back.

Server-rendered HTML (Jinja2, autoescaped), no JavaScript. A person signs in once with an API
token and then holds a session (see :mod:`lastgood.server.auth`); the page can do exactly what
that token can do through the API, and every change is recorded under the token's name with
source ``web``.

Every form that changes something carries the session's CSRF secret; a missing or wrong one is
refused with 403 before anything is read or written. Confirmation pages also carry the version
that was live when the person looked, so a stale page (or a resubmitted form) cannot change
anything the person did not see. Errors are pages with the message and its hint and the status
that :mod:`lastgood.errors` assigns; token secrets are never rendered or logged.

Route functions are plain ``def``: they read the store and run verbs, so they belong in the
threadpool, never on the event loop that serves the live config.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from lastgood import tokens
from lastgood.errors import AuthError, ForbiddenError, LastgoodError, RefusedError, UsageError
from lastgood.operations.fleet import (
    STALE_AFTER,
    FleetStanding,
    joined_after,
    read_fleet,
    wait_for_fleet,
)
from lastgood.operations.gate import request_command
from lastgood.operations.rollout_control import RolloutStatus
from lastgood.operations.status import EnvStatus
from lastgood.operations.versions import Side
from lastgood.outcome import OK, RESTORED, Outcome
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import ApiToken, Consumer, VersionInfo, WebSession, short_commit, subject
from lastgood.server.auth import COOKIE, csrf_ok
from lastgood.server.deps import State, known_env
from lastgood.server.timeline import timeline_svg
from lastgood.units import format_duration

if TYPE_CHECKING:
    from lastgood.server.web_propose import Proposal

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).parent
MAX_DIFF_LINES = 2000
MAX_MESSAGE = 2000
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # nobody may frame the rollback button (clickjacking)
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


# ---- rendering -------------------------------------------------------------------------------


def ago(at: float | None) -> str:
    """``3 min ago``: how long ago, in the words a person uses."""
    if at is None:
        return "never"
    seconds = max(0.0, time.time() - at)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def when(at: float | None) -> Markup:
    """An absolute UTC time with how long ago it was, for tables and facts."""
    if at is None:
        return Markup("never")
    moment = datetime.fromtimestamp(at, UTC)
    return Markup('<time datetime="{}">{}</time> <span class="ago">({})</span>').format(
        moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M:%S UTC"), ago(at)
    )


def version_label(number: int | None) -> str:
    return "-" if number is None else f"v{number}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, ago=ago, duration=format_duration, v=version_label,
                       short_commit=short_commit, subject=subject)  # fmt: skip
    env.globals["request_command"] = request_command  # the command that works for any name
    return env


TEMPLATES = _environment()


def render(name: str, who: Visitor | None, status: int = 200, **context: Any) -> HTMLResponse:
    """One page; ``who`` (None when signed out) fills the header and every form's CSRF field."""
    page = TEMPLATES.get_template(name)
    html = page.render(who=who, csrf=who.session.csrf if who else "", **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


@router.get("/static/web.css")
def stylesheet() -> Response:
    return Response((HERE / "static" / "web.css").read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "max-age=300"})  # fmt: skip


# ---- who is asking ---------------------------------------------------------------------------


class Visitor(Record):
    """A signed-in person: the session (with its CSRF secret), its token and the cookie value."""

    session: WebSession
    token: ApiToken
    session_id: str

    def may(self, role: str, env: str | None = None) -> bool:
        return tokens.allows(self.token, role, env)


class SignInFirst(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def visitor(state: State, request: Request) -> Visitor:
    session_id = request.cookies.get(COOKIE)
    found = state.auth.session(session_id)
    if found is None or session_id is None:
        raise SignInFirst(request.url.path if request.method == "GET" else "/")
    return Visitor(found[0], found[1], session_id)


def check_csrf(who: Visitor, sent: str) -> None:
    """Refuse a changing form whose CSRF field is not this session's (a forged request)."""
    if not csrf_ok(who.session, sent):
        raise ForbiddenError(
            "this form's security code (CSRF) is missing or wrong, so nothing was changed",
            hint="go back, reload the page and submit the form again",
        )


def page(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Turn a route's refusals into pages: sign-in redirect, or the error with its status."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except SignInFirst as need:
            target = "/login" if need.back_to == "/" else f"/login?next={quote(need.back_to)}"
            return RedirectResponse(target, status_code=303)
        except LastgoodError as exc:
            return render("error.html", None, exc.http_status, error=exc)

    return run


def safe_next(target: str) -> str:
    """Only paths on this server: never an open redirect to another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


# ---- signing in and out ----------------------------------------------------------------------


@router.get("/login")
@page
def login_form(state: State, request: Request, next: str = "/") -> Response:
    if state.auth.session(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render("login.html", None, next=safe_next(next), problem=None)


@router.post("/login")
@page
def login(
    state: State,
    request: Request,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        session_id, _ = state.auth.sign_in(token[:500])
    except AuthError:
        problem = ("paste your API token to sign in" if not token.strip() else
                   "that token was not accepted: it is unknown or has been revoked")  # fmt: skip
        return render("login.html", None, 401, next=safe_next(next), problem=problem)
    answer = RedirectResponse(safe_next(next), status_code=303)
    answer.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/",
                      secure=request.url.scheme == "https")  # fmt: skip
    return answer


@router.get("/logout")
@page
def logout_form(state: State, request: Request) -> Response:
    return render("logout.html", visitor(state, request))


@router.post("/logout")
@page
def logout(state: State, request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    who = visitor(state, request)
    check_csrf(who, csrf)
    state.auth.sign_out(who.session_id)
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


# ---- environments ----------------------------------------------------------------------------


class Standing(Record):
    """How an environment looks at a glance: a CSS class and the words next to its name."""

    look: str  # incident, busy, attention, ok, idle, unknown
    words: str

    @property
    def incident(self) -> bool:
        return self.look == "incident"


def standing_of(status: EnvStatus, fleet: FleetStanding | None) -> Standing:
    """The one rule for what stands out: failing checks or a live version that is not last
    known good is an incident; warnings and a fleet not yet following need attention."""
    live, good = status.live_version, status.last_good
    if status.unreachable:  # not "nothing live": nobody can tell what the tool serves
        return Standing("incident", "incident: the target could not be read, so what it "
                        "serves is unknown")  # fmt: skip
    if live is None:
        return Standing("idle", "nothing live yet")
    if status.health.startswith("failing"):
        return Standing("incident", f"incident: health checks {status.health}")
    if status.live_verdict == "bad":
        return Standing("incident", f"incident: v{live} is live and failed its checks")
    if status.lock:
        return Standing("busy", f"busy: {status.lock}")
    if live != good:
        known = f"last known good is v{good}" if good else "it has not been verified"
        return Standing("incident", f"incident: v{live} is live but {known}")
    if fleet is not None and fleet.total and not fleet.complete:
        return Standing("attention", "some consumers have not followed")
    if status.drifted or not status.within_budget:
        return Standing("attention", "needs attention")
    if status.health == "healthy":
        return Standing("ok", "healthy")
    return Standing("unknown", status.health)


class EnvView(Record):
    """Everything the dashboard card and the environment page show about one environment."""

    name: str
    status: EnvStatus | None
    fleet: FleetStanding | None
    standing: Standing
    error: LastgoodError | None = None
    rollout: RolloutStatus | None = None  # a gradual rollout under way


def env_view(state: State, token: ApiToken, env: str) -> EnvView:
    """Read one environment's status and fleet; an error becomes part of the view. Reads only:
    a crashed change (an orphaned rollout) is shown as it stands, and the next write (a
    command, or a form posted here) reconciles it."""
    from lastgood.operations.status import status

    try:
        found = status(state.acting(token), env, repair=False)[0]
    except LastgoodError as exc:
        return EnvView(env, None, None, Standing("incident", "cannot read its status"), exc)
    fleet = read_fleet(state.project, env, state.consumers)
    rolling = rollout_of(state, env)
    if rolling is not None:
        words = rolling.summary().split(";")[0]
        look = "incident" if rolling.orphaned else "busy"
        return EnvView(env, found, fleet, Standing(look, words), rollout=rolling)
    return EnvView(env, found, fleet, standing_of(found, fleet))


def rollout_of(state: State, env: str) -> RolloutStatus | None:
    """The gradual rollout under way on a served ``env``, with its fleet per cohort, or None."""
    from lastgood.operations.rollout_control import rollout_status

    if state.project.config.environment(env).target.type != "served":
        return None
    try:
        found = rollout_status(state.project, env, state.consumers.of(env))
    except LastgoodError:
        return None
    return found if found.rolling else None


@router.get("/")
@page
def dashboard(state: State, request: Request) -> Response:
    who = visitor(state, request)
    names = [n for n in state.project.config.environments if who.may("viewer", n)]
    views = [env_view(state, who.token, name) for name in names]
    return render("dashboard.html", who, views=views)


class ConsumerRow(Record):
    consumer: Consumer
    behind: bool
    gone: bool
    joined: bool = False  # first heard from after the switch: not in the time to all


def consumer_rows(
    state: State, env: str, fleet: FleetStanding | None, rollout: RolloutStatus | None = None
) -> list[ConsumerRow]:
    """The fleet table: live ones not serving the live version (during a rollout: their
    cohort's version) are *behind*; silent ones gone; those first heard from after the switch
    joined since it (the summary counts them apart)."""
    from lastgood.operations.rollout_control import wanted_by

    if fleet is None:
        return []
    now = time.time()
    rows = []
    pointer = rollout.pointer if rollout is not None else None
    for consumer in sorted(state.consumers.of(env), key=lambda c: (c.name, c.consumer_id)):
        gone = now - consumer.seen_at > STALE_AFTER
        wanted = fleet.version if pointer is None else wanted_by(env, consumer, pointer)
        joined = not gone and joined_after(consumer, fleet.told_at)
        rows.append(ConsumerRow(consumer, not gone and consumer.version != wanted, gone, joined))
    return rows


@router.get("/envs/{env}")
@page
def environment(env: str, state: State, request: Request) -> Response:
    who = visitor(state, request)
    tokens.require(who.token, "viewer", known_env(state, env))
    return environment_page(state, who, env)


def environment_page(
    state: State, who: Visitor, env: str, *, problem: LastgoodError | None = None,
    proposal: Proposal | None = None, status: int = 200,
) -> Response:  # fmt: skip
    """Environment ``env``'s page; with a refused proposal's ``problem`` and what its form held
    (the form's route is :mod:`lastgood.server.web_propose`'s)."""
    from lastgood.operations.requests import list_requests
    from lastgood.operations.status import history
    from lastgood.operations.versions import log
    from lastgood.server.web_propose import Proposal, server_zone

    view = env_view(state, who.token, env)
    timeline = history(state.project, env, limit=30)
    live = view.status.live_version if view.status else None
    choices = log(state.project, limit=30) if who.may("deployer", env) else []
    requests = list_requests(state.acting(who.token), env, status="open")
    policy = state.project.config.environment(env).approval
    return render("env.html", who, status, view=view, records=timeline.deployments,
                  events=timeline.events[:30], svg=timeline_svg(timeline.deployments),
                  consumers=consumer_rows(state, env, view.fleet, view.rollout), choices=choices,
                  live=live, requests=requests, protected=policy is not None,
                  emergency=policy is None or policy.emergency, problem=problem,
                  proposal=proposal or Proposal(), zone=server_zone())  # fmt: skip


# ---- diffs -----------------------------------------------------------------------------------


class DiffLine(Record):
    css: str  # add, del, hunk, ctx, note
    text: str


class FileDiff(Record):
    path: str
    change: str  # added, changed, removed
    lines: list[DiffLine]


def _diff_line(text: str) -> DiffLine:
    for prefix, css in (("@@", "hunk"), ("+", "add"), ("-", "del"), ("Binary file", "note")):
        if text.startswith(prefix):
            return DiffLine(css, text)
    return DiffLine("ctx", text)


def file_diffs(before: Side, after: Side) -> list[FileDiff]:
    """The change from ``before`` to ``after``, file by file, each line classed for colour."""
    from lastgood.operations.versions import changes, unified

    kinds = {path: kind for kind, paths in changes(before, after).items() for path in paths}
    result = []
    for path in sorted(kinds):
        one = {path: before.files[path]} if path in before.files else {}
        other = {path: after.files[path]} if path in after.files else {}
        text = unified(
            Side(before.label, one, before.secrets), Side(after.label, other, after.secrets)
        ).splitlines()
        body = text[2:] if len(text) > 2 and text[0].startswith("--- ") else text
        lines = [_diff_line(line) for line in body[:MAX_DIFF_LINES]]
        if len(body) > MAX_DIFF_LINES:
            lines.append(DiffLine("note", f"… {len(body) - MAX_DIFF_LINES} more lines"))
        result.append(FileDiff(path, kinds[path], lines))
    return result


def resolved(project: Project, ref: str, env: str | None = None) -> tuple[VersionInfo, Side]:
    """A recorded version and its files (never the server's folder), as one side of a diff."""
    from lastgood.operations.resolve import resolve

    if ref.strip() == "workspace":
        raise UsageError(
            "the page compares recorded versions only, not a folder",
            hint="record the folder as a version first ('lastgood snapshot')",
        )
    version = resolve(project, ref.strip(), env=env)
    return version, Side(version.label, project.store.files(version.number), project.config.secrets)


def side_of(project: Project, number: int | None) -> Side:
    """Version ``number`` as one side of a diff; no version (nothing live, no parent) is empty."""
    return Side("nothing", {}) if number is None else resolved(project, f"v{number}")[1]


# ---- rollback and deploy ---------------------------------------------------------------------


def live_now(project: Project, env: str) -> int | None:
    live = project.target(env).live()
    return live.version if live else None


def check_unchanged(env: str, seen: str, now: int | None, again: str) -> None:
    """Refuse when what is live moved since the person looked at the confirmation."""
    if seen and seen != version_label(now):
        raise RefusedError(
            f"{version_label(now)} is live on {env} now, not {seen} as when you opened the "
            "confirmation, so nothing was changed",
            hint=f"review the change again: {again}",
        )


def message_text(text: str, what: str = "the reason") -> str:
    """A form's text field, stripped; ``what`` names it in the refusal of an over-long one."""
    if len(text) > MAX_MESSAGE:
        raise UsageError(
            f"{what} is {len(text)} characters long; at most {MAX_MESSAGE} are kept",
            hint="say it in a paragraph and link to the rest",
        )
    return text.strip()


@router.get("/envs/{env}/rollback")
@page
def rollback_form(env: str, state: State, request: Request) -> Response:
    from lastgood.operations.place import Place
    from lastgood.operations.rollback import choose_destination

    who = visitor(state, request)
    tokens.require(who.token, "deployer", known_env(state, env))
    if rollout_of(state, env) is not None:  # rolling back is aborting: the page has the button
        return RedirectResponse(f"/envs/{env}", status_code=303)
    live = live_now(state.project, env)
    destination = choose_destination(Place(state.project, env), live)
    before, after = side_of(state.project, live), side_of(state.project, destination.number)
    return render("confirm.html", who, env=env, action="rollback", live=live, target=destination,
                  diffs=file_diffs(before, after))  # fmt: skip


@router.post("/envs/{env}/rollback")
@page
def rollback(
    env: str,
    state: State,
    request: Request,
    csrf: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    live: Annotated[str, Form()] = "",
) -> Response:
    from lastgood.operations.rollback import rollback as do_rollback

    who = deployer_form(state, request, env, csrf)
    reason = message_text(message)
    check_unchanged(env, live, live_now(state.project, env), f"/envs/{env}/rollback")
    outcome = do_rollback(state.acting(who.token), env, reason=reason, source="web")
    return outcome_page(state, who, env, outcome)


@router.get("/envs/{env}/deploy")
@page
def deploy_form(
    env: str, state: State, request: Request, version: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    who = visitor(state, request)
    tokens.require(who.token, "deployer", known_env(state, env))
    if not version.strip():
        raise UsageError("choose a version to deploy", hint=f"pick one on /envs/{env}")
    live = live_now(state.project, env)
    target, after = resolved(state.project, version, env)
    before = side_of(state.project, live)
    return render("confirm.html", who, env=env, action="deploy", live=live, target=target,
                  diffs=file_diffs(before, after))  # fmt: skip


@router.post("/envs/{env}/deploy")
@page
def deploy(
    env: str,
    state: State,
    request: Request,
    csrf: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    live: Annotated[str, Form()] = "",
) -> Response:
    from lastgood.operations.deploy import deploy as do_deploy

    who = deployer_form(state, request, env, csrf)
    if not version.strip() or len(version) > 200:
        raise UsageError("choose a version to deploy", hint=f"pick one on /envs/{env}")
    reason = message_text(message)
    again = f"/envs/{env}/deploy?version={quote(version)}"
    check_unchanged(env, live, live_now(state.project, env), again)
    outcome = do_deploy(state.acting(who.token), env, message=reason, ref=version.strip(),
                        source="web")  # fmt: skip
    return outcome_page(state, who, env, outcome)


def deployer_form(state: State, request: Request, env: str, csrf: str) -> Visitor:
    """The visitor posting a form that changes ``env`` (deploy, rollback, a proposal), once
    its CSRF code is this session's and its token holds ``deployer`` there (403 otherwise)."""
    who = visitor(state, request)
    check_csrf(who, csrf)
    tokens.require(who.token, "deployer", known_env(state, env))
    return who


def outcome_page(state: State, who: Visitor, env: str, outcome: Outcome) -> Response:
    """After the page's deploy or rollback: publish what ``env`` serves now, wait up to
    ``fleet_wait`` seconds for a served environment's consumers to follow, and show how it
    ended and how far they got (reads only)."""
    state.feeds.publish_now(env)
    fleet = wait_for_fleet(state.project, env, state.consumers, state.fleet_wait)
    return render("outcome.html", who, env=env, outcome=outcome, fleet=fleet, ok=OK,
                  restored=RESTORED)  # fmt: skip


# ---- versions --------------------------------------------------------------------------------


def viewer_somewhere(who: Visitor) -> None:
    """Versions belong to no environment: the viewer role anywhere will do (as in the API)."""
    if tokens.rank(who.token.role) < tokens.rank("viewer"):
        tokens.require(who.token, "viewer")


@router.get("/versions")
@page
def versions(state: State, request: Request) -> Response:
    from lastgood.operations.versions import log

    who = visitor(state, request)
    viewer_somewhere(who)
    return render("versions.html", who, versions=log(state.project, limit=100))


@router.get("/versions/{ref}")
@page
def version(ref: str, state: State, request: Request) -> Response:
    from lastgood.operations.versions import show

    who = visitor(state, request)
    viewer_somewhere(who)
    info, files = show(state.project, ref)
    parent = side_of(state.project, info.parent)
    sizes = {path: len(data) for path, data in sorted(files.items())}
    after = Side(info.label, files, state.project.config.secrets)  # masked by [secrets]
    return render("version.html", who, info=info, sizes=sizes,
                  diffs=file_diffs(parent, after))  # fmt: skip


@router.get("/diff")
@page
def diff(
    state: State,
    request: Request,
    old: Annotated[str, Query(max_length=200)] = "",
    new: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    from lastgood.operations.versions import log

    who = visitor(state, request)
    viewer_somewhere(who)
    choices = log(state.project, limit=100)
    diffs = None
    if old.strip() and new.strip():
        before, after = resolved(state.project, old)[1], resolved(state.project, new)[1]
        diffs = file_diffs(before, after)
        old, new = before.label, after.label
    elif len(choices) > 1:
        old, new = choices[1].label, choices[0].label
    return render("diff.html", who, choices=choices, old=old, new=new, diffs=diffs)
