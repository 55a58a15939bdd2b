"""How fast is a rollback? Three figures, all measured in one run on this machine.

(a) In-process restore: what ``switch_to`` plus the ledger update of a rollback cost (target
    activate + ledger commit), with 10 / 1,000 / 10,000 versions of history and 10 / 1,000 files
    per version. Target: at most 2 ms, and flat as history grows.
(b) Whole process: ``lastgood rollback ENV --to REF`` through the installed console script
    (no checks, not a terminal) against a do-it-yourself git rollback: ``git revert --no-edit
    HEAD`` plus ``rsync -a --delete`` of the same 200-file tree into a live folder, in a repo
    with 1,000 commits. Target: at most 1.0x the git baseline. A second row times importing
    only the standard library a Python rollback cannot do without: the floor under that figure.
    Another times the same rollback in a git workspace with ``[git] refs = true``, where each
    rollback moves the environment's two refs (docs/performance.md, "Git refs").
(c) Automatic rollback: a deploy whose command check fails (fast interval, failures = 2); the
    ledger's auto-rollback record gives the restore time after detection (activated_at minus
    trigger_at). Target: at most 0.5 s.

Run from the repository root::

    .venv/bin/python bench/rollback.py            # full: a few minutes
    .venv/bin/python bench/rollback.py --quick    # smaller, for CI smoke tests

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end. Child processes get a bytecode cache of their own (or the caller's
PYTHONPYCACHEPREFIX) warmed before timing, as an installed package would have, so no run pays for
compiling.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
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
from lastgood.operations.lease import EnvLease
from lastgood.operations.place import Place
from lastgood.operations.restore import release_of, switch_to
from lastgood.project import Project
from lastgood.rows import VersionInfo

ENV = "staging"
FLOOR_IMPORTS = "import os, sqlite3, hashlib, json, pathlib, tomllib"
"""What no Python rollback can do without: read lastgood.toml (tomllib), open the store
(sqlite3), hash files (hashlib), write the target's state (json), name paths (pathlib). The
time to import these alone is the floor under the whole-process figure."""
LASTGOOD = Path(sys.executable).with_name("lastgood")
HEADINGS = (
    "(a) in-process restore",
    "(b) whole-process rollback vs git baseline",
    "(c) automatic rollback",
)


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a quick smoke run."""

    history: tuple[int, ...]
    file_counts: tuple[int, ...]
    restore_repetitions: int
    process_runs: int
    git_commits: int
    tree_files: int
    auto_runs: int
    warm_runs: int


FULL = Plan((10, 1_000, 10_000), (10, 1_000), 30, 15, 1_000, 200, 5, 2)
QUICK = Plan((10, 30), (10, 30), 5, 1, 20, 50, 1, 1)
"""The smallest run that still prints every table and row: the smoke test's, to keep the
script from rotting; its figures mean little."""


# ---- helpers --------------------------------------------------------------------------------


def workspace(
    folder: Path,
    *,
    checks: str = "",
    bake: str = "0s",
    interval: str = "0.1s",
    envs: Sequence[str] = (ENV,),
) -> Path:
    """A workspace at ``folder/ws``; each environment's target is the directory ``folder/<env>``."""
    root = folder / "ws"
    root.mkdir(parents=True)
    tables = [
        f"""
        [env.{env}]
        target = {{ type = "directory", path = "../{env}", keep = 1000 }}
        bake = "{bake}"
        interval = "{interval}"
        failures = 2
        verify_rounds = 1
        """
        for env in envs
    ]
    (root / "lastgood.toml").write_text(textwrap.dedent("".join(tables)) + checks)
    return root


# ---- (a) in-process restore -------------------------------------------------------------------


class History:
    """Versions written straight through the store API; each new one changes a single file,
    so every version shares all other blobs with its parent."""

    def __init__(self, project: Project, file_count: int) -> None:
        self.project = project
        self.files = tree(file_count)
        self.names = sorted(self.files)

    def grow_to(self, count: int) -> None:
        store = self.project.store
        head = store.head()
        for number in range((head.number if head else 0) + 1, count + 1):
            if number > 1:
                name = self.names[number % len(self.names)]
                self.files[name] = f"key: value {number}\n".encode()
            store.add_version(
                Bundle(self.files), author="bench", message=f"v{number}", source="bench"
            )


def stage_pair(project: Project, env: str) -> tuple[VersionInfo, VersionInfo]:
    """Stage the two newest versions on ``env``'s target and make the newest live."""
    store, target = project.store, project.target(env)
    head = store.head()
    assert head is not None and head.number > 1
    pair = (store.version(head.number - 1), head)
    for version in pair:
        if release_of(version) not in target.retained():
            target.stage(release_of(version), store.files(version.number))
    target.activate(release_of(head))
    store.set_env(env, live_version=head.number)
    os.sync()  # releases are staged long before a rollback: their writeback is not its cost
    return pair


def time_restores(project: Project, env: str, repetitions: int) -> list[float]:
    """Roll back and forth between the two newest versions; time switch_to + ledger commit.

    Each history size gets an environment (and target folder) of its own, so the target's
    activation log starts empty every time and only the store's history differs.
    """
    store = project.store
    pair = stage_pair(project, env)
    samples = []
    place = Place(project, env)
    with EnvLease(place, "rollback") as lease:
        for repetition in range(repetitions + 1):  # the first one warms caches and is dropped
            destination, leaving = pair[repetition % 2], pair[(repetition + 1) % 2]
            now = time.time()
            record = store.begin_deployment(
                env=env,
                kind="rollback",
                from_version=leaving.number,
                to_version=destination.number,
                actor="bench",
                source="bench",
                trigger_at=now,
                requested_at=now,
            )
            start = time.perf_counter()
            activated_at = switch_to(place, lease, destination, point="bench.restore")
            store.update_deployment(record.id, by="bench", activated_at=activated_at)
            samples.append(time.perf_counter() - start)
            store.update_deployment(
                record.id, by="bench", status="succeeded", finished_at=time.time()
            )
    return samples[1:]


def fsync_samples(scratch: Path, count: int) -> list[float]:
    """How long one fsync of a small new file takes here: the floor under any durable switch."""
    samples = []
    for number in range(count):
        path = scratch / f"fsync-{number}"
        with open(path, "wb") as handle:
            handle.write(b"x\n")
            handle.flush()
            samples.append(timed(partial(os.fsync, handle.fileno())))
        path.unlink()
    return samples


def restore_rows(plan: Plan, scratch: Path, file_count: int) -> list[list[str]]:
    """One row per history size, growing one store from the smallest history to the largest."""
    envs = [f"history-{count}" for count in sorted(plan.history)]
    root = workspace(scratch / f"restore-{file_count}", envs=envs)
    project = Project.open(root, actor="bench")
    rows = []
    try:
        history = History(project, file_count)
        for count, env in zip(sorted(plan.history), envs, strict=True):
            built = timed(partial(history.grow_to, count))
            samples = time_restores(project, env, plan.restore_repetitions)
            median, p95 = statistics.median(samples), percentile(samples, 0.95)
            verdict = "yes" if median <= 0.002 else "NO"
            row = [f"{count:,}", f"{file_count:,}", ms(median), ms(p95), str(len(samples))]
            rows.append([*row, verdict, f"{built:.1f}"])
    finally:
        project.close()
    return rows


def measure_restore(plan: Plan, scratch: Path) -> None:
    rows = [row for count in plan.file_counts for row in restore_rows(plan, scratch, count)]
    medians = [float(row[2]) for row in rows]
    fsync = statistics.median(fsync_samples(scratch, 30))
    print_table(
        HEADINGS[0] + " (switch_to + ledger commit; target <= 2 ms, flat)",
        ["versions", "files", "median ms", "p95 ms", "runs", "median<=2ms", "history built s"],
        rows,
    )
    print(f"flatness: slowest median / fastest median = {max(medians) / min(medians):.2f}x")
    print(
        f"context: one fsync on this disk takes {ms(fsync)} ms (median); an activation makes "
        "two (the folder after the symlink rename, then the meta/state.json file)"
    )


# ---- (b) whole process vs git -----------------------------------------------------------------


def lastgood_workspace(plan: Plan, scratch: Path, env: dict[str, str]) -> Path:
    """A workspace with the tree deployed twice (v1, then v2 with one file changed)."""
    root = workspace(scratch / "process")
    files = tree(plan.tree_files)
    write_files(root, files)
    run([str(LASTGOOD), "deploy", ENV, "-m", "one"], cwd=root, env=env)
    write_files(root, {"conf/f0000.yaml": b"key: changed\n"})
    run([str(LASTGOOD), "deploy", ENV, "-m", "two"], cwd=root, env=env)
    return root


def git_refs_workspace(plan: Plan, scratch: Path, env: dict[str, str]) -> Path:
    """The same two versions in a git repository with ``[git] refs = true``: each deployed
    from a clean commit, so every rollback between them moves both refs."""
    root = workspace(scratch / "refs")
    with (root / "lastgood.toml").open("a") as config:
        config.write("\n[git]\nrefs = true\n")
    write_files(root, {".gitignore": b".lastgood/\n", **tree(plan.tree_files)})
    who = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    run(["git", "init", "-q"], cwd=root, env=env)
    for message, changed in (("one", {}), ("two", {"conf/f0000.yaml": b"key: changed\n"})):
        write_files(root, changed)
        run(["git", "add", "-A"], cwd=root, env=env)
        run(["git", *who, "commit", "-q", "-m", message], cwd=root, env=env)
        run([str(LASTGOOD), "deploy", ENV, "-m", message], cwd=root, env=env)
    return root


def git_repository(plan: Plan, scratch: Path, env: dict[str, str]) -> Path:
    """A repo whose first commit holds the tree and each later commit changes one file."""
    repo, files = scratch / "git" / "repo", tree(plan.tree_files)
    names = sorted(files)
    run(["git", "init", "-q", str(repo)], cwd=scratch, env=env)
    stream = []
    for number in range(1, plan.git_commits + 1):
        message = f"change {number}"
        stamp = 1_700_000_000 + number
        stream.append(
            f"commit refs/heads/main\ncommitter bench <bench@example.com> {stamp} +0000\n"
        )
        stream.append(f"data {len(message)}\n{message}\n")
        changed = (
            files
            if number == 1
            else {names[number % len(names)]: f"key: value {number}\n".encode()}
        )
        for path, data in changed.items():
            stream.append(f"M 644 inline {path}\ndata {len(data)}\n{data.decode()}\n")
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        input="".join(stream).encode(),
        cwd=repo,
        env=env,
        check=True,
    )
    run(["git", "checkout", "-q", "main"], cwd=repo, env=env)
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.com")):
        run(["git", "config", key, value], cwd=repo, env=env)
    return repo


def git_rollback(repo: Path, live: Path, env: dict[str, str]) -> Callable[[], None]:
    def action() -> None:
        run(["git", "revert", "--no-edit", "HEAD"], cwd=repo, env=env)
        run(
            ["rsync", "-a", "--delete", "--exclude", ".git", f"{repo}/", f"{live}/"],
            cwd=repo,
            env=env,
        )

    return action


def lastgood_rollback(
    program: Path, root: Path, env: dict[str, str], turns: Iterator[int], *store: str
) -> Callable[[], None]:
    """Roll back and forth between v1 and v2 (``turns`` is shared, so every call really switches);
    ``store`` may add ``--store URL``."""

    def action() -> None:
        ref = "1" if next(turns) % 2 == 0 else "2"
        run([str(program), *store, "rollback", ENV, "--to", ref], cwd=root, env=env)

    return action


def python_running(
    code: str, env: dict[str, str], scratch: Path, python: Path | None = None
) -> Callable[[], None]:
    return lambda: run([str(python or sys.executable), "-c", code], cwd=scratch, env=env)


def measure_process(plan: Plan, scratch: Path) -> None:
    if not (shutil.which("git") and shutil.which("rsync")):
        print(f"\n== {HEADINGS[1]} ==\nskipped: git and rsync are needed for the baseline")
        return
    env = child_environment(scratch)
    root = lastgood_workspace(plan, scratch, env)
    repo = git_repository(plan, scratch, env)
    live = scratch / "git" / "live"
    live.mkdir()
    # the same database through SQLAlchemy: a driver option in the URL keeps the fast lane out
    through_sqlalchemy = f"sqlite:///{root / '.lastgood' / 'store.db'}?timeout=30"
    turns = itertools.count()
    installed = regular_install(scratch, env)
    in_git = git_refs_workspace(plan, scratch, env)
    contenders = {
        "lastgood rollback --to REF": lastgood_rollback(installed / "lastgood", root, env, turns),
        "  same, [git] refs = true (moves 2 refs)": lastgood_rollback(
            installed / "lastgood", in_git, env, itertools.count()
        ),
        "  same, editable dev install": lastgood_rollback(LASTGOOD, root, env, turns),
        "  same, SQLAlchemy store (--store …?timeout=30)": lastgood_rollback(
            installed / "lastgood", root, env, turns, "--store", through_sqlalchemy
        ),
        f"git revert + rsync ({plan.git_commits:,} commits)": git_rollback(repo, live, env),
        "python -c pass (interpreter floor)": python_running(
            "pass", env, scratch, installed / "python"
        ),
        "python -c 'import <stdlib a rollback needs>'": python_running(
            FLOOR_IMPORTS, env, scratch, installed / "python"
        ),
        "python -c 'import sqlalchemy'": python_running("import sqlalchemy", env, scratch),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(plan.warm_runs):  # warm the bytecode cache, the page cache and git's index
        for action in contenders.values():
            action()
    for _ in range(plan.process_runs):  # interleaved, so machine noise hits all alike
        for name, action in contenders.items():
            samples[name].append(timed(action))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    git_median = medians[f"git revert + rsync ({plan.git_commits:,} commits)"]
    rows = [
        [name, ms(median), ms(min(samples[name])), f"{median / git_median:.2f}x"]
        for name, median in medians.items()
    ]
    print_table(
        HEADINGS[1] + f" ({plan.tree_files} files, {plan.process_runs} runs each; target <= 1.0x)",
        ["command", "median ms", "min ms", "vs git"],
        rows,
    )
    ratio = medians["lastgood rollback --to REF"] / git_median
    verdict = "within" if ratio <= 1 else "OVER"
    print(f"ratio lastgood / git = {ratio:.2f}x ({verdict} the 1.0x target)")
    floor = medians["python -c 'import <stdlib a rollback needs>'"] / git_median
    print(f"stdlib floor / git = {floor:.2f}x (<stdlib a rollback needs>: {FLOOR_IMPORTS})")


# ---- (c) automatic rollback -------------------------------------------------------------------

CHECK = """
[[env.staging.check]]
name = "health-file-ok"
type = "command"
run = 'grep -qx ok "$LASTGOOD_PATH/health.txt"'
timeout = "5s"
"""


def measure_automatic(plan: Plan, scratch: Path) -> None:
    interval, failures = 0.1, 2
    env = child_environment(scratch)
    root = workspace(scratch / "auto", checks=CHECK, bake="0.3s", interval=f"{interval}s")
    write_files(root, {"health.txt": b"ok\n", "conf/a.yaml": b"a: 1\n"})
    run([str(LASTGOOD), "deploy", ENV, "-m", "healthy"], cwd=root, env=env)
    for number in range(plan.auto_runs):
        write_files(
            root, {"health.txt": b"fail\n", "conf/a.yaml": f"a: broken {number}\n".encode()}
        )
        run([str(LASTGOOD), "deploy", ENV, "-m", f"broken {number}"], cwd=root, env=env, ok=(3,))
    project = Project.open(root, actor="bench")
    try:
        records = [d for d in project.store.deployments(ENV) if d.kind == "auto-rollback"]
    finally:
        project.close()
    restores = [d.activated_at - d.trigger_at for d in records if d.activated_at and d.trigger_at]
    verified = [d.time_to_verified for d in records if d.time_to_verified is not None]
    rows = [
        [
            "restore after detection (activated_at - trigger_at)",
            ms(statistics.median(restores)),
            ms(max(restores)),
            "<= 500",
        ],
        [
            "restored and verified (verified_at - trigger_at)",
            ms(statistics.median(verified)),
            ms(max(verified)),
            "-",
        ],
        [
            f"detection, by policy (interval {interval}s x failures {failures})",
            ms(interval * failures),
            ms(interval * failures),
            "-",
        ],
    ]
    print_table(
        HEADINGS[2] + f" ({len(records)} failed deploys restored)",
        ["figure", "median ms", "max ms", "target ms"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller history")
    parser.add_argument(
        "--part", choices=["a", "b", "c"], action="append", help="measure only these parts"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    python = sys.version.split()[0]
    print(f"lastgood rollback benchmark ({mode}); python {python}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as folder:
        scratch = Path(folder)
        parts = set(args.part or "abc")
        if "a" in parts:
            measure_restore(plan, scratch)
        if "b" in parts:
            measure_process(plan, scratch)
        if "c" in parts:
            measure_automatic(plan, scratch)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
