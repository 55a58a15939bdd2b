"""How long does ``lastgood import-git`` take on a repository with a few hundred commits?

The history: a git repository whose workspace is its ``config/`` folder, beside a ``README``
that is not configuration. The first commit holds the 200-file folder of ``bench/rollback.py``
(``conf/fNNNN.yaml``); each later commit changes one to three files, and every tenth one
touches only the README (not the workspace: the import skips it). 300 commits (60 with
``--quick``), written with ``git fast-import``.

(I1) ``lastgood import-git`` as a whole process, the console script as users install it, on a
     fresh SQLite store (made just before by ``lastgood log``, timed on its own: creating a
     store is paid once, whatever comes next); then again with nothing new to import.
(I2) The baseline, in the same run on the same repository: ``git log -p`` of the workspace's
     folder (every commit's patch written out, piped to nothing), the cheapest way git itself
     reads that much history.

Run from the repository root::

    .venv/bin/python bench/import_git.py            # full: about 10 s
    .venv/bin/python bench/import_git.py --quick    # smaller, for CI smoke tests

It prints figures and never asserts on them; everything it creates lives in one temporary folder
that is removed at the end. Each figure is the median of a few runs (a fresh store each time).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import child_environment, print_table, regular_install, run, tree

HEADING = "(I1, I2) import-git vs git log -p of the same history"


def history(commits: int, repo: Path, env: dict[str, str]) -> None:
    """Write the benchmark's history into a new repository at ``repo`` (git fast-import)."""
    files = tree(200)
    names = sorted(files)
    run(["git", "init", "-q", "-b", "main", str(repo)], cwd=repo.parent, env=env)
    stream = []
    for number in range(1, commits + 1):
        message = f"change {number}"
        stream.append(
            f"commit refs/heads/main\nauthor Ana <ana@example.com> {1_700_000_000 + number} "
            f"+0000\ncommitter Ana <ana@example.com> {1_700_000_000 + number} +0000\n"
            f"data {len(message)}\n{message}\n"
        )
        if number == 1:
            changed = {f"config/{path}": data for path, data in files.items()}
            changed["config/lastgood.toml"] = b'[env.staging]\ntarget = { type = "directory", ' \
                b'path = "../live" }\n'  # fmt: skip
            changed["README"] = b"not configuration\n"
        elif number % 10 == 0:
            changed = {"README": f"readme {number}\n".encode()}
        else:
            changed = {
                f"config/{names[(number * 7 + step) % len(names)]}": f"key: {number}\n".encode()
                for step in range(1 + number % 3)
            }
        for path, data in changed.items():
            stream.append(f"M 644 inline {path}\ndata {len(data)}\n{data.decode()}\n")
    subprocess.run(["git", "fast-import", "--quiet"], input="".join(stream).encode(),
                   cwd=repo, env=env, check=True)  # fmt: skip
    run(["git", "checkout", "-q", "main"], cwd=repo, env=env)


def timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    """Seconds ``command`` takes, its output thrown away (as a pager would not keep it)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=600)  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def measure(commits: int, rounds: int, scratch: Path, env: dict[str, str]) -> list[list[str]]:
    """The table's rows: median seconds over ``rounds`` of each command."""
    repo = scratch / "repo"
    repo.mkdir()
    history(commits, repo, env)
    workspace = repo / "config"
    lastgood = str(regular_install(scratch, env) / "lastgood")
    create, first, again, baseline = [], [], [], []
    touched = len(run(["git", "rev-list", "HEAD", "--", "."], cwd=workspace, env=env).split())
    for _round in range(rounds):
        shutil.rmtree(workspace / ".lastgood", ignore_errors=True)
        create.append(timed([lastgood, "log"], cwd=workspace, env=env))
        first.append(timed([lastgood, "import-git"], cwd=workspace, env=env))
        again.append(timed([lastgood, "import-git"], cwd=workspace, env=env))
        baseline.append(timed(["git", "log", "-p", "--", "."], cwd=workspace, env=env))
    imported = run([lastgood, "log", "-n", "1", "--json"], cwd=workspace, env=env)
    assert f'"number": {touched}' in imported, imported  # every commit that touched it
    git_seconds = statistics.median(baseline)
    rows = []
    for name, samples in (
        ("(context) lastgood log, creating the empty store", create),
        (f"lastgood import-git ({touched} commits to import)", first),
        ("lastgood import-git again (nothing new)", again),
        (f"git log -p -- config/ ({commits} commits)", baseline),
    ):
        seconds = statistics.median(samples)
        per_commit = "" if samples is create else f"{seconds / touched * 1000:.2f}"
        rows.append([name, f"{seconds:.2f}", per_commit, f"{seconds / git_seconds:.1f}x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 commits, one round")
    options = parser.parse_args()
    commits, rounds = (60, 1) if options.quick else (300, 3)
    if shutil.which("git") is None:
        sys.exit("this benchmark needs the git command")
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-import-") as folder:
        scratch = Path(folder)
        env = child_environment(scratch)
        rows = measure(commits, rounds, scratch, env)
    print_table(
        f"{HEADING} (median of {rounds})",
        ["command", "seconds", "ms per commit", "vs git log -p"],
        rows,
    )


if __name__ == "__main__":
    main()
