"""API tokens in the store: create, list, revoke, and look one up for the server.

The CLI (``lastgood token``, ``lastgood serve``) and the server (``/api/v1/tokens`` and every
authenticated request) go through these verbs, never the store's token methods. The rules they
apply (roles, secrets and their hashes, what a role allows) are :mod:`lastgood.tokens`.
"""

from __future__ import annotations

from lastgood import tokens
from lastgood.project import Project
from lastgood.rows import ApiToken


def create_token(
    project: Project, *, name: str, role: str, envs: list[str]
) -> tuple[ApiToken, str]:
    """Make a token for ``role`` on ``envs`` (all environments when empty), recorded as made by
    the project's actor. Returns its record and the secret, which is never stored or shown
    again. Writes the store. ConfigError for an environment lastgood.toml does not define
    (listing the known ones), UsageError for a bad role or a name that cannot be an actor (see
    :func:`lastgood.tokens.check_name`)."""
    for env in envs:
        project.config.environment(env)
    tokens.check_request(name=name, role=role, envs=envs)
    secret = tokens.new_secret()
    record = project.store.add_token(
        name=name, role=role, envs=",".join(envs), token_hash=tokens.hash_secret(secret),
        created_by=project.actor,
    )  # fmt: skip
    return record, secret


def list_tokens(project: Project, *, include_revoked: bool = False) -> list[ApiToken]:
    """The tokens, never their secrets (the store has none); revoked ones only when asked.
    Reads."""
    return project.store.tokens(include_revoked=include_revoked)


def revoke_token(project: Project, token_id: int) -> ApiToken:
    """Revoke token ``token_id`` at once, as the project's actor (on the server, the calling
    token's name: that is who the audit chain records); returns its record. Writes the store.
    NotFoundError for an id that names no token."""
    return project.store.revoke_token(token_id, actor=project.actor)


def find_token(project: Project, token_hash: str) -> ApiToken | None:
    """The token kept under ``token_hash``, revoked or not; None when there is none. Reads.
    The server caches the answer, and judges it with :func:`lastgood.tokens.live`."""
    return project.store.token_by_hash(token_hash)
