"""docs/ci.md's examples run: the shell of every ``run:`` (GitHub Actions) and ``script:``
(GitLab CI) is taken from the page's YAML and run as the CI would run it.

What the CI provides is provided for real, with nothing of lastgood stood in for: a fresh
clone of a real git repository checked out at the commit (``actions/checkout``), a Python of
its own to install into (``actions/setup-python``, ``image: python``), the CI's variables
(``GITHUB_SHA`` / ``CI_COMMIT_SHA``, the run's id) and the secrets and variables the page tells
people to store, pointing at a real ``lastgood serve`` started here. The install line runs as
written; ``PIP_*`` variables point pip at a wheel built from this checkout (no index, no
downloads, the dependencies from the test's own environment) instead of the package index.
Each job runs twice: a good commit must exit 0, one whose checks fail must exit 3.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Workspace
from tests.test_git import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

PROJECT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.(\w+)\s*\}\}")
KNOWN_ACTIONS = {"actions/checkout@v4", "actions/setup-python@v5"}  # what the test emulates


def examples() -> list[dict[str, Any]]:
    text = (PROJECT / "docs" / "ci.md").read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in FENCE.findall(text)]


def github_workflow() -> dict[str, Any]:
    [found] = [example for example in examples() if "jobs" in example]
    return found


def gitlab_job() -> dict[str, Any]:
    jobs = [job for example in examples() if "jobs" not in example for job in example.values()]
    [found] = [job for job in jobs if isinstance(job, dict) and "script" in job]
    return found


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a wheel of this checkout, built from a copy (the tree stays clean)."""
    folder = tmp_path_factory.mktemp("wheels")
    source = folder / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PROJECT / "lastgood", source / "lastgood", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(folder / "dist"), str(source)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    return folder / "dist"


def fresh_python(folder: Path, wheels: Path) -> dict[str, str]:
    """A Python of the job's own, as setup-python or the job's image gives one: the variables
    its shell starts with. pip finds lastgood in ``wheels`` and its dependencies installed."""
    venv = folder / "python"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (folder / "home").mkdir()
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(folder / "home"),
        "CI": "true",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_DEPS": "1",
        "PIP_IGNORE_INSTALLED": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


class Origin:
    """The team's repository, whose workspace a real ``lastgood serve`` serves; CI jobs clone it."""

    def __init__(self, ws: Workspace, server: Any) -> None:
        self.ws = ws
        self.server = server
        self.token = server.token("deployer", "staging", name="ci")
        self.runs = 0

    def commit(self, healthy: bool, message: str) -> str:
        (self.ws.healthy if healthy else self.ws.broken)(message)
        git(self.ws.root, "add", "-A")
        git(self.ws.root, "commit", "-q", "-m", message)
        return git(self.ws.root, "rev-parse", "HEAD")

    def checkout(self, sha: str) -> Path:
        """What the CI's checkout leaves: a fresh clone, HEAD detached at ``sha``."""
        self.runs += 1
        clone = self.ws.base / f"ci-{self.runs}"
        git(self.ws.base, "clone", "-q", str(self.ws.root), str(clone))
        git(clone, "checkout", "-q", "--detach", sha)
        return clone


@pytest.fixture
def origin(
    workspace: Callable[..., Workspace], serve: Callable[..., Any], request: pytest.FixtureRequest
) -> Iterator[Origin]:
    """The team's repository and its server: the GitHub job's on SQLite, the GitLab job's on
    PostgreSQL, so the examples are proven on both stores."""
    postgres = (
        getattr(request.node, "callspec", None) and request.node.callspec.params["ci"] == "gitlab"
    )
    ws = workspace(store=request.getfixturevalue("pg_url") if postgres else None)
    ws.write(".gitignore", ".lastgood/\n")
    git(ws.root, "init", "-q", "-b", "main")
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", "lastgood.toml")
    yield Origin(ws, serve(ws))


def run_github(origin: Origin, sha: str, wheels: Path) -> subprocess.CompletedProcess[str]:
    """The workflow's job for a push of ``sha``: each ``run:`` in turn with ``bash -e`` (as
    GitHub runs a step with no ``shell:``), stopping at the first that fails."""
    [job] = github_workflow()["jobs"].values()
    clone = origin.checkout(sha)
    base = fresh_python(clone.parent / f"{clone.name}-runner", wheels)
    base.update(GITHUB_ACTIONS="true", GITHUB_SHA=sha, GITHUB_RUN_ID="4242",
                GITHUB_WORKSPACE=str(clone))  # fmt: skip
    configured = {"secrets.LASTGOOD_TOKEN": origin.token, "vars.LASTGOOD_SERVER": origin.server.url}
    outputs = []
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"] in KNOWN_ACTIONS, f"the test does not emulate {step['uses']}"
            continue
        assert "${{" not in step["run"], "write CI data into the script as variables"
        env = {**base, **{key: expand(value, configured) for key, value in
                          step.get("env", {}).items()}}  # fmt: skip
        done = shell(["bash", "-e", "-c", step["run"]], clone, env)
        outputs.append(done)
        if done.returncode != 0:
            break
    return joined(outputs)


def run_gitlab(origin: Origin, sha: str, wheels: Path) -> subprocess.CompletedProcess[str]:
    """The pipeline's job for ``sha``: ``before_script`` and ``script`` as one shell with
    ``set -eo pipefail``, as the runner runs them, with the project's CI/CD variables."""
    job = gitlab_job()
    assert job["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    clone = origin.checkout(sha)
    env = fresh_python(clone.parent / f"{clone.name}-runner", wheels)
    env.update(GITLAB_CI="true", CI_COMMIT_SHA=sha, CI_PIPELINE_ID="777",
               CI_COMMIT_BRANCH="main", CI_DEFAULT_BRANCH="main", CI_PROJECT_DIR=str(clone),
               LASTGOOD_TOKEN=origin.token, LASTGOOD_SERVER=origin.server.url)  # fmt: skip
    lines = [*job.get("before_script", []), *job["script"]]
    return shell(["bash", "-eo", "pipefail", "-c", "\n".join(lines)], clone, env)


def expand(value: str, configured: dict[str, str]) -> str:
    """``${{ secrets.X }}`` and ``${{ vars.X }}`` as GitHub fills them in; nothing else."""
    filled = EXPRESSION.sub(lambda match: configured[f"{match[1]}.{match[2]}"], value)
    assert "${{" not in filled, f"the test cannot fill in {value!r}"
    return filled


def shell(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def joined(outputs: list[subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    last = outputs[-1]
    return subprocess.CompletedProcess(
        last.args,
        last.returncode,
        "".join(done.stdout for done in outputs),
        "".join(done.stderr for done in outputs),
    )


RUNNERS = {"github": run_github, "gitlab": run_gitlab}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("ci", sorted(RUNNERS))
def test_the_ci_example_deploys_a_good_commit_and_fails_a_bad_one_with_3(
    ci: str, origin: Origin, wheels: Path
) -> None:
    run = RUNNERS[ci]
    good = origin.commit(True, "raise the lead threshold")

    passed = run(origin, good, wheels)

    assert passed.returncode == 0, passed.stderr
    assert "Successfully installed lastgood" in passed.stdout  # the install line ran
    assert passed.stdout.endswith("\nv1 is live on staging and passed its bake\n"), passed.stdout
    assert f"uploaded git:{good} as v1 on {origin.server.url}" in passed.stderr
    assert origin.token not in passed.stdout + passed.stderr
    shown = origin.ws.run("show", "staging:live", "--json")
    assert f'"git_commit": "{good}"' in shown.stdout

    bad = origin.commit(False, "threshold 0.99")

    failed = run(origin, bad, wheels)

    assert failed.returncode == 3, failed.stderr
    verdict = failed.stdout.splitlines()[-1]
    assert verdict.startswith("v2 failed 'health-file-ok' on staging"), failed.stdout
    assert "restored v1 in " in verdict and "verified it" in verdict
    assert f"deploying v2 to staging through {origin.server.url}" in failed.stderr
    live = origin.ws.base / "live" / "current" / "scoring" / "thresholds.yaml"
    assert live.read_text().endswith("marker: raise the lead threshold\n")


def test_the_examples_are_what_the_test_runs() -> None:
    """The page holds exactly one workflow and one pipeline, each installing lastgood and
    deploying the CI's commit with --wait; no secret is written into a script."""
    workflow, job = github_workflow(), gitlab_job()
    [github] = workflow["jobs"].values()
    runs = [step["run"] for step in github["steps"] if "run" in step]
    assert runs[0] == "python -m pip install lastgood"
    assert '--commit "$GITHUB_SHA" --wait' in runs[1]
    assert job["before_script"] == ["python -m pip install lastgood"]
    assert '--commit "$CI_COMMIT_SHA" --wait' in job["script"][0]
    for script in [*runs, *job["script"]]:
        assert "TOKEN" not in script  # the token travels in the environment, never in argv
    assert os.path.basename(job["image"]).startswith("python:")
