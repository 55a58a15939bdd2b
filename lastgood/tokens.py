"""API tokens and roles: who may read, deploy or administer which environments through the server.

A token is shown once, when it is created, and stored only as its SHA-256, so a copy of the store
never hands out credentials. Roles are ordered: ``viewer`` reads, ``deployer`` also deploys, rolls
back, checks, drills and opens change requests, ``approver`` also approves and rejects them, and
``admin`` also manages tokens. ``approver`` sits above ``deployer`` so that a reviewer can also
act on what they approved; it was added after the other three, and since roles are kept by name,
a token made before it means what it meant. A token scoped to environments holds its role only
there; what is not tied to one environment (versions, diffs) needs the role anywhere.

This module holds the rules only and touches no store: what a secret looks like and how it is
kept, what a request for a token must say, what a role allows. Making, listing, revoking and
looking up tokens in the store are verbs in :mod:`lastgood.operations.tokens`.
"""

from __future__ import annotations

import hashlib
import secrets

from lastgood.errors import AuthError, ForbiddenError, UsageError
from lastgood.plaintext import described, hidden_characters
from lastgood.rows import ApiToken

ROLES = ("viewer", "deployer", "approver", "admin")
PREFIX = "lg_"
NAME_LIMIT = 200
"""Characters in a token's name (the API's limit too)."""
RESERVED_NAMES = frozenset({"lastgood", "schema-upgrade"})
"""Actors no person may be named after: ``lastgood`` is who automatic actions are recorded as
(an expiry, the watcher's scheduled apply, an automatic rollback), ``schema-upgrade`` the first
link of a chain started on an upgraded store. A token's name is the actor of everything done
with it, so a token named either could pass its work off as lastgood's own."""


def rank(role: str) -> int:
    return ROLES.index(role)


def hash_secret(secret: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh token secret: shown once, stored only as :func:`hash_secret` of it."""
    return PREFIX + secrets.token_urlsafe(32)


def check_request(*, name: str, role: str, envs: list[str]) -> None:
    """UsageError when a token cannot be made as asked: an unknown role, a name that cannot be
    an actor (:func:`check_name`), or an environment name the store's comma-separated scope
    cannot hold."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
    check_name(name)
    bad = [env for env in envs if not env or "," in env]
    if bad:
        raise UsageError(f"bad environment name {bad[0]!r} in --env")


def check_name(name: str) -> None:
    """UsageError unless ``name`` can stand for a person everywhere it is shown: the name is
    the actor of every change made with the token (the ledger, request timelines, the audit
    chain, mail), so it must hold no hidden characters (control characters, bidi overrides: see
    :mod:`lastgood.plaintext`; a NUL byte, which PostgreSQL cannot even store), no spaces at
    either end, at most :data:`NAME_LIMIT` characters, and none of :data:`RESERVED_NAMES`."""
    if not name.strip():
        raise UsageError("a token needs a name", hint="pass --name, e.g. --name ci-deployer")
    if len(name) > NAME_LIMIT:
        raise UsageError(f"a token's name is at most {NAME_LIMIT} characters; this one has "
                         f"{len(name)}", hint="give a shorter --name")  # fmt: skip
    hidden = hidden_characters(name)
    if hidden:
        raise UsageError(
            f"the token name {name!r} holds {described(hidden[0])}, which is not shown as "
            "itself: everything done with the token is recorded under its name, and this one "
            "could pass for another",
            hint="give a name of visible characters, e.g. --name ci-deployer",
        )
    if name != name.strip():
        raise UsageError(f"the token name {name!r} starts or ends with whitespace",
                         hint=f"give --name {name.strip()!r}")  # fmt: skip
    if name.casefold() in RESERVED_NAMES:
        raise UsageError(
            f"the token name {name!r} is reserved: automatic actions are recorded as "
            "'lastgood', and the chain's first link on an upgraded store as 'schema-upgrade'",
            hint="give the person's or the job's own name, e.g. --name ci-deployer",
        )


def required(secret: str | None) -> str:
    """``secret`` when one was sent; AuthError saying how to get one otherwise."""
    if not secret:
        raise AuthError(
            "this needs an API token",
            hint="send 'Authorization: Bearer TOKEN'; create one with 'lastgood token create'",
        )
    return secret


def live(found: ApiToken | None) -> ApiToken:
    """``found`` when it is a token that was not revoked; AuthError otherwise, never saying
    which of the two it was (an unknown secret learns nothing)."""
    if found is None or found.revoked_at is not None:
        raise AuthError(
            "the API token is unknown or revoked",
            hint="check the token, or create a new one with 'lastgood token create'",
        )
    return found


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
