"""The verbs in process on a ``command`` target whose tool is a folder the commands write to:
deploy, automatic and manual rollback, reconcile after an unrecorded push, status of a foreign
label. The end-to-end tests against a real HTTP service are in ``tests/test_command_target.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.operations.deploy import deploy
from lastgood.operations.rollback import rollback
from lastgood.operations.status import status
from lastgood.outcome import OK, RESTORED
from lastgood.project import Project
from lastgood.targets.command import CommandTarget

CONFIG = """\
[env.production]
bake = "0s"
interval = "10ms"
failures = 1
verify_rounds = 1

[env.production.target]
type = "command"
activate = 'cp "$LASTGOOD_PATH/value.txt" ../tool/value && echo "$LASTGOOD_VERSION" > ../tool/label'
live = "cat ../tool/label 2>/dev/null || true"
fetch = 'cp ../tool/value "$LASTGOOD_PATH/value.txt"'

[[env.production.check]]
name = "value-ok"
type = "command"
run = "grep -qx ok ../tool/value"
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "tool").mkdir()
    (root / "lastgood.toml").write_text(CONFIG)
    opened = Project.open(root, actor="verbs-test")
    yield opened
    opened.close()


def write(project: Project, value: str) -> None:
    (project.root / "value.txt").write_text(f"{value}\n")


def tool(project: Project) -> tuple[str, str]:
    folder = project.root.parent / "tool"
    return (folder / "value").read_text().strip(), (folder / "label").read_text().strip()


def test_deploy_and_automatic_rollback(project: Project) -> None:
    write(project, "ok")
    assert deploy(project, "production", message="one").exit_code == OK
    write(project, "broken")
    outcome = deploy(project, "production", message="two")
    assert outcome.exit_code == RESTORED, outcome.summary
    assert tool(project) == ("ok", "v1")
    (report,) = status(project, "production")
    assert (report.live_version, report.last_good, report.drifted) == (1, 1, False)


def test_manual_rollback_and_reconcile_after_an_unrecorded_push(project: Project) -> None:
    write(project, "ok")
    deploy(project, "production", message="one")
    (project.root / "value.txt").write_text("ok\n# two\n")
    deploy(project, "production", message="two")
    assert rollback(project, "production", reason="back").exit_code == OK
    assert tool(project)[1] == "v1"
    target = project.target("production")
    assert isinstance(target, CommandTarget)
    two = next(r for r in target.retained() if r.version == 2)
    target.push(two, target.store.release_path(two.name))  # as a process killed right after
    (report,) = status(project, "production")
    assert report.live_version == 2 == report.ledger_version
    assert any("reconciled" in warning for warning in report.warnings)


def test_a_foreign_label_is_live_unknown(project: Project) -> None:
    write(project, "ok")
    deploy(project, "production", message="one")
    (project.root.parent / "tool" / "label").write_text("set-in-the-tool\n")
    (report,) = status(project, "production")
    assert report.live_unknown and report.drifted and report.live_version == 1
    assert report.warnings[0].startswith("live: unknown (the tool serves something")
