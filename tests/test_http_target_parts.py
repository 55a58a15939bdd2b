"""The ``http`` target in process: option checks, the comparable form, and one target against
a real workflow tool on 127.0.0.1 (push, read-back, fetch, errors, secrets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood import config
from lastgood.bundle import Bundle
from lastgood.errors import ConfigError, TargetError
from lastgood.targets import Release, _json_form, target_class
from lastgood.targets._http_settings import parse_options
from lastgood.targets.http import UNMATCHED, HttpTarget
from tests import tool_apis
from tests.tool_apis import ToolApi

KEY = "env.prod.target"
NAME = "lead-routing-prod"


def options(url: str = "${WF_URL}", **more: Any) -> dict[str, Any]:
    return {
        "url": f"{url}/api/v1/workflows/lead-routing-{{env}}",
        "headers": {"X-API-KEY": "${WF_API_KEY}", "X-Version": "{version}"},
        "live": {"url": f"{url}/api/v1/workflows/lead-routing-{{env}}", "label": "/versionTag"},
        "timeout": "5s",
        **more,
    }


def test_it_is_a_built_in_type() -> None:
    assert target_class("http") is HttpTarget


def test_defaults() -> None:
    settings = parse_options(options(), KEY)
    assert (settings.method, settings.body, settings.idempotent) == ("PUT", "bundle", True)
    assert settings.expect == tuple(range(200, 300))
    assert settings.live.pointer == "/config"
    assert settings.live.headers == settings.headers  # the GET sends the push's headers
    assert parse_options(options(method="POST"), KEY).idempotent is False
    assert parse_options(options(method="POST", idempotent=True), KEY).idempotent is True
    assert parse_options(options(expect=201), KEY).expect == (201,)


@pytest.mark.parametrize(
    ("change", "said", "hint"),
    [
        ({"methdo": "PUT"}, "unknown option env.prod.target.methdo", "did you mean"),
        ({"method": "DELETE"}, "method = 'DELETE' is not one of PUT, POST, PATCH", "PUT"),
        ({"body": "zip"}, "body = 'zip' is not one of bundle, file", "bundle"),
        ({"url": "http://x/{verison}"}, "unknown placeholder {verison}", "{version}"),
        ({"url": "http://x/${no-dash}"}, "not an environment variable name", "${NAME}"),
        ({"headers": ["a"]}, "headers must be a table", "Bearer"),
        ({"expect": "2xx"}, "expect = '2xx' must be a status code", "[200, 204]"),
        ({"expect": [99]}, "must be a status code", "[200, 204]"),
        ({"timeout": "0s"}, "timeout must be more than 0", "30s"),
        ({"idempotent": "yes"}, "idempotent = 'yes' must be true or false", "harmless"),
        ({"live": "http://x"}, "live must be a table", "pointer"),
        ({"live": {"url": "http://x/{version}"}}, "unknown placeholder {version}", "known"),
        ({"live": {"url": "http://x", "pointr": "/a"}}, "live.pointr", "live.pointer"),
        ({"live": {"url": "http://x", "pointer": "config"}}, "is not a JSON pointer", "/config"),
        ({"live": {"url": "http://x", "label": 3}}, "is not a JSON pointer", "/config"),
    ],
)
def test_bad_options_are_refused_with_a_hint(change: dict[str, Any], said: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options({**options(), **change}, KEY)
    assert said in caught.value.message
    assert hint in (caught.value.hint or "")


def test_url_and_live_are_required() -> None:
    with pytest.raises(ConfigError, match="has no url"):
        parse_options({"live": {"url": "http://x"}}, KEY)
    with pytest.raises(ConfigError, match="has no live table"):
        parse_options({"url": "http://x"}, KEY)


def test_the_options_are_checked_when_the_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text(
        '[env.prod.target]\ntype = "http"\nurl = "http://x/{env}"\n'
        'live = { url = "http://x/{env}" }\nbdy = "file"\n'
    )
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    assert "unknown option env.prod.target.bdy" in caught.value.message
    assert caught.value.hint == "did you mean env.prod.target.body?"


# ---- the comparable form ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pushed", "returned"),
    [
        (b'{"a": 1, "b": [1, 2]}\n', {"b": [1, 2], "a": 1}),  # parsed by the tool
        (b'{"a": 1, "b": [1, 2]}\n', '{"b":[1,2],"a":1}'),  # re-serialised as a string
        (b'{"a": 1}', {"encoding": "utf-8", "content": '{"a": 1}'}),  # the bundle's own form
        (b"Hello {name}\n", "Hello {name}\n"),
        (b"\xff\x00", {"encoding": "base64", "content": "/wA="}),
    ],
)
def test_the_same_content_has_the_same_form(pushed: bytes, returned: Any) -> None:
    assert _json_form.of_bytes(pushed) == _json_form.of_value(returned)


def test_different_content_has_a_different_hash() -> None:
    one = _json_form.canonical_hash({"a": _json_form.of_bytes(b'{"t": 0.62}')})
    two = _json_form.canonical_hash({"a": _json_form.of_bytes(b'{"t": 0.99}')})
    assert one != two
    assert _json_form.of_bytes(b"Hello\n") != _json_form.of_bytes(b"Hello")


def test_the_bundle_carries_text_as_is_and_binary_as_base64() -> None:
    body = json.loads(_json_form.bundle_body({"b.bin": b"\xff", "a.txt": "é\n".encode()}))
    assert body == {
        "a.txt": {"encoding": "utf-8", "content": "é\n"},
        "b.bin": {"encoding": "base64", "content": "/w=="},
    }


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [("", {"a/b": [1, {"~x": 2}]}), ("/a~1b", [1, {"~x": 2}]), ("/a~1b/1/~0x", 2)],
)
def test_json_pointers(pointer: str, expected: Any) -> None:
    assert _json_form.resolve({"a/b": [1, {"~x": 2}]}, pointer) == expected


@pytest.mark.parametrize("pointer", ["/missing", "/a~1b/5", "/a~1b/x"])
def test_a_pointer_to_nothing_is_a_key_error(pointer: str) -> None:
    with pytest.raises(KeyError):
        _json_form.resolve({"a/b": [1]}, pointer)


# ---- one target against a real tool ------------------------------------------------------------


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolApi]:
    with tool_apis.serving("workflow") as running:
        monkeypatch.setenv("WF_URL", running.url)
        monkeypatch.setenv("WF_API_KEY", tool_apis.WORKFLOW_KEY)
        yield running


def release_of(number: int, min_score: int) -> tuple[Release, dict[str, bytes]]:
    files = {"flow.json": json.dumps({"min_score": min_score}).encode()}
    return Release(number, Bundle(files).content_hash), files


def make(tmp_path: Path, **more: Any) -> HttpTarget:
    (tmp_path / "ws").mkdir(exist_ok=True)
    return HttpTarget("prod", options(**more), tmp_path / "ws")


def deployed(target: HttpTarget, number: int, min_score: int) -> Release:
    release, files = release_of(number, min_score)
    target.stage(release, files)
    target.activate(release)
    return release


def test_push_read_back_and_rollback(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path)
    assert target.live() is None and target.actual_hash() is None
    one = deployed(target, 1, 40)
    two = deployed(target, 2, 45)
    assert tool.workflows[NAME]["versionTag"] == "v2"
    assert target.live() == two and target.actual_hash() == two.content_hash
    target.activate(one)
    assert target.live() == one and tool.workflows[NAME]["versionTag"] == "v1"
    assert target.describe().startswith("http PUT ${WF_URL}/api/v1/")


def test_without_a_label_the_content_names_the_release(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path, live={"url": "${WF_URL}/api/v1/workflows/lead-routing-{env}"})
    one = deployed(target, 1, 40)
    two = deployed(target, 2, 45)
    assert target.live() == two
    tool.workflows[NAME]["versionTag"] = "something else"
    assert target.live() == two  # the content decides
    tool.edit_workflow(NAME, {"flow.json": {"min_score": 40}})  # parsed: still v1's content
    assert target.live() == one
    tool.edit_workflow(NAME, {"flow.json": {"min_score": 99}})
    assert target.read_live().startswith(UNMATCHED)
    assert str(target.actual_hash()).startswith("unknown:")


def test_an_edit_under_the_same_label_is_fetched_as_files(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path)
    one = deployed(target, 1, 40)
    tool.edit_workflow(NAME, {"flow.json": '{"min_score": 99}'})
    assert target.live() == one
    assert target.actual_hash() != one.content_hash
    fetched = target.live_path()
    assert fetched is not None and b"99" in (fetched / "flow.json").read_bytes()
    assert target.repair(one, release_of(1, 40)[1]) == ["flow.json"]
    assert target.actual_hash() == one.content_hash


def test_a_fetch_never_writes_outside_its_folder(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path)
    deployed(target, 1, 40)
    tool.edit_workflow(NAME, {"../../escaped.json": "{}"})
    with pytest.raises(TargetError, match="not a plain relative path"):
        target.actual_hash()
    assert not list(tmp_path.rglob("escaped.json"))


def test_errors_name_the_request_and_hide_the_key(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path)
    deployed(target, 1, 40)
    tool.mode = "error"
    release, files = release_of(2, 45)
    target.stage(release, files)
    with pytest.raises(TargetError) as caught:
        target.activate(release)
    message = caught.value.message
    assert f"PUT {tool.url}/api/v1/workflows/{NAME} for prod answered 500" in message
    assert "tried 3 times" in message and tool_apis.WORKFLOW_KEY not in message
    assert "***" in message  # the tool echoed the key; it is masked
    assert tool.writes == ["v1"]


def test_a_bundle_answer_that_is_not_an_object_is_a_clear_error(
    tmp_path: Path, tool: ToolApi
) -> None:
    target = make(tmp_path)
    deployed(target, 1, 40)
    tool.edit_workflow(NAME, ["not", "a", "bundle"])
    with pytest.raises(TargetError, match="not an object of paths"):
        target.live()
    target = make(tmp_path, live={"url": "${WF_URL}/api/v1/workflows/x", "pointer": "/nope"})
    tool.workflows["x"] = {"config": {}}
    with pytest.raises(TargetError, match="has nothing at '/nope'"):
        target.live()


def test_an_unreachable_tool_is_a_target_error(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path, url="http://127.0.0.1:9")
    with pytest.raises(TargetError, match="failed"):
        target.read_live()


def test_one_request_per_file_needs_path_in_the_url(tmp_path: Path, tool: ToolApi) -> None:
    target = make(tmp_path, body="file")
    release = Release(1, Bundle({"a.json": b"{}", "b.json": b"{}"}).content_hash)
    target.stage(release, {"a.json": b"{}", "b.json": b"{}"})
    with pytest.raises(TargetError, match="has no \\{path\\}"):
        target.activate(release)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolApi]:
    with tool_apis.serving("prompts") as running:
        monkeypatch.setenv("PR_URL", running.url)
        monkeypatch.setenv("PR_TOKEN", tool_apis.PROMPT_TOKEN)
        yield running


def prompt_target(tmp_path: Path) -> HttpTarget:
    (tmp_path / "ws").mkdir(exist_ok=True)
    headers = {"Authorization": "Bearer ${PR_TOKEN}"}
    return HttpTarget(
        "prod",
        {
            "url": "${PR_URL}/api/prompts/{path}/versions?label={env}",
            "method": "POST",
            "body": "file",
            "headers": headers,
            "live": {"url": "${PR_URL}/api/prompts/{path}?label={env}", "pointer": "/prompt"},
        },
        tmp_path / "ws",
    )


def test_a_push_with_more_files_than_the_recorded_one_is_recognised(
    tmp_path: Path, prompts: ToolApi
) -> None:
    """A killed process pushed v2 (a changed prompt and a new one) and recorded nothing: the
    next command must read v2's paths too, or it would call the tool's content unknown."""
    target = prompt_target(tmp_path)
    one_files = {"a.txt": b"Hello {name}\n"}
    one = Release(1, Bundle(one_files).content_hash)
    target.stage(one, one_files)
    target.activate(one)
    two_files = {"a.txt": b"Hi {name}\n", "b.txt": b"Bye {name}\n"}
    two = Release(2, Bundle(two_files).content_hash)
    target.stage(two, two_files)
    target.push(two, target.store.release_path(two.name))  # killed before the read-back
    fresh = prompt_target(tmp_path)
    assert fresh.recorded() == one
    assert fresh.live() == two
    assert "recorded that the tool serves" in str(fresh.recover())


def test_a_read_back_naming_another_release_fails_with_an_http_hint(
    tmp_path: Path, tool: ToolApi
) -> None:
    live = {"url": "${WF_URL}/api/v1/workflows/lead-routing-{env}", "label": "/name"}
    target = make(tmp_path, live=live)  # a label field that is not the version sent
    release, files = release_of(1, 40)
    target.stage(release, files)
    with pytest.raises(TargetError) as caught:
        target.activate(release)
    assert "reading it back says 'lead-routing-prod'" in caught.value.message
    assert "live.label must name the field" in (caught.value.hint or "")
