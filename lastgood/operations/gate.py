"""The gate every change to an environment passes, in the verb, whatever edge called it.

An environment with ``[env.NAME.approval]`` takes new versions only through an approved change
request (:mod:`lastgood.operations.requests`), and an environment inside a freeze, or outside
its change windows (:mod:`lastgood.freezes`), takes none at all. The CLI's ``deploy``, the
server's deploy and upload endpoints, the web page, drills and request applies all call the
deploy verb, and the deploy verb calls :func:`clear_change` first, so no edge can go around
it. A rollback never comes here: putting back a version that was good stays one command, in a
freeze too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lastgood.errors import ApprovalRequiredError, FrozenError

if TYPE_CHECKING:
    from lastgood.operations.place import Place
    from lastgood.rows import ChangeRequest, VersionInfo


REQUEST_SUBCOMMANDS = frozenset(
    {"open", "list", "show", "approve", "reject", "update", "withdraw", "signoff", "apply"}
)
"""The subcommands of ``lastgood request`` (a test keeps this in step with the CLI): an
environment with one of these names cannot be opened with the short ``request ENV``."""


def request_command(env: str, options: str = "-m WHY", *, server: bool = False) -> str:
    """The command that opens a change request for ``env``, for hints: ``lastgood request ENV
    …``, the everyday short form, unless ``ENV`` is also a ``request`` subcommand's name
    (``lastgood request list -m WHY`` would list requests) — then ``request open ENV …``,
    and after ``--`` when it starts with a dash, so it is not read as an option. With
    ``server``, through a server (``lastgood --server URL request …``)."""
    command = "lastgood --server URL request" if server else "lastgood request"
    if env.startswith("-"):
        return f"{command} open {options} -- {env}"
    if env in REQUEST_SUBCOMMANDS:
        return f"{command} open {env} {options}"
    return f"{command} {env} {options}"


def opening_command(place: Place, options: str = "-m WHY") -> str:
    """:func:`request_command` for ``place``: through a server where its approvals count only
    there (``approve_via = "server"``), since requests are opened there too."""
    approval = place.settings.approval
    server = approval is not None and approval.approve_via == "server"
    return request_command(place.name, options, server=server)


def clear_change(place: Place, *, request: ChangeRequest | None, drill: bool = False) -> None:
    """Refuse (exit 5) a deploy to an environment that is frozen (or outside its change
    windows) unless it applies an emergency ``request``, and one to an environment that
    requires approval unless it applies ``request``.
    A drill's deploy passes the approval part: the drill verb refuses approval-gated
    environments itself unless overridden, and the override is recorded."""
    env = place.name
    calendar = place.settings.calendar
    closure = calendar.closed_at(time.time())
    emergency = request is not None and request.emergency  # passes, and its request says so
    if closure is not None and not emergency:
        opens = calendar.opens_at(time.time())
        reopens = opens not in (float("inf"), closure.ends)  # past a further closure
        when = f"; changes open again at {_local(opens)}" if reopens else ""
        raise FrozenError(
            f"{env} is closed to changes: {calendar.describe(closure)}",
            hint=f"wait until it opens{when} ('lastgood status {env}' shows it); "
            f"'lastgood rollback {env}' is never held by a freeze",
        )
    if place.settings.approval is None or drill:
        return
    if request is None:
        raise ApprovalRequiredError(
            f"{env} takes changes only through an approved change request",
            hint=f"open one with '{opening_command(place)}' (add --version REF for an "
            "existing version); once approved, 'lastgood request apply N' deploys it. "
            f"'lastgood rollback {env}' needs no approval",
        )
    if request.env != env:
        raise ApprovalRequiredError(
            f"change request {request.label} is for {request.env}, not {env}",
            hint=f"open a request for {env} with '{opening_command(place)}'",
        )


def clear_version(request: ChangeRequest | None, version: VersionInfo) -> None:
    """Refuse a deploy whose version is not exactly the content ``request`` was approved for."""
    if request is not None and version.content_hash != request.content_hash:
        raise ApprovalRequiredError(
            f"{version.label} is not the content change request {request.label} proposes",
            hint=f"'lastgood request show {request.number}' shows the version it was approved for",
        )


def _local(epoch: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def clear_claimed(place: Place, request: ChangeRequest | None) -> None:
    """Under the environment's lease, right before the switch: the request being applied is
    still claimed for this deploy with the content and base it was approved for, and the
    environment still serves that base (StaleBaseError otherwise: something went live, or was
    rolled back, since the request was checked)."""
    if request is None:
        return
    from lastgood.errors import StaleBaseError
    from lastgood.rows import REQUEST_APPLYING

    now = place.store.change_request(request.number)
    held = (now.status, now.content_hash, now.base_hash)
    if held != (REQUEST_APPLYING, request.content_hash, request.base_hash):
        raise ApprovalRequiredError(
            f"change request {request.label} is {now.status} now, not claimed for this deploy",
            hint=f"'lastgood request show {request.number}' shows its timeline",
        )
    live = place.target.live()
    served = place.store.version(live.version) if live is not None else None
    if (served.content_hash if served else "") != request.base_hash:
        base = f"v{request.base_version}" if request.base_version is not None else "nothing"
        raise StaleBaseError(
            f"{place.name} serves {served.label if served else 'nothing'} now, not {base} "
            f"change request {request.label} was based on",
            hint=f"it needs a fresh look: 'lastgood request update {request.number}'",
        )
