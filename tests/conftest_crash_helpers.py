"""Helpers for the crash and race tests: real workspaces driven through the real CLI.

A plain module (not a conftest): ``tests/test_crash.py`` and ``tests/test_races.py`` import it.

Every workspace is a temp folder with real files::

    BASE/ws/lastgood.toml, health.txt, app.conf, rules/limits.yaml   the versioned folder
    BASE/ws/added/<label>.txt                                          new in each version
    BASE/ws/.lastgood/store.db                                         SQLite (the default store)
    BASE/live/staging/                                                 a ``directory`` target
    BASE/app/config/                                                   a ``files`` target (exists)

The one health check passes when ``health.txt`` in the live content says ``ok``, so a version is
made good or bad by its files. Building a workspace with a deployed version costs a few CLI runs,
so each starting state is built once per session through the CLI and copied per test (the
folder tree with its symlinks, and for PostgreSQL the database, with ``CREATE DATABASE …
TEMPLATE``); everything a test then does goes through ``lastgood`` subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastgood.bundle import Bundle

LASTGOOD = str(Path(sys.executable).with_name("lastgood"))
ENV = "staging"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
FOREIGN_FILE = "notes-from-the-app-team.txt"
FOREIGN_BYTES = b"lastgood must never touch this file\n"
KILLED = -signal.SIGKILL

CONFIG = """\
[env.staging]
target = {target}
bake = "{bake}"
interval = "{interval}"
failures = 2
verify_rounds = {verify_rounds}
lease = "{lease}"

[[env.staging.check]]
name = "health"
type = "command"
run = 'grep -qx ok "$LASTGOOD_PATH/health.txt"'
timeout = "{timeout}"
"""

TARGETS = {
    "directory": '{ type = "directory", path = "../live/staging" }',
    "files": '{ type = "files", path = "../app/config" }',
}


def version_files(label: str, *, good: bool) -> dict[str, bytes]:
    """The versioned files of one version: every file differs between labels, and
    ``added/<label>.txt`` is new in each version and gone in the next. It sorts first, so a
    files-target switch killed at ``target.mid-switch`` has just written a file that is new."""
    return {
        f"added/{label}.txt": f"only in {label}\n".encode(),
        "app.conf": f"release = {label}\n".encode(),
        "health.txt": b"ok\n" if good else b"FAILING: every lead scores zero\n",
        "rules/limits.yaml": f"label: {label}\nthreshold: 0.5\n".encode(),
    }


def content_hash(files: Mapping[str, bytes]) -> str:
    return Bundle(dict(files)).content_hash


@dataclass
class Result:
    """A finished CLI run."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def describe(self) -> str:
        return (
            f"`lastgood {' '.join(self.args)}` exited {self.code} after {self.seconds:.2f} s\n"
            f"--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"
        )

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {self.describe()}") from exc


@dataclass
class Workspace:
    """One temp workspace, its live target and its store, driven through the CLI."""

    base: Path
    kind: str
    store: str | None = None
    known: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.base / "ws"

    @property
    def live(self) -> Path:
        return self.base / ("live/staging" if self.kind == "directory" else "app/config")

    # ---- running the CLI ---------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        store = ["--store", self.store] if self.store else []
        return [LASTGOOD, "-C", str(self.root), *store, *args]

    def environ(self, failpoint: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
        env.update(LASTGOOD_AUTHOR="crash-test", NO_COLOR="1", PYTHONUNBUFFERED="1")
        if failpoint:
            env["LASTGOOD_FAILPOINT"] = failpoint
        return env

    def run(self, *args: str, failpoint: str | None = None, timeout: float = 60) -> Result:
        started = time.monotonic()
        done = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.environ(failpoint),
            timeout=timeout,
            check=False,
        )
        return Result(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def ok(self, *args: str, code: int = 0) -> Result:
        """Run and insist on exit ``code``."""
        result = self.run(*args)
        assert result.code == code, result.describe()
        return result

    def start(self, *args: str, failpoint: str | None = None) -> Running:
        process = subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(failpoint),
        )
        return Running(args, process, time.monotonic())

    # ---- the versioned folder ----------------------------------------------------------------

    def write(self, label: str, *, good: bool) -> dict[str, bytes]:
        """Make the folder hold version ``label`` (good or bad by its health file)."""
        files = version_files(label, good=good)
        self.write_files(files)
        self.known[label] = files
        return files

    def write_files(self, files: Mapping[str, bytes]) -> None:
        for old in ("app.conf", "health.txt", "rules/limits.yaml"):
            (self.root / old).unlink(missing_ok=True)
        shutil.rmtree(self.root / "added", ignore_errors=True)
        for path, data in files.items():
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_bytes(data)

    # ---- what the target really serves -------------------------------------------------------

    def served(self) -> dict[str, bytes]:
        """The files the target serves now, read from disk (lastgood's own state left out)."""
        if self.kind == "directory":
            folder = self.live / "current"
            assert folder.is_symlink(), f"{folder} is not a symlink: {_listing(self.live)}"
            assert folder.is_dir(), f"{folder} dangles -> {os.readlink(folder)}"
            return _read_tree(folder, skip=())
        files = _read_tree(self.live, skip=(".lastgood-target", FOREIGN_FILE))
        assert (self.live / FOREIGN_FILE).read_bytes() == FOREIGN_BYTES, "foreign file changed"
        return files

    def served_label(self, context: str = "") -> str:
        """The one known version the target serves completely; fails on a mixture or nothing."""
        served = self.served()
        matches = [label for label, files in self.known.items() if files == served]
        assert len(matches) == 1, (
            f"{context}: the target does not serve exactly one complete version.\n"
            f"served: {_short(served)}\nknown: "
            + "; ".join(f"{label}={_short(files)}" for label, files in self.known.items())
            + f"\n{_listing(self.live)}"
        )
        return matches[0]

    # ---- what lastgood says ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        (report,) = self.ok("status", ENV, "--json").json()
        return report

    def history(self) -> dict[str, Any]:
        return self.ok("history", ENV, "--json", "-n", "200").json()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.history()["events"] if event["kind"] == kind]


@dataclass
class Running:
    """A CLI process started in the background."""

    args: tuple[str, ...]
    process: subprocess.Popen[str]
    started: float

    def kill(self) -> bool:
        """SIGKILL it now; True when it was still running."""
        alive = self.process.poll() is None
        if alive:
            self.process.send_signal(signal.SIGKILL)
        return alive

    def finish(self, timeout: float = 60) -> Result:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"`lastgood {' '.join(self.args)}` hung; stderr: {err}") from None
        seconds = time.monotonic() - self.started
        return Result(self.args, self.process.returncode, out, err, seconds)

    def wait_for_line(self, needle: str, timeout: float = 20) -> str:
        """Read stderr until a line containing ``needle`` (the progress printer's events)."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} from `lastgood {' '.join(self.args)}`: {seen}")


def _read_tree(folder: Path, *, skip: tuple[str, ...]) -> dict[str, bytes]:
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        relative_dir = Path(dirpath).relative_to(folder)
        if relative_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            relative = (relative_dir / name).as_posix()
            if relative in skip:
                continue
            files[relative] = Path(dirpath, name).read_bytes()
    return files


def _short(files: Mapping[str, bytes]) -> str:
    return "{" + ", ".join(f"{p}: {d[:30]!r}" for p, d in sorted(files.items())) + "}"


def _listing(folder: Path) -> str:
    lines = [f"listing of {folder}:"]
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in sorted(filenames):
            lines.append("  " + str(Path(dirpath, name).relative_to(folder)))
    current = folder / "current"
    if current.is_symlink():
        lines.append(f"  current -> {os.readlink(current)}")
    return "\n".join(lines)


# ---- building workspaces ---------------------------------------------------------------------


def write_config(root: Path, kind: str, **policy: str | int) -> None:
    # a bake of three rounds: the mid-bake failpoint is hit after the first (a grep, a few ms)
    # with 0.4 s to spare on a loaded machine; every good deploy waits it out (0.6 s made the
    # crash tests a fifth longer; shorter rounds would cost more CPU than they save)
    values: dict[str, str | int] = {
        "bake": "0.4s",
        "interval": "0.2s",
        "verify_rounds": 2,
        "lease": "30s",
        "timeout": "2s",
    }
    values.update(policy)
    (root / "lastgood.toml").write_text(CONFIG.format(target=TARGETS[kind], **values))


def new_workspace(
    base: Path, kind: str, store: str | None = None, **policy: str | int
) -> Workspace:
    """An empty workspace with its config and (for ``files``) the app's existing folder."""
    workspace = Workspace(base, kind, store)
    workspace.root.mkdir(parents=True)
    write_config(workspace.root, kind, **policy)
    if kind == "files":
        workspace.live.mkdir(parents=True)
        (workspace.live / FOREIGN_FILE).write_bytes(FOREIGN_BYTES)
    return workspace


def deploy_good(workspace: Workspace, label: str) -> None:
    workspace.write(label, good=True)
    workspace.ok("deploy", ENV, "-m", label)


def copy_workspace(template: Workspace, base: Path, store: str | None) -> Workspace:
    """A copy of ``template``'s folders (symlinks kept) for one test, on ``store``."""
    for name in ("ws", "live", "app"):
        if (template.base / name).exists():
            shutil.copytree(template.base / name, base / name, symlinks=True)
    known = {label: dict(files) for label, files in template.known.items()}
    return Workspace(base, template.kind, store, known)


# ---- PostgreSQL ------------------------------------------------------------------------------


def postgres_problem() -> str | None:
    """None when the PostgreSQL at 127.0.0.1:5432 answers; otherwise why not."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("select 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable: {str(exc).strip()}"
    return None


def pg_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
        connection.execute(statement)


def new_database_name() -> str:
    return f"lastgood_crash_{secrets.token_hex(5)}"


# ---- invariants after a crash ----------------------------------------------------------------


def assert_recovered(workspace: Workspace, context: str) -> str:
    """The crash invariants; returns the label of the version the target serves.

    Without any lastgood command (except ``status`` first for the files target, whose journal
    recovery belongs to "the next command"), the target serves exactly one complete version;
    then ``status`` reports exactly that as live, with the ledger agreeing and no drift, and no
    ledger record is left ``running``.
    """
    if workspace.kind == "files":
        workspace.ok("status", ENV)
    label = workspace.served_label(context)
    report = workspace.status()
    expected = content_hash(workspace.known[label])
    assert report["live_hash"] == expected, f"{context}: status says {report}, target has {label}"
    assert report["actual_hash"] == expected, f"{context}: drift after a crash: {report}"
    assert report["live_version"] is not None
    assert report["ledger_version"] == report["live_version"], f"{context}: {report}"
    assert report["lock"] is None, f"{context}: a dead process still holds the lock: {report}"
    running = [d for d in workspace.history()["deployments"] if d["status"] == "running"]
    assert not running, f"{context}: ledger records left running after status: {running}"
    return label


# ---- starting states, built once through the CLI and copied per test -------------------------

STAGES = ("v1", "v1v2")
_TEMPLATES: dict[tuple[str, str, str], tuple[Workspace, str | None]] = {}
_TEMPLATE_DATABASES: list[str] = []
_POSTGRES_PROBLEM: list[str | None] = []


def postgres_skip_reason() -> str | None:
    """Why PostgreSQL tests are skipped (asked once per session), or None."""
    if not _POSTGRES_PROBLEM:
        _POSTGRES_PROBLEM.append(postgres_problem())
    return _POSTGRES_PROBLEM[0]


def _create_database(name: str, template: str | None) -> None:
    import psycopg

    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for _attempt in range(50):
        try:
            pg_execute(statement)
            return
        except psycopg.errors.ObjectInUse:  # the last CLI's backend is still closing
            time.sleep(0.1)
    pg_execute(statement)


def template(root: Path, kind: str, store: str, stage: str) -> tuple[Workspace, str | None]:
    """The starting state ``stage`` ("v1": v1 deployed and good; "v1v2": v1 then v2)."""
    key = (kind, store, stage)
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    base = root / f"{kind}-{store}-{stage}"
    shutil.rmtree(base, ignore_errors=True)  # what an earlier, failed build left
    database = url = None
    previous = template(root, kind, store, "v1") if stage == "v1v2" else None
    if store == "postgresql":
        database = new_database_name()
        _create_database(database, previous[1] if previous else None)
        _TEMPLATE_DATABASES.append(database)
        url = PG_URL.format(name=database)
    if previous is None:
        workspace = new_workspace(base, kind, url)
        deploy_good(workspace, "v1")
    else:
        workspace = copy_workspace(previous[0], base, url)
        deploy_good(workspace, "v2")
    _TEMPLATES[key] = (workspace, database)
    return _TEMPLATES[key]


def drop_template_databases() -> None:
    while _TEMPLATE_DATABASES:
        pg_execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE_DATABASES.pop()}" WITH (FORCE)')
    _TEMPLATES.clear()


def make_workspace(
    stack: contextlib.ExitStack,
    base: Path,
    templates_root: Path,
    kind: str = "directory",
    store: str = "sqlite",
    stage: str = "v1",
) -> Workspace:
    """A workspace for one test in state ``stage``, on SQLite or a fresh PostgreSQL database."""
    assert stage in STAGES and store in ("sqlite", "postgresql")
    if store == "postgresql":
        reason = postgres_skip_reason()
        if reason:
            import pytest

            pytest.skip(reason)
    source, database = template(templates_root, kind, store, stage)
    url = None
    if store == "postgresql":
        url = stack.enter_context(_database_copy(database))
    return copy_workspace(source, base, url)


@contextlib.contextmanager
def _database_copy(template_name: str | None) -> Iterator[str]:
    """CREATE a database from ``template_name``, yield its URL, DROP it WITH (FORCE)."""
    name = new_database_name()
    _create_database(name, template_name)
    try:
        yield PG_URL.format(name=name)
    finally:
        pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
