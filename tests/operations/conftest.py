"""Tiny factories for testing the verbs of ``lastgood.operations`` in process.

Every test gets a real workspace (``tests/conftest.py``'s ``workspace``), a real SQLite store and
a real target in a temporary folder; the one check is a real shell command that passes while the
live ``health.txt`` says ok and there is no ``../outage`` file. Policies are fast by default (no
bake time, 10 ms between rounds), so a deploy takes milliseconds; a test that needs another
policy says so: ``project(bake="50ms", protected=True)``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from lastgood.events import Event
from lastgood.operations.deploy import deploy
from lastgood.operations.snapshot import snapshot
from lastgood.outcome import Outcome
from lastgood.project import Project
from lastgood.rows import VersionInfo
from tests.conftest import FAST, Workspace, healthy_files

ProjectFactory = Callable[..., Project]

# what tests/conftest.py's config_text writes itself; every other policy key is added here
_WRITTEN = ("bake", "interval", "failures")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


@pytest.fixture
def project(workspace: Callable[..., Workspace]) -> ProjectFactory:
    """Factory: ``project(target="files", checks=False, toml=EXTRA, budget="1s")`` → an open
    :class:`Project` on a fresh workspace with one environment, ``staging``.

    ``checks=False`` drops the environment's check; ``toml`` is appended to lastgood.toml (more
    environments, preflights, routes); any other keyword is a policy key of ``[env.staging]``."""

    def make(
        target: str = "directory",
        *,
        checks: bool = True,
        toml: str = "",
        store: str | None = None,
        **policy: object,
    ) -> Project:
        settings = {**FAST, **policy}
        written = {key: str(settings.pop(key)) for key in _WRITTEN if key in settings}
        ws = workspace(target=target, store=store, **written)
        config = ws.root / "lastgood.toml"
        text = config.read_text()
        if not checks:
            text = text.split("[[env.staging.check]]")[0]
        if "verify_rounds" in settings:
            text = text.replace("verify_rounds = 2\n", "")
        lines = "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items())
        text = text.replace("\n[[env.staging.check]]", f"{lines}\n[[env.staging.check]]", 1)
        if not checks:
            text += lines
        config.write_text(text + textwrap.dedent(toml))
        return ws.project()  # type: ignore[no-any-return]

    return make


def write(project: Project, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (path → content) into the workspace folder."""
    for relative, content in files.items():
        path = project.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def version(
    project: Project, files: Mapping[str, str | bytes] | None = None, *, message: str = "v"
) -> VersionInfo:
    """Write ``files`` (default: a healthy version) into the folder and snapshot it."""
    write(project, healthy_files() if files is None else files)
    return snapshot(project, message).version


def deployed(
    project: Project,
    env: str = "staging",
    files: Mapping[str, str | bytes] | None = None,
    *,
    marker: str = "one",
    **options: Any,
) -> Outcome:
    """Write ``files`` (default: a healthy version marked ``marker``) and deploy the folder."""
    write(project, healthy_files(marker) if files is None else files)
    return deploy(project, env, message=options.pop("message", marker), **options)


def listen(project: Project) -> list[Event]:
    """Every event the project emits from now on, in order (check rounds included, which the
    ledger does not keep)."""
    heard: list[Event] = []
    project.events.subscribe(heard.append)
    return heard


def kinds(events: list[Event]) -> list[str]:
    return [event.kind.value for event in events]


def live_folder(project: Project) -> Path:
    """What the directory target of ``staging`` serves (``../live/current``)."""
    return project.root.parent / "live" / "current"


def outage(project: Project) -> None:
    """Break the world outside the configuration: from now on every check fails."""
    (project.root.parent / "outage").write_text("the CRM is down\n")
