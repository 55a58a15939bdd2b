"""The gate every change to an environment passes, in the verb, whatever edge called it.

An environment with ``[env.NAME.approval]`` takes new versions only through an approved change
request (:mod:`lastgood.operations.requests`): the CLI's ``deploy``, the server's deploy and
upload endpoints, the web page and scheduled applies all call the deploy verb, and the deploy
verb calls :func:`clear_change` first, so no edge can go around it. A rollback never comes
here: putting back a version that was good stays one command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastgood.errors import ApprovalRequiredError

if TYPE_CHECKING:
    from lastgood.operations.place import Place
    from lastgood.rows import ChangeRequest, VersionInfo


def clear_change(place: Place, *, request: ChangeRequest | None, drill: bool = False) -> None:
    """Refuse (exit 5) a deploy to an environment that requires approval, unless it applies
    ``request``. A drill's deploy is let through: the drill verb refuses approval-gated
    environments itself unless overridden, and the override is recorded."""
    env = place.name
    if place.settings.approval is None or drill:
        return
    if request is None:
        raise ApprovalRequiredError(
            f"{env} takes changes only through an approved change request",
            hint=f"open one with 'lastgood request {env} -m WHY' (add --version REF for an "
            "existing version); once approved, 'lastgood request apply N' deploys it. "
            f"'lastgood rollback {env}' needs no approval",
        )
    if request.env != env:
        raise ApprovalRequiredError(
            f"change request {request.label} is for {request.env}, not {env}",
            hint=f"open a request for {env} with 'lastgood request {env} -m WHY'",
        )


def clear_version(request: ChangeRequest | None, version: VersionInfo) -> None:
    """Refuse a deploy whose version is not exactly the content ``request`` was approved for."""
    if request is not None and version.content_hash != request.content_hash:
        raise ApprovalRequiredError(
            f"{version.label} is not the content change request {request.label} proposes",
            hint=f"'lastgood request show {request.number}' shows the version it was approved for",
        )
