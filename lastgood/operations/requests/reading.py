"""Reading change requests: one with its timeline, lists, the diff a request proposes."""

from __future__ import annotations

from lastgood.approval import (
    OPTIONAL_REVIEW,
    may_review,
)
from lastgood.operations.place import Place
from lastgood.operations.requests.standing import expire_if_due, settled
from lastgood.operations.requests.view import RequestView, build_view
from lastgood.operations.versions import Side, unified
from lastgood.project import Project
from lastgood.rows import (
    REQUEST_OPEN,
)


def show_request(project: Project, number: int) -> RequestView:
    """Request ``number`` with its timeline and review, expiring it first if its time is up."""
    request = project.store.change_request(number)
    place = Place(project, request.env)
    return build_view(place, expire_if_due(place, settled(place, request)))


def request_env(project: Project, number: int) -> str:
    """The environment request ``number`` is for; NotFoundError when there is none. Reads
    only (nothing expires): the server judges a token's scope by it before any verb runs."""
    return project.store.change_request(number).env


def list_requests(
    project: Project, env: str | None = None, *, status: str | None = None, limit: int = 50
) -> list[RequestView]:
    """Requests newest first (expiring those whose time is up); ``status`` filters by the
    stored status, by the review state (``waiting``, ``approved``, ``rejected``),
    ``review`` for emergencies whose review is still open, or ``for-me``: waiting for
    ``project.actor`` to approve."""
    if env is not None:
        Place(project, env)  # the name is checked
    reviewed = {"waiting": REQUEST_OPEN, "approved": REQUEST_OPEN, "rejected": REQUEST_OPEN,
                "for-me": REQUEST_OPEN, "review": None}  # fmt: skip
    stored = reviewed.get(status, status) if status is not None else None
    views = []
    for request in project.store.change_requests(env, status=stored, limit=limit):
        if request.env not in project.config.environments:
            continue  # an environment since removed from lastgood.toml
        place = Place(project, request.env)
        views.append(build_view(place, expire_if_due(place, settled(place, request))))
    if status == "review":
        return [v for v in views if v.review_open]
    if status == "for-me":
        return [v for v in views if _waits_for(project, v)]
    return [v for v in views if status is None or status in (v.state, v.request.status)]


def _waits_for(project: Project, view: RequestView) -> bool:
    """Whether ``view`` waits for ``project.actor`` to approve it: it needs approvals, they are
    one of its approvers, did not open it (or their environment lets a requester approve
    their own request, and it is no emergency, whose review never counts the requester) and
    have not approved this content yet."""
    person, request = project.actor, view.request
    policy = project.config.environment(request.env).approval or OPTIONAL_REVIEW
    own_counts = policy.self_approval and not request.emergency
    return (
        view.state == "waiting"
        and (person != request.requester or own_counts)
        and person not in view.tally.approved_by
        and may_review(person, view.routing, project.config.groups)
    )


def request_diff(project: Project, number: int) -> str:
    """The unified diff a request proposes: its base against its version, secrets masked
    (it goes to approvers by mail and chat, and onto the request's page)."""
    request = project.store.change_request(number)
    secrets = project.config.secrets
    before = (
        Side(f"v{request.base_version}", project.store.files(request.base_version), secrets)
        if request.base_version is not None
        else Side("empty", {}, secrets)
    )
    after = Side(f"v{request.version}", project.store.files(request.version), secrets)
    return unified(before, after)
