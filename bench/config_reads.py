"""(P5) How many live config reads per second does ``lastgood serve`` answer, beside nginx?

Applications read ``GET /api/v1/envs/{env}/config`` and revalidate with ``If-None-Match``, so
the common read is a ``304 Not Modified``. This benchmark measures, in one run on one machine:

- lastgood 304: reads with the current ETag (what a following consumer sends);
- lastgood 200: full reads (a consumer starting, or one that does not cache);
- nginx 304 and nginx 200: Debian's nginx serving the very same bytes (the JSON body of the
  config endpoint) as a static file, with its own ETag revalidation; the baseline.

Beside each rate it prints the CPU each read cost the server's processes and ``wrk`` (user and
system time from ``/proc`` and ``getrusage``, divided by the reads answered): on a machine whose
cores the servers share with ``wrk``, the cost of a read says what the rate alone cannot.

The load comes from ``wrk`` (same threads, connections and duration for every row), because a
Python client would be the bottleneck. ``lastgood serve`` is one uvicorn process; nginx runs
one worker process too, so both have one core to serve on. Target: lastgood at least 0.2x
nginx. With ``--workers N``, ``lastgood serve --workers N`` against nginx with N worker
processes (``--nginx-workers M`` to give nginx another number); target 0.8x. Run from the
repository root::

    .venv/bin/python bench/config_reads.py               # full: about 50 s
    .venv/bin/python bench/config_reads.py --workers 2   # both servers with 2 processes
    .venv/bin/python bench/config_reads.py --quick       # about 10 s, for smoke tests

It needs ``wrk`` and ``/usr/sbin/nginx`` and says so if either is missing (exit 2). It prints
figures and never asserts on them; everything it creates lives in one temporary folder that is
removed at the end, and both servers are stopped (SIGTERM, then wait) even on failure.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ENV = "staging"
LASTGOOD = Path(sys.executable).with_name("lastgood")
NGINX = "/usr/sbin/nginx"
HEADING = "(P5) live config reads per second"
FILES = 20  # configuration files in the version served, about 1 KB each

CONFIG = f"""
[env.{ENV}]
target = {{ type = "served" }}
bake = "0s"
"""


class Plan:
    """How much to measure: the full run, or a quick smoke run."""

    def __init__(self, seconds: int, connections: int, threads: int, warm: bool = True) -> None:
        self.seconds = seconds
        self.connections = connections
        self.threads = threads
        self.warm = warm  # a one-second run of each row first, so none pays for first connections


FULL = Plan(10, 64, 2)
QUICK = Plan(1, 8, 1, warm=False)
"""The smoke test's run: every row, one second each, no warm-ups (its figures mean little)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before answering")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not answer at {url} in 30 s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class Servers:
    """A served workspace with ``lastgood serve`` on it, and nginx serving the same bytes."""

    def __init__(self, folder: Path, workers: int = 1, nginx_workers: int = 1) -> None:
        self.folder = folder
        self.workers = workers  # lastgood serve --workers
        self.nginx_workers = nginx_workers  # nginx's worker_processes
        self.lastgood: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "LASTGOOD_AUTHOR": "bench", "NO_COLOR": "1"}

    def cli(self, *args: str) -> str:
        command = [str(LASTGOOD), "-C", str(self.folder / "ws"), *args]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"lastgood {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout.strip()

    def prepare(self) -> Path:
        """The served workspace, its version deployed and a viewer token (``self.token``)
        created; returns its folder. ``bench/read_path.py`` reads the same workspace."""
        workspace = self.folder / "ws"
        (workspace / "conf").mkdir(parents=True)
        (workspace / "lastgood.toml").write_text(CONFIG)
        for number in range(FILES):
            lines = [f"key_{number}_{line}: value {line} of file {number}" for line in range(30)]
            (workspace / "conf" / f"file{number:02}.yaml").write_text("\n".join(lines) + "\n")
        self.cli("deploy", ENV, "-m", "bench")
        self.token = self.cli("token", "create", "--name", "bench", "--role", "viewer")
        return workspace

    def start(self) -> None:
        workspace = self.prepare()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/v1/envs/{ENV}/config"
        self.lastgood = subprocess.Popen(
            [str(LASTGOOD), "-C", str(workspace), "serve", "--port", str(port),
             "--workers", str(self.workers)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(f"http://127.0.0.1:{port}/healthz", self.lastgood, "lastgood serve")
        first = httpx.get(self.url, headers={"Authorization": f"Bearer {self.token}"})
        first.raise_for_status()
        self.body, self.etag = first.content, first.headers["etag"]
        self._start_nginx()

    def _start_nginx(self) -> None:
        prefix = self.folder / "nginx"
        (prefix / "www").mkdir(parents=True)
        (prefix / "temp").mkdir()
        (prefix / "www" / "config.json").write_bytes(self.body)
        port = free_port()
        temp = prefix / "temp"
        # as root, nginx hands requests to workers running as nobody, who may not enter our
        # private temporary folder: keep them as the user who runs the benchmark
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(textwrap.dedent(f"""
            daemon off;
            {user}
            worker_processes {self.nginx_workers};
            pid {prefix}/nginx.pid;
            error_log {prefix}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {temp}/body;
                proxy_temp_path {temp}/proxy;
                fastcgi_temp_path {temp}/fastcgi;
                uwsgi_temp_path {temp}/uwsgi;
                scgi_temp_path {temp}/scgi;
                default_type application/json;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{ root {prefix}/www; etag on; }}
                }}
            }}
            """))  # fmt: skip
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.static = f"http://127.0.0.1:{port}/config.json"
        wait_for(self.static, self.nginx, "nginx")
        answer = httpx.get(self.static)
        answer.raise_for_status()
        assert answer.content == self.body, "nginx must serve the very same bytes"
        self.static_etag = answer.headers["etag"]

    def check_revalidation(self) -> None:
        """Both answer 304 to their ETag, so the 304 rows really measure revalidation."""
        lastgood = httpx.get(self.url, headers={"Authorization": f"Bearer {self.token}",
                                                "If-None-Match": self.etag})  # fmt: skip
        nginx = httpx.get(self.static, headers={"If-None-Match": self.static_etag})
        assert (lastgood.status_code, nginx.status_code) == (304, 304)

    def close(self) -> None:
        stop(self.nginx)
        stop(self.lastgood)


class Row:
    """One row's run: reads per second, and the CPU microseconds per read of the server's
    processes and of ``wrk``."""

    def __init__(self, rate: float, server_us: float, wrk_us: float) -> None:
        self.rate, self.server_us, self.wrk_us = rate, server_us, wrk_us


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` and its children (a server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        each = pending.pop()
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            pending += [int(child) for child in
                        Path(f"/proc/{each}/task/{each}/children").read_text().split()]  # fmt: skip
        except (OSError, ValueError):  # ended meanwhile
            continue
    return total


def run_row(plan: Plan, url: str, headers: dict[str, str], server: int) -> Row:
    """``wrk`` against ``url``, and what the reads cost the process ``server`` and ``wrk``."""
    before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(server)
    rate, count = wrk(plan, url, headers)
    after, server_after = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(server)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    reads = max(count, 1)
    return Row(rate, (server_after - server_before) / reads * 1e6, wrk_cpu / reads * 1e6)


def wrk(plan: Plan, url: str, headers: dict[str, str]) -> tuple[float, int]:
    """Requests per second and requests answered, from ``wrk``; refuses a run where any answer
    was 4xx or 5xx."""
    command = ["wrk", "-t", str(plan.threads), "-c", str(plan.connections),
               "-d", f"{plan.seconds}s", "--latency"]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True,
                          timeout=plan.seconds + 60)  # fmt: skip
    if done.returncode != 0 or "Non-2xx or 3xx" in done.stdout or "Socket errors" in done.stdout:
        raise SystemExit(f"wrk failed or saw errors:\n{done.stdout}{done.stderr}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    answered = re.search(r"(\d+) requests in", done.stdout)
    if found is None or answered is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{done.stdout}")
    return float(found.group(1)), int(answered.group(1))


def measure(plan: Plan, servers: Servers) -> dict[str, Row]:
    assert servers.lastgood is not None and servers.nginx is not None
    bearer = {"Authorization": f"Bearer {servers.token}"}
    lastgood, nginx = servers.lastgood.pid, servers.nginx.pid
    rows = {
        "lastgood 304": (servers.url, {**bearer, "If-None-Match": servers.etag}, lastgood),
        "nginx 304": (servers.static, {"If-None-Match": servers.static_etag}, nginx),
        "lastgood 200": (servers.url, bearer, lastgood),
        "nginx 200": (servers.static, {}, nginx),
    }
    for url, headers, _server in rows.values() if plan.warm else ():
        wrk(Plan(1, plan.connections, plan.threads), url, headers)
    return {name: run_row(plan, *row) for name, row in rows.items()}


def report(plan: Plan, servers: Servers, rows: dict[str, Row]) -> None:
    goal = target_for(servers.workers)
    print(f"\n== {HEADING} (wrk -t {plan.threads} -c {plan.connections} -d {plan.seconds}s; "
          f"body {len(servers.body):,} bytes, {FILES} files; lastgood --workers "
          f"{servers.workers}, nginx worker_processes {servers.nginx_workers}; "
          f"target >= {goal}x nginx) ==")  # fmt: skip
    print(f"{'server and answer':<18}  {'reads/s':>9}  {'vs nginx':>8}  {'server CPU/read':>15}  "
          f"{'wrk CPU/read':>12}")  # fmt: skip
    print(f"{'-' * 18}  {'-' * 9}  {'-' * 8}  {'-' * 15}  {'-' * 12}")
    for name in ("lastgood 304", "nginx 304", "lastgood 200", "nginx 200"):
        row, baseline = rows[name], rows["nginx " + name.split()[-1]].rate
        print(f"{name:<18}  {row.rate:>9,.0f}  {row.rate / baseline:>7.2f}x  "
              f"{row.server_us:>12.1f} µs  {row.wrk_us:>9.1f} µs")  # fmt: skip
    for kind in ("304", "200"):
        ratio = rows[f"lastgood {kind}"].rate / rows[f"nginx {kind}"].rate
        verdict = "meets" if ratio >= goal else "misses"
        print(f"ratio lastgood / nginx, {kind}: {ratio:.2f}x ({verdict} the {goal}x target)")


def target_for(workers: int) -> float:
    """The ratio to reach: 0.2x with one process each; 0.8x with workers (issue 16)."""
    return 0.2 if workers == 1 else 0.8


def missing_tools() -> list[str]:
    missing = [] if shutil.which("wrk") else ["wrk (apt-get install wrk)"]
    if not Path(NGINX).exists():
        missing.append(f"nginx at {NGINX} (apt-get install nginx-light)")
    return missing


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for smoke tests")
    parser.add_argument("--workers", type=int, default=1, help="lastgood serve --workers N")
    parser.add_argument("--nginx-workers", type=int, help="nginx worker_processes (default N)")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"config_reads benchmark needs: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    plan = QUICK if args.quick else FULL
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    print(f"lastgood config reads benchmark ({'quick' if args.quick else 'full'}); "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {version}")  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-reads-") as folder:
        servers = Servers(Path(folder), args.workers, args.nginx_workers or args.workers)
        try:
            servers.start()
            servers.check_revalidation()
            report(plan, servers, measure(plan, servers))
        finally:
            servers.close()
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
