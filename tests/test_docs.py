"""The docs cannot fall behind the code: every command, setting, event, error, config key and
failpoint must be documented, the generated CLI reference must be current, and the examples in
the docs must be accepted by the code they describe.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lastgood import config, config_notify, failpoint, settings
from lastgood.checks import command as command_check
from lastgood.checks import fleet as fleet_check
from lastgood.checks import http as http_check
from lastgood.checks import registry as check_registry
from lastgood.checks import sql as sql_check
from lastgood.errors import LastgoodError
from lastgood.events import EventKind
from lastgood.secrets import policy as secrets_policy
from lastgood.targets import _http_settings as http_target
from lastgood.targets import command as command_target
from lastgood.targets import directory as directory_target
from lastgood.targets import files as files_target
from lastgood.targets import registry as target_registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATOR = ROOT / "scripts" / "gen_cli_docs.py"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def fences(name: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(read(name)) if lang == language]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_classes(cls: type[LastgoodError] = LastgoodError) -> Iterator[type[LastgoodError]]:
    yield cls
    for child in cls.__subclasses__():
        yield from error_classes(child)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


# ---- the CLI reference ---------------------------------------------------------------------


def test_cli_reference_is_up_to_date(generator: ModuleType) -> None:
    current = read("cli.md")
    assert generator.render(current) == current, (
        "docs/cli.md is out of date: run .venv/bin/python scripts/gen_cli_docs.py"
    )


def test_every_command_is_in_the_cli_reference(generator: ModuleType) -> None:
    text = read("cli.md")
    paths = list(generator.walk(generator.load_cli()))
    assert paths, "no commands found"
    for path in paths:
        assert f"## `lastgood {' '.join(path)}`" in text, f"lastgood {' '.join(path)}"


def test_every_exit_code_is_in_the_cli_reference() -> None:
    text = read("cli.md")
    for code in range(6):
        assert f"| `{code}` |" in text, f"exit code {code}"


# ---- settings, events, errors, config keys, failpoints ------------------------------------


@pytest.mark.parametrize("setting", settings.ALL, ids=lambda s: s.env_var)
def test_every_setting_is_documented(setting: settings.Setting) -> None:
    assert f"`{setting.env_var}`" in read("configuration.md")


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_every_event_is_documented(kind: EventKind) -> None:
    assert f"`{kind.value}`" in read("concepts.md") + read("operations.md")


@pytest.mark.parametrize("cls", list(error_classes()), ids=lambda c: c.__name__)
def test_every_error_class_is_documented(cls: type[LastgoodError]) -> None:
    text = read("errors.md")
    assert f"## `{cls.__name__}`" in text, f"no section for {cls.__name__}"
    assert (
        f"Exit {cls.exit_code}, HTTP {cls.http_status}." in text.split(f"## `{cls.__name__}`", 1)[1]
    ), f"the section for {cls.__name__} must state its exit code and HTTP status"


CONFIG_KEYS = sorted(
    {*config._TOP_KEYS, *config._VERSIONING_KEYS, *config._VALIDATE_KEYS, *config._ENV_KEYS}
    | config.CHECK_COMMON_KEYS
    | config._WATCH_KEYS
    | config._DOCUMENT_KEYS
    | config_notify._NOTIFY_KEYS
    | config_notify._ROUTE_KEYS
    | config._GIT_KEYS
    | config._AGENT_KEYS
    | secrets_policy.KEYS
)


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_every_config_key_is_documented(key: str) -> None:
    assert f"`{key}`" in read("configuration.md")


def test_every_secrets_key_is_in_its_section() -> None:
    section = read("configuration.md").split("## `[secrets]`")[1].split("\n## ")[0]
    for key in secrets_policy.KEYS:
        assert f"| `{key}` |" in section, key


OPTIONS = [
    *(("directory target", o) for o in directory_target._OPTIONS),
    *(("files target", o) for o in files_target._OPTIONS),
    *(("command target", o) for o in command_target.OPTIONS),
    *(("http target", o) for o in http_target.OPTIONS),
    *(("http check", o) for o in http_check._OPTIONS),
    *(("command check", o) for o in command_check._OPTIONS),
    *(("sql check", o) for o in sql_check._OPTIONS),
    *(("fleet check", o) for o in fleet_check._OPTIONS),
]


@pytest.mark.parametrize(("kind", "option"), OPTIONS, ids=lambda v: str(v))
def test_every_built_in_option_is_documented(kind: str, option: str) -> None:
    assert f"| `{option}` |" in read("configuration.md"), f"{kind} option {option}"


def test_every_built_in_type_is_documented() -> None:
    text = read("configuration.md")
    for name in target_registry.BUILTIN:
        assert f"### `{name}`" in text or f"### `{name}` target" in text, name
    for name in check_registry.BUILTIN:
        assert f"### `{name}`" in text, name


@pytest.mark.parametrize("name", failpoint.NAMES)
def test_every_failpoint_is_documented(name: str) -> None:
    assert f"`{name}`" in read("rollback-safety.md")


# ---- examples must be accepted by the code -------------------------------------------------


def test_configuration_examples_parse(tmp_path: Path) -> None:
    blocks = fences("configuration.md", "toml")
    assert len(blocks) >= 5
    for block in blocks:
        parsed = config.parse(config.tomllib.loads(block), tmp_path)
        for env in parsed.environments.values():
            target_registry.target_class(env.target.type)(env.name, env.target.options, tmp_path)
            for spec in env.checks + env.preflight:
                check_registry.build_check(spec)


def test_plugin_examples_work(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "docs_plugins_example"}
    for block in fences("plugins.md", "python"):
        exec(compile(block, "docs/plugins.md", "exec"), namespace)
    try:
        target_class = target_registry.target_class("json-bundle")
        check_class = check_registry.check_class("file-not-empty")
    finally:
        target_registry.TARGETS.registered.pop("json-bundle", None)
        check_registry.CHECKS.registered.pop("file-not-empty", None)
    from lastgood.bundle import Bundle
    from lastgood.checks import CheckContext, run_check
    from lastgood.targets import Release

    bundle = Bundle({"scoring/thresholds.yaml": b"threshold: 0.4\n"})
    release = Release(1, bundle.content_hash)
    target = target_class("staging", {"path": "live"}, tmp_path)
    target.stage(release, bundle.files)
    target.stage(release, bundle.files)
    target.activate(release)
    assert target.live() == release
    assert target.retained() == [release]
    assert target.actual_hash() == bundle.content_hash

    spec = config.CheckSpec("thresholds", "file-not-empty", 2.0, {"file": "scoring/x.yaml"})
    check = check_class(spec)
    folder = tmp_path / "served" / "scoring"
    folder.mkdir(parents=True)
    (folder / "x.yaml").write_text("a: 1\n")
    context = CheckContext("staging", 1, tmp_path / "served", tmp_path)
    assert run_check(check, context).ok
    (folder / "x.yaml").unlink()
    assert not run_check(check, context).ok


def test_documented_references_parse() -> None:
    from lastgood import refs

    examples = ("12", "v12", "V12", "3f2a9c", "live", "last-good", "previous", "staging:last-good")
    for text in examples:
        assert f"`{text}`" in read("concepts.md"), text
        refs.parse(text)


# ---- links between the pages -----------------------------------------------------------------

LINK = re.compile(r"\]\(([\w.-]+\.md)?(?:#([\w-]+))?\)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(name: str) -> set[str]:
    text = FENCE.sub("", read(name))
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_pages_resolve(page: str) -> None:
    for target, anchor in LINK.findall(FENCE.sub("", read(page))):
        target = target or page
        assert (DOCS / target).is_file(), f"{page}: link to missing {target}"
        if anchor:
            assert anchor in anchors(target), f"{page}: no heading #{anchor} in {target}"


def test_target_examples_parse(tmp_path: Path) -> None:
    blocks = fences("targets.md", "toml")
    assert len(blocks) >= 2
    for block in blocks:
        parsed = config.parse(config.tomllib.loads(block), tmp_path)
        for env in parsed.environments.values():
            target_registry.target_class(env.target.type)(env.name, env.target.options, tmp_path)
            for spec in env.checks + env.preflight:
                check_registry.build_check(spec)


def test_the_remote_target_plugin_example_works(tmp_path: Path) -> None:
    """The CRM example of plugins.md, with an in-memory CRM standing in for its HTTP client."""
    namespace: dict[str, object] = {"__name__": "docs_plugins_example"}
    for block in fences("plugins.md", "python"):
        exec(compile(block, "docs/plugins.md", "exec"), namespace)
    target_registry.TARGETS.registered.pop("json-bundle", None)
    check_registry.CHECKS.registered.pop("file-not-empty", None)

    class Crm:
        rules, label = b"", ""

        def put_rules(self, rules: bytes, label: str) -> Any:
            self.rules, self.label = rules, label
            return type("Response", (), {"ok": True, "text": ""})()

        def rules_label(self) -> str:
            return self.label

    crm = Crm()
    namespace["crm_client"] = lambda url: crm
    from lastgood.bundle import Bundle
    from lastgood.targets import Release

    target_class: Any = namespace["CrmRulesTarget"]
    target = target_class("production", {"url": "https://crm.invalid/api"}, tmp_path)
    versions = []
    for number, text in ((1, b"[]\n"), (2, b'[{"route": "emea"}]\n')):
        bundle = Bundle({"routing/rules.json": text})
        release = Release(number, bundle.content_hash)
        target.stage(release, bundle.files)
        target.activate(release)
        target.record_verdict(release, "good")
        versions.append(release)
    assert target.live() == versions[1] and crm.label == "v2"
    assert target.previous() == versions[0]
    target.activate(versions[0])  # a rollback: the kept files pushed again
    assert crm.rules == b"[]\n" and target.actual_hash() == versions[0].content_hash
