"""What the benchmark scripts share: the workload, running and timing commands, the tables.

Each script in ``bench/`` runs as ``python bench/NAME.py``, so this module is found beside it.
The workload is the same for lastgood and for git in every script (``tree`` and ``change``), so
figures from different benchmarks describe the same history.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of samples at or below."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_table(heading: str, headers: list[str], rows: list[list[str]], left: int = 1) -> None:
    """A plain aligned table under ``== heading ==`` (stdout, so it can be piped into docs);
    the first ``left`` columns are text, aligned left, the others numbers, aligned right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n== {heading} ==")
    for row in [headers, ["-" * width for width in widths], *rows]:
        cells = [
            str(cell).ljust(width) if column < left else str(cell).rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    sys.stdout.flush()


def tree(count: int) -> dict[str, bytes]:
    """``count`` small configuration files, the same for lastgood and for git."""
    return {
        f"conf/f{i:04d}.yaml": f"key: value {i}\nthreshold: 0.{i % 10}\n".encode()
        for i in range(count)
    }


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def child_environment(scratch: Path) -> dict[str, str]:
    """What the CLI runs get: a bytecode cache they may write, warm before any timing; an
    author so git is not asked. The cache is the run's own unless the caller names one in
    ``PYTHONPYCACHEPREFIX`` (the smoke tests pass theirs, already warm, so a quick run does not
    compile lastgood and its dependencies again: about 2 s of CPU a script)."""
    env = {**os.environ, "LASTGOOD_AUTHOR": "bench", "NO_COLOR": "1", "GIT_PAGER": "cat"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(scratch / "pycache"))
    return env


def run(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> str:
    """Run ``command`` to the end; its stdout. Another exit code than ``ok`` stops the
    benchmark with the command's stderr."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def regular_install(scratch: Path, env: dict[str, str]) -> Path:
    """Install lastgood the way users get it (not editable) into a private venv; its ``bin/``.

    The development venv's editable install adds an import hook to every start (~11 ms here);
    users who ``pip install lastgood`` do not pay it. Dependencies come from this interpreter's
    site-packages through a ``.pth`` line, so nothing is downloaded.
    """
    venv = scratch / "installed"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=scratch, env=env)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    project = Path(__file__).resolve().parents[1]
    run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--ignore-installed", str(project)],
        cwd=scratch, env=env,
    )  # fmt: skip
    return venv / "bin"


def stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    lastgood: Path, *options: str, cwd: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``lastgood serve OPTIONS`` on a free port, its output in ``log``; the process and its
    URL once ``/healthz`` answers. Stops the benchmark with the log when it does not start."""
    import httpx

    url = f"http://127.0.0.1:{(port := free_port())}"
    with open(log, "wb") as out:
        command = [str(lastgood), "serve", "--port", str(port), *options]
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.05)
    stop(server, grace=1.0)
    raise SystemExit(f"lastgood serve did not start: {log.read_text()}")


def send_line(process: subprocess.Popen[str], line: str) -> None:
    """One command to a worker process that reads its stdin line by line."""
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def read_line(process: subprocess.Popen[str], expected: str) -> str:
    """A worker's next line, which must start with ``expected``; else the benchmark stops."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(expected):
        raise SystemExit(f"a worker said {line!r} instead of {expected!r}; see its log")
    return line


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over at most ``parts`` as evenly as it goes (no empty part)."""
    return [c for c in (total // parts + (i < total % parts) for i in range(parts)) if c]


class WorkerPool:
    """Worker processes driven line by line over stdin (the fleet benchmarks' consumers and
    agents): each says ``ready N`` when started, answers ``expect V`` with one JSON line whose
    ``key`` lists its members' times for version V and whose ``missing`` counts the others, and
    ends on ``quit``."""

    def __init__(
        self, commands: Sequence[Sequence[str]], logs: Sequence[Path], env: dict[str, str]
    ) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        for command, log_path in zip(commands, logs, strict=True):
            with open(log_path, "w") as log:
                self.processes.append(subprocess.Popen(
                    list(command), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=log, text=True,
                ))  # fmt: skip
        for process in self.processes:
            read_line(process, "ready")

    def times(self, version: int, key: str, failed: str) -> list[float]:
        """Every member's time for ``version``; the benchmark stops, saying ``failed`` (with
        ``{missing}`` and ``{version}`` filled in), when some never got there."""
        for process in self.processes:
            send_line(process, f"expect {version}")
        times: list[float] = []
        for process in self.processes:
            answer = json.loads(read_line(process, "{"))
            if answer["missing"]:
                raise SystemExit(failed.format(missing=answer["missing"], version=version))
            times += answer[key]
        return times

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                send_line(process, "quit")
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                stop(process)
