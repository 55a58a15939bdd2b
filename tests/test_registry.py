"""``lastgood.registry``, the one plugin loader of targets and checks, in process: registered
classes first, then built-ins, then entry points of a real (if tiny) installed distribution."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.checks.base import Check, CheckContext, CheckResult
from lastgood.checks.http import HttpCheck
from lastgood.checks.registry import CHECKS
from lastgood.errors import ConfigError
from lastgood.registry import Registry
from lastgood.targets.directory import DirectoryTarget
from lastgood.targets.registry import TARGETS


class AlwaysOk(Check):
    def probe(self, context: CheckContext) -> CheckResult:
        return CheckResult(self.name, True, "fine")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution on sys.path whose entry points add a check and try to replace the
    ``directory`` target, as ``pip install`` would leave it."""
    (tmp_path / "ours_plugin.py").write_text(
        "from lastgood.checks.base import Check, CheckResult\n\n"
        "class QueueDrains(Check):\n"
        "    def probe(self, context):\n"
        "        return CheckResult(self.name, True, 'draining')\n\n"
        "class NotAPlugin:\n"
        "    pass\n"
    )
    info = tmp_path / "ours_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ours-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [lastgood.checks]
            queue-drains = ours_plugin:QueueDrains
            not-a-check = ours_plugin:NotAPlugin

            [lastgood.targets]
            directory = ours_plugin:NotAPlugin
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield


def test_built_ins_are_found_by_name() -> None:
    assert TARGETS.lookup("directory") is DirectoryTarget
    assert CHECKS.lookup("http") is HttpCheck


def test_a_class_registered_in_python_comes_first() -> None:
    checks: Registry[Check] = Registry("check", Check, "lastgood.checks", CHECKS.builtin)
    checks.register("http", AlwaysOk)
    assert checks.lookup("http") is AlwaysOk
    assert CHECKS.lookup("http") is HttpCheck  # another registry is untouched


def test_entry_points_add_types_but_never_replace_a_built_in(installed: None) -> None:
    assert CHECKS.lookup("queue-drains").__name__ == "QueueDrains"
    assert TARGETS.lookup("directory") is DirectoryTarget
    with pytest.raises(ConfigError, match="ours_plugin:NotAPlugin is not a lastgood Check"):
        CHECKS.lookup("not-a-check")


@pytest.mark.parametrize(("registry", "family"), [(TARGETS, "target"), (CHECKS, "check")])
def test_an_unknown_type_lists_the_known_ones_and_says_how_to_add_one(
    registry: Registry[object], family: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        registry.lookup("crm")
    assert refused.value.message == f"unknown {family} type 'crm'"
    hint = refused.value.hint or ""
    assert all(name in hint for name in registry.builtin)
    assert f"'lastgood.{family}s' entry point group" in hint
