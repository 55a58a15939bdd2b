"""API tokens and roles: who may read, deploy or administer which environments through the server.

A token is shown once, when it is created, and stored only as its SHA-256, so a copy of the store
never hands out credentials. Roles are ordered: ``viewer`` reads, ``deployer`` also deploys, rolls
back, checks and drills, ``admin`` also manages tokens. A token scoped to environments holds its
role only there; what is not tied to one environment (versions, diffs) needs the role anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from lastgood.errors import AuthError, ForbiddenError, UsageError
from lastgood.records import ApiToken

if TYPE_CHECKING:
    from lastgood.store.core import Store

ROLES = ("viewer", "deployer", "admin")
PREFIX = "lg_"


def rank(role: str) -> int:
    return ROLES.index(role)


def hash_secret(secret: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(
    store: Store, *, name: str, role: str, envs: list[str], created_by: str
) -> tuple[ApiToken, str]:
    """Make a token; returns its record and the secret, which is never stored or shown again."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
    if not name.strip():
        raise UsageError("a token needs a name", hint="pass --name, e.g. --name ci-deployer")
    bad = [env for env in envs if not env or "," in env]
    if bad:
        raise UsageError(f"bad environment name {bad[0]!r} in --env")
    secret = PREFIX + secrets.token_urlsafe(32)
    record = store.add_token(
        name=name.strip(), role=role, envs=",".join(envs), token_hash=hash_secret(secret),
        created_by=created_by,
    )  # fmt: skip
    return record, secret


def authenticate(store: Store, secret: str | None) -> ApiToken:
    """The live token for ``secret``; AuthError (never saying more than needed) otherwise."""
    if not secret:
        raise AuthError(
            "this needs an API token",
            hint="send 'Authorization: Bearer TOKEN'; create one with 'lastgood token create'",
        )
    token = store.token_by_hash(hash_secret(secret))
    if token is None or token.revoked_at is not None:
        raise AuthError(
            "the API token is unknown or revoked",
            hint="check the token, or create a new one with 'lastgood token create'",
        )
    return token


def allows(token: ApiToken, role: str, env: str | None = None) -> bool:
    """Whether ``token`` holds at least ``role`` for ``env`` (None: across every environment)."""
    if rank(token.role) < rank(role):
        return False
    scope = token.env_list
    if not scope:
        return True
    return env is not None and env in scope


def require(token: ApiToken, role: str, env: str | None = None) -> None:
    """Raise ForbiddenError naming the token, the role it lacks and where."""
    if allows(token, role, env):
        return
    where = f" on {env!r}" if env else " across all environments"
    scope = ", ".join(token.env_list) or "all environments"
    raise ForbiddenError(
        f"token {token.name!r} ({token.role} on {scope}) may not do this: it needs {role}{where}",
        hint="ask an admin for a token with that role ('lastgood token create --role …')",
    )
