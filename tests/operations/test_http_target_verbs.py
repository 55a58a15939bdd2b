"""The verbs in process on an ``http`` target against the real scoring API of
``tests/scoring_api.py``: deploy, automatic and manual rollback, reconcile after an unrecorded
push, drift by hand. The end-to-end CLI tests are in ``tests/test_http_target.py``.
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
from lastgood.targets.http import HttpTarget
from tests import scoring_api
from tests.scoring_api import ScoringApi

CONFIG = """\
[env.production]
bake = "0s"
interval = "10ms"
failures = 1
verify_rounds = 1

[env.production.target]
type = "http"
body = "file"
url = "${SCORING_URL}/threshold"
headers = { Authorization = "Bearer ${SCORING_TOKEN}", X-Version = "{version}" }
live = { url = "${SCORING_URL}/threshold", pointer = "" }

[[env.production.check]]
name = "threshold-sane"
type = "command"
run = '''curl -fsS "$SCORING_URL/threshold" -H "Authorization: Bearer $SCORING_TOKEN" \\
  | python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)["threshold"] >= 0.9)' '''
"""
GOOD = b'{"threshold": 0.62}\n'


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScoringApi]:
    with scoring_api.serving() as running:
        monkeypatch.setenv("SCORING_URL", running.url)
        monkeypatch.setenv("SCORING_TOKEN", scoring_api.TOKEN)
        yield running


@pytest.fixture
def project(tmp_path: Path, api: ScoringApi) -> Iterator[Project]:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "lastgood.toml").write_text(CONFIG)
    opened = Project.open(root, actor="verbs-test")
    yield opened
    opened.close()


def write(project: Project, document: bytes) -> None:
    (project.root / "threshold.json").write_bytes(document)


def test_deploy_and_automatic_rollback(project: Project, api: ScoringApi) -> None:
    write(project, GOOD)
    assert deploy(project, "production", message="one").exit_code == OK
    write(project, b'{"threshold": 1.5}\n')
    outcome = deploy(project, "production", message="two")
    assert outcome.exit_code == RESTORED, outcome.summary
    assert (api.document, api.version) == (GOOD, "v1")
    (report,) = status(project, "production")
    assert (report.live_version, report.last_good, report.drifted) == (1, 1, False)


def test_manual_rollback_and_reconcile_after_an_unrecorded_push(
    project: Project, api: ScoringApi
) -> None:
    write(project, GOOD)
    deploy(project, "production", message="one")
    write(project, b'{"threshold": 0.58}\n')
    deploy(project, "production", message="two")
    assert rollback(project, "production", reason="back").exit_code == OK
    assert api.document == GOOD
    target = project.target("production")
    assert isinstance(target, HttpTarget)
    two = next(r for r in target.retained() if r.version == 2)
    target.push(two, target.store.release_path(two.name))  # as a process killed right after
    (report,) = status(project, "production")
    assert report.live_version == 2 == report.ledger_version
    assert any("reconciled" in warning for warning in report.warnings)


def test_a_value_edited_in_the_tool_is_live_unknown(project: Project, api: ScoringApi) -> None:
    write(project, GOOD)
    deploy(project, "production", message="one")
    api.edit_by_hand(b'{"threshold": 0.7}')
    (report,) = status(project, "production")
    assert report.live_unknown and report.drifted and report.live_version == 1
    api.edit_by_hand(b'{ "threshold" : 0.62 }')  # the same value, written differently
    (report,) = status(project, "production")
    assert not report.drifted and not report.live_unknown


def test_a_deploy_and_a_status_read_the_ca_bundle_once(
    project: Project, api: ScoringApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx opens a client for each request and would read the CA bundle every time (about
    25 ms of CPU each, a dozen times a deploy); every request shares one TLS context."""
    import ssl

    from lastgood import tls

    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        load(context, *args, **kwargs)  # type: ignore[arg-type]

    tls.verifying.cache_clear()
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    write(project, GOOD)
    assert deploy(project, "production", message="one").exit_code == OK
    status(project, "production")
    assert len(loads) == 1, loads
