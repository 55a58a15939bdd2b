"""How big is the store, and does it stay fast as history grows? Three figures, in one run.

The history, the same in lastgood and in git: the 200-file folder of ``bench/rollback.py``
(``conf/fNNNN.yaml``); version 1 holds every file, each later version changes one file. 10,000
versions (100 of a 50-file folder with ``--quick``, the smoke test's run).

(S1) Store bytes: lastgood's ``.lastgood/`` (``store.db``) after a WAL checkpoint (and, for
     context, after ``VACUUM``) against git's ``.git/objects`` after ``git gc --aggressive
     --prune=now`` on the same history (built with ``git fast-import``). Target: at most 1.5x
     git's bytes.
(S2) Time per snapshot: ``add_version`` timed in process at several history sizes: the median
     of the first 100 versions, of the 100 up to 1,000 and of the 100 up to 10,000. Each size
     but the largest has a store of its own, and the three windows are written in turns, so
     machine noise hits them alike. Target: flat as history grows (last / first near 1).
(S3) Commands at that size, whole process, the console script as users install it:
     ``lastgood snapshot``, ``log -n 20``, ``show REF PATH``, ``diff A B`` and ``rollback ENV
     --to REF`` between two deployed versions, each beside its git counterpart in the git
     repository of (S1) (``git commit -a``, ``git log -n 20``, ``git show REV:PATH``, ``git diff
     A B``, ``git revert`` + ``rsync``).

Run from the repository root::

    .venv/bin/python bench/store_size.py            # full: under a minute
    .venv/bin/python bench/store_size.py --quick    # smaller, for CI smoke tests

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end. The history is written through the store's public API only
(``add_version``, ``head``, ``version``, ``versions``, ``manifest``, ``files``), so the benchmark
keeps working whatever the store keeps inside. Child processes get a bytecode cache of their own (or
the caller's PYTHONPYCACHEPREFIX) warmed before timing, as an installed package would have. The
small helpers are copied from ``bench/rollback.py`` on purpose, so each benchmark script stands
alone.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchkit import (
    child_environment,
    ms,
    percentile,
    print_table,
    regular_install,
    run,
    timed,
    tree,
    write_files,
)

from lastgood.bundle import Bundle
from lastgood.project import Project

ENV = "staging"
SHOWN = "conf/f0001.yaml"
TARGET_RATIO = 1.5
HEADINGS = (
    "(S1) store bytes vs git gc --aggressive",
    "(S2) time per snapshot as history grows",
    "(S3) commands at full history, whole process vs git",
)


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a quick smoke run."""

    versions: int
    tree_files: int
    marks: tuple[int, ...]
    window: int
    process_runs: int
    warm_runs: int


FULL = Plan(10_000, 200, (100, 1_000, 10_000), 100, 15, 2)
QUICK = Plan(100, 50, (20, 100), 20, 1, 1)
"""The smallest run that still prints every table and row: the smoke test's, to keep the
script from rotting; its figures mean little."""


# ---- helpers --------------------------------------------------------------------------------


def change(number: int, names: Sequence[str]) -> tuple[str, bytes]:
    """The one file that version ``number`` (> 1) changes, and its new bytes."""
    return names[number % len(names)], f"key: value {number}\n".encode()


def workspace(folder: Path) -> Path:
    """A workspace at ``folder/ws`` whose one environment's target is the directory
    ``folder/staging``; no checks, so a deploy or rollback is the switch and its records."""
    root = folder / "ws"
    root.mkdir(parents=True)
    (root / "lastgood.toml").write_text(
        textwrap.dedent(
            f"""
            [env.{ENV}]
            target = {{ type = "directory", path = "../{ENV}", keep = 10 }}
            bake = "0s"
            interval = "0.1s"
            failures = 2
            verify_rounds = 1
            """
        )
    )
    return root


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


# ---- (S2) the history, written in process and timed -------------------------------------------


class History:
    """Versions written straight through the store API; each new one changes a single file, so
    every version shares all other blobs with its parent."""

    def __init__(self, project: Project, file_count: int) -> None:
        self.project = project
        self.files = tree(file_count)
        self.names = sorted(self.files)
        self.number = 0

    def add(self) -> float:
        """Write the next version (writes); how long ``add_version`` took, in seconds."""
        self.number += 1
        if self.number > 1:
            name, data = change(self.number, self.names)
            self.files[name] = data
        bundle = Bundle(dict(self.files))
        start = time.perf_counter()
        self.project.store.add_version(
            bundle, author="bench", message=f"v{self.number}", source="bench"
        )
        return time.perf_counter() - start


def grow_histories(plan: Plan, scratch: Path, main: Project) -> tuple[History, list[list[float]]]:
    """Write the history, timing the snapshots of each window of ``plan.marks``.

    Every mark but the last gets a store of its own, grown untimed to the start of its window;
    the last is the benchmark's workspace itself. Then the windows' versions are written in
    turns, one version to each store per round, so machine noise hits every history size alike
    (a burst of load on a shared machine lasts longer than a whole window written in one go).
    Returns the workspace's history, at ``plan.versions``, and each window's samples.
    """
    projects = [
        Project.open(workspace(scratch / f"history-{mark}"), actor="bench")
        for mark in plan.marks[:-1]
    ]
    try:
        histories = [History(project, plan.tree_files) for project in [*projects, main]]
        for history, mark in zip(histories, plan.marks, strict=True):
            for _ in range(max(0, mark - plan.window)):
                history.add()
        samples: list[list[float]] = [[] for _ in histories]
        for _ in range(min(plan.window, *plan.marks)):
            for history, window in zip(histories, samples, strict=True):
                window.append(history.add())
    finally:
        for project in projects:
            project.close()
    for project in projects:
        shutil.rmtree(project.root.parent)
    return histories[-1], samples


def check_history(project: Project, history: History, count: int) -> None:
    """Read the history back through the public API: a wrong build would make every figure
    meaningless, so a mismatch stops the run."""
    store = project.store
    head = store.head()
    newest = store.versions(limit=2)
    if head is None or head.number != count or [v.number for v in newest] != [count, count - 1]:
        raise SystemExit(f"the store should hold {count} versions; its head is {head}")
    if store.files(count) != history.files or sorted(store.manifest(1)) != history.names:
        raise SystemExit("the store does not give back the files written")
    if store.version(1).file_count != len(history.names):
        raise SystemExit("version 1 should hold every file")


def measure_snapshots(plan: Plan, samples: list[list[float]], built: float) -> None:
    medians = [statistics.median(window) for window in samples]
    rows = [
        [
            f"v{mark - len(window) + 1:,}-v{mark:,}",
            ms(median),
            ms(percentile(window, 0.95)),
            ms(max(window)),
            str(len(window)),
            f"{median / medians[0]:.2f}x",
        ]
        for mark, window, median in zip(plan.marks, samples, medians, strict=True)
    ]
    print_table(
        HEADINGS[1] + f" (add_version in process, {plan.tree_files} files, one changed; "
        "windows written in turns; target: flat)",
        ["versions", "median ms", "p95 ms", "max ms", "runs", "vs first"],
        rows,
    )
    written = sum(plan.marks)
    print(
        f"flatness: median of the last window / median of the first = "
        f"{medians[-1] / medians[0]:.2f}x; all {written:,} versions of the {len(plan.marks)} "
        f"histories written in {built:.1f} s"
    )


# ---- (S1) store bytes -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreBytes:
    """The embedded store's size, checkpointed and vacuumed, its files and where its pages go."""

    checkpointed: int
    vacuumed: int
    files: dict[str, int]
    parts: list[tuple[str, int]]


def store_bytes(root: Path, scratch: Path) -> StoreBytes:
    """Checkpoint the WAL into ``.lastgood/store.db`` (writes), then measure every file in
    ``.lastgood/`` but SQLite's shared-memory index (``-shm``, not data, gone when the store is
    closed), so whatever else a store keeps there counts too. ``VACUUM INTO`` a copy gives the
    vacuumed size without changing the store the commands then use."""
    folder = root / ".lastgood"
    database = folder / "store.db"
    if not database.is_file():
        raise SystemExit(f"no store at {database}: the benchmark measures the embedded store")
    copy = scratch / "vacuumed.db"
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        files = {
            str(path.relative_to(folder)): path.stat().st_size
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.endswith("-shm")
        }
        parts = page_owners(connection)
        connection.execute("VACUUM INTO ?", (str(copy),))
    finally:
        connection.close()
    beside = sum(size for name, size in files.items() if not name.startswith("store.db"))
    vacuumed = copy.stat().st_size + beside
    copy.unlink()
    return StoreBytes(sum(files.values()), vacuumed, files, parts)


def page_owners(connection: sqlite3.Connection) -> list[tuple[str, int]]:
    """Bytes per table or index, largest first (SQLite's ``dbstat``); empty where the library
    was built without it. Names come from the database, so nothing here knows the schema."""
    try:
        rows = connection.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [(str(name), int(size)) for name, size in rows]


@dataclass(frozen=True)
class GitRepo:
    """The same history in git: the repository, its commits oldest first, and what it took."""

    path: Path
    commits: list[str]
    imported: float
    collected: float
    imported_bytes: int


def git_repository(plan: Plan, scratch: Path, env: dict[str, str]) -> GitRepo:
    """A repo whose first commit holds the tree and each later commit changes one file; then
    ``git gc --aggressive --prune=now``, as small as git makes it."""
    repo, files = scratch / "git" / "repo", tree(plan.tree_files)
    names = sorted(files)
    run(["git", "init", "-q", "-b", "main", str(repo)], cwd=scratch, env=env)
    stream = []
    for number in range(1, plan.versions + 1):
        message = f"v{number}"
        stamp = 1_700_000_000 + number
        stream.append(
            f"commit refs/heads/main\ncommitter bench <bench@example.com> {stamp} +0000\n"
        )
        stream.append(f"data {len(message)}\n{message}\n")
        changed = files if number == 1 else dict([change(number, names)])
        for path, data in changed.items():
            stream.append(f"M 644 inline {path}\ndata {len(data)}\n{data.decode()}\n")
    start = time.perf_counter()
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        input="".join(stream).encode(),
        cwd=repo,
        env=env,
        check=True,
    )
    imported = time.perf_counter() - start
    imported_bytes = folder_bytes(repo / ".git" / "objects")
    collected = timed(
        lambda: run(["git", "gc", "--aggressive", "--prune=now", "--quiet"], cwd=repo, env=env)
    )
    run(["git", "checkout", "-q", "main"], cwd=repo, env=env)
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.com")):
        run(["git", "config", key, value], cwd=repo, env=env)
    commits = run(["git", "rev-list", "--reverse", "main"], cwd=repo, env=env).split()
    return GitRepo(repo, commits, imported, collected, imported_bytes)


def git_objects(repo: Path) -> dict[str, int]:
    """Bytes under ``.git/objects`` by kind: packs, pack indexes, loose objects, and the rest
    (``info/``: the commit-graph gc writes, the pack list), which git also needs to be fast."""
    kinds = {"pack": 0, "idx": 0, "loose": 0, "other": 0}
    objects = repo / ".git" / "objects"
    for path in objects.rglob("*"):
        if not path.is_file():
            continue
        parent = path.parent.name
        if parent == "pack" and path.suffix in (".pack", ".idx"):
            kind = path.suffix[1:]
        elif len(parent) == 2 and parent != "info":
            kind = "loose"
        else:
            kind = "other"
        kinds[kind] += path.stat().st_size
    return kinds


def measure_bytes(plan: Plan, lastgood: StoreBytes, git: GitRepo) -> None:
    objects = git_objects(git.path)
    git_total = sum(objects.values())
    contenders = [
        ("lastgood .lastgood/, WAL checkpointed", lastgood.checkpointed),
        ("  same after VACUUM (context)", lastgood.vacuumed),
        ("git .git/objects after gc --aggressive", git_total),
        ("  git after fast-import, before gc (context)", git.imported_bytes),
    ]
    rows = [
        [name, f"{size:,}", f"{size / plan.versions:,.0f}", f"{size / git_total:.2f}x"]
        for name, size in contenders
    ]
    print_table(
        HEADINGS[0] + f" ({plan.versions:,} versions of {plan.tree_files} files; "
        f"target <= {TARGET_RATIO}x)",
        ["contender", "bytes", "bytes per version", "vs git"],
        rows,
    )
    ratio = lastgood.checkpointed / git_total
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio lastgood / git = {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    print(
        "git's objects: "
        + ", ".join(f"{kind} {size:,}" for kind, size in objects.items())
        + f"; fast-import {git.imported:.1f} s, gc --aggressive {git.collected:.1f} s"
    )
    print("lastgood's files: " + ", ".join(f"{n} {size:,}" for n, size in lastgood.files.items()))
    if lastgood.parts:
        shown = lastgood.parts[:4]
        rest = sum(size for _, size in lastgood.parts[4:])
        print(
            "lastgood's pages: "
            + ", ".join(f"{name} {size:,}" for name, size in shown)
            + f", the other {len(lastgood.parts) - len(shown)} tables and indexes {rest:,}"
        )


# ---- (S3) commands at that size, whole process ------------------------------------------------


def nothing() -> None:
    """No preparation."""


@dataclass(frozen=True)
class Contender:
    """One timed command; ``prepare`` runs before each timing and is not counted."""

    operation: str
    command: str
    action: Callable[[], object]
    prepare: Callable[[], None] = nothing
    baseline: bool = False


class Editor:
    """Changes one file of a folder per call, continuing the history's numbering, so every
    snapshot or commit after it has exactly one change to record."""

    def __init__(self, folder: Path, names: Sequence[str], start: int) -> None:
        self.folder, self.names, self.numbers = folder, names, itertools.count(start)

    def __call__(self) -> None:
        name, data = change(next(self.numbers), self.names)
        (self.folder / name).write_bytes(data)


def alternate(first: str, second: str) -> Iterator[str]:
    return itertools.cycle((first, second))


def contenders(
    plan: Plan, root: Path, git: GitRepo, program: Path, env: dict[str, str], names: list[str]
) -> list[Contender]:
    """lastgood's commands, each followed by its git counterpart (the baseline of its ratio)."""
    count, middle = plan.versions, plan.versions // 2
    repo, live = git.path, git.path.parent / "live"
    old, new = git.commits[middle - 1], git.commits[count - 1]
    refs = alternate(f"v{count - 1}", f"v{count}")

    def lastgood(*args: str) -> Callable[[], object]:
        return lambda: run([str(program), *args], cwd=root, env=env)

    def git_run(*args: str) -> Callable[[], object]:
        return lambda: run(["git", *args], cwd=repo, env=env)

    def git_rollback() -> None:
        run(["git", "revert", "--no-edit", "HEAD"], cwd=repo, env=env)
        rsync = ["rsync", "-a", "--delete", "--exclude", ".git", f"{repo}/", f"{live}/"]
        run(rsync, cwd=repo, env=env)

    python = program.with_name("python")
    return [
        Contender(
            "snapshot",
            "lastgood snapshot -m …",
            lastgood("snapshot", "-m", "bench"),
            Editor(root, names, count + 1),
        ),
        Contender(
            "snapshot",
            "git commit -a -m …",
            git_run("commit", "-q", "-a", "-m", "bench"),
            Editor(repo, names, count + 1),
            baseline=True,
        ),
        Contender("log", "lastgood log -n 20", lastgood("log", "-n", "20")),
        Contender("log", "git log -n 20", git_run("log", "-n", "20"), baseline=True),
        Contender(
            "show", f"lastgood show v{middle} {SHOWN}", lastgood("show", f"v{middle}", SHOWN)
        ),
        Contender(
            "show", f"git show REV:{SHOWN}", git_run("show", f"{old}:{SHOWN}"), baseline=True
        ),
        Contender(
            "diff",
            f"lastgood diff v{middle} v{count}",
            lastgood("diff", f"v{middle}", f"v{count}"),
        ),
        Contender("diff", "git diff A B", git_run("diff", old, new), baseline=True),
        Contender(
            "rollback",
            "lastgood rollback ENV --to REF",
            lambda: run([str(program), "rollback", ENV, "--to", next(refs)], cwd=root, env=env),
        ),
        Contender("rollback", "git revert + rsync", git_rollback, baseline=True),
        Contender(
            "floor",
            "python -c pass (interpreter start)",
            lambda: run([str(python), "-c", "pass"], cwd=root, env=env),
        ),
        Contender("floor", "lastgood --version (start-up, no store)", lastgood("--version")),
    ]


def prepare_commands(
    plan: Plan,
    root: Path,
    git: GitRepo,
    program: Path,
    env: dict[str, str],
    files: dict[str, bytes],
) -> None:
    """Put the newest version's files in the workspace folder, deploy the two newest versions
    (the newest live), and check that both tools show the same bytes for the same version."""
    write_files(root, files)
    (git.path.parent / "live").mkdir()
    for number in (plan.versions - 1, plan.versions):
        run(
            [str(program), "deploy", ENV, "--version", f"v{number}", "-m", "bench"],
            cwd=root,
            env=env,
        )
    middle = plan.versions // 2
    ours = run([str(program), "show", f"v{middle}", SHOWN], cwd=root, env=env)
    theirs = run(["git", "show", f"{git.commits[middle - 1]}:{SHOWN}"], cwd=git.path, env=env)
    if ours != theirs:
        raise SystemExit(f"v{middle}:{SHOWN} differs: lastgood {ours!r}, git {theirs!r}")


def measure_commands(plan: Plan, racers: list[Contender]) -> None:
    samples: dict[int, list[float]] = {index: [] for index in range(len(racers))}
    for _ in range(plan.warm_runs):  # warm the bytecode cache, the page cache and git's index
        for racer in racers:
            racer.prepare()
            racer.action()
    for _ in range(plan.process_runs):  # interleaved, so machine noise hits all alike
        for index, racer in enumerate(racers):
            racer.prepare()
            samples[index].append(timed(racer.action))
    medians = [statistics.median(samples[index]) for index in range(len(racers))]
    baselines = {
        racer.operation: median
        for racer, median in zip(racers, medians, strict=True)
        if racer.baseline
    }
    rows = []
    for index, racer in enumerate(racers):
        baseline = baselines.get(racer.operation)
        ratio = f"{medians[index] / baseline:.2f}x" if baseline else "-"
        name = (
            racer.operation if index == 0 or racers[index - 1].operation != racer.operation else ""
        )
        rows.append([name, racer.command, ms(medians[index]), ms(min(samples[index])), ratio])
    print_table(
        HEADINGS[2] + f" ({plan.versions:,} versions, {plan.process_runs} runs each)",
        ["operation", "command", "median ms", "min ms", "vs git"],
        rows,
        left=2,
    )


# ---- the run ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller history, fewer runs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    python = sys.version.split()[0]
    print(
        f"lastgood store size benchmark ({mode}); python {python}, SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    )
    if not (shutil.which("git") and shutil.which("rsync")):
        print("git and rsync are needed: git is the baseline of every figure", file=sys.stderr)
        raise SystemExit(2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as folder:
        scratch = Path(folder)
        env = child_environment(scratch)
        root = workspace(scratch)
        project = Project.open(root, actor="bench")
        try:
            start = time.perf_counter()
            history, samples = grow_histories(plan, scratch, project)
            built = time.perf_counter() - start
            check_history(project, history, plan.versions)
        finally:
            project.close()
        lastgood = store_bytes(root, scratch)
        git = git_repository(plan, scratch, env)
        measure_bytes(plan, lastgood, git)
        measure_snapshots(plan, samples, built)
        program = regular_install(scratch, env) / "lastgood"
        prepare_commands(plan, root, git, program, env, history.files)
        measure_commands(plan, contenders(plan, root, git, program, env, history.names))
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
