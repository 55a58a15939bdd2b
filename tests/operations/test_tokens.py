"""API tokens in process: the verbs of ``lastgood.operations.tokens`` on a real SQLite store,
and the rules of ``lastgood.tokens`` they and the server apply."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lastgood import tokens
from lastgood.errors import AuthError, ConfigError, NotFoundError, UsageError
from lastgood.operations.tokens import create_token, find_token, list_tokens, revoke_token
from lastgood.project import Project
from tests.conftest import Workspace


@pytest.fixture
def project(workspace: Callable[..., Workspace]) -> Project:
    return workspace().project()  # type: ignore[no-any-return]


def test_a_token_is_kept_as_a_hash_and_found_by_it(project: Project) -> None:
    record, secret = create_token(project, name="ci", role="deployer", envs=["staging"])
    assert secret.startswith(tokens.PREFIX) and secret not in record.to_json().values()
    assert (record.name, record.role, record.env_list, record.created_by) == (
        "ci", "deployer", ["staging"], "tester",
    )  # fmt: skip
    assert record.token_hash == tokens.hash_secret(secret)
    assert find_token(project, tokens.hash_secret(secret)) == record
    assert find_token(project, tokens.hash_secret("lg_not-a-token")) is None


def test_revoked_tokens_are_listed_only_when_asked(project: Project) -> None:
    first, _ = create_token(project, name="ci", role="viewer", envs=[])
    create_token(project, name="page", role="admin", envs=[])
    revoked = revoke_token(project, first.id)
    assert revoked.revoked_at is not None
    assert [t.name for t in list_tokens(project)] == ["page"]
    assert [t.name for t in list_tokens(project, include_revoked=True)] == ["ci", "page"]
    with pytest.raises(NotFoundError):
        revoke_token(project, 999)


@pytest.mark.parametrize(
    ("name", "role", "envs", "error", "message"),
    [
        ("ci", "deployer", ["nowhere"], ConfigError, "nowhere"),
        ("ci", "root", [], UsageError, "unknown role 'root'"),
        ("  ", "viewer", [], UsageError, "a token needs a name"),
        (" ci ", "viewer", [], UsageError, "starts or ends with whitespace"),
        ("ci\t", "viewer", [], UsageError, r"U\+0009 \(a control character\)"),
        ("c\x00i", "viewer", [], UsageError, r"U\+0000"),
        ("c\x9bi", "viewer", [], UsageError, r"U\+009B"),
        ("c\u202ei", "viewer", [], UsageError, r"U\+202E \(RIGHT-TO-LEFT OVERRIDE\)"),
        ("c\u2028i", "viewer", [], UsageError, r"U\+2028 \(LINE SEPARATOR\)"),
        ("c\ud800i", "viewer", [], UsageError, r"U\+D800"),
        ("lastgood", "viewer", [], UsageError, "reserved"),
        ("x" * 201, "viewer", [], UsageError, "at most 200 characters"),
    ],
)
def test_a_token_that_cannot_be_made_is_refused_before_anything_is_written(
    project: Project, name: str, role: str, envs: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        create_token(project, name=name, role=role, envs=envs)
    assert list_tokens(project, include_revoked=True) == []


def test_only_a_live_token_is_accepted_and_the_refusal_says_no_more(project: Project) -> None:
    record, secret = create_token(project, name="ci", role="viewer", envs=[])
    assert tokens.live(find_token(project, tokens.hash_secret(tokens.required(secret)))) == record
    with pytest.raises(AuthError, match="this needs an API token"):
        tokens.required("")
    revoked = revoke_token(project, record.id)
    for found in (None, revoked):
        with pytest.raises(AuthError) as refused:
            tokens.live(found)
        assert refused.value.message == "the API token is unknown or revoked"
