"""The demo's lead-scoring service: a real process that reads its rules from a directory target.

Run as ``python -m lastgood.demo.scorer --live PATH --db PATH --port 0`` (the demo uses
:class:`ScorerProcess`), it prints its port (on 127.0.0.1) as its first line of stdout and serves:

- ``GET /health``: ``{"status": "ok", "config": "v1-3f2a9c1d", "version": "v1", "cutoff": 0.2,
  "leads_scored": 42, "recent_average": 0.41}``;
- ``POST /score`` with a JSON lead: scores it, records it and answers ``{"id", "score", …}``.

It re-reads ``PATH/current/scoring/thresholds.yaml`` on every request and every fed lead, so a
switch of the ``current`` symlink takes effect at once, the way the incident needs it to. Until a
version is live (or when the file is unreadable) it keeps the rules it had, starting from built-in
defaults, as a real service would. A feeder thread scores a synthetic lead every ``--feed``
seconds so the demo's SQL check always has fresh rows. Writes only the ``leads`` table of ``--db``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from lastgood.errors import LastgoodError

RULES_FILE = Path("scoring") / "thresholds.yaml"
RECENT_WINDOW = 1.0
_SCHEMA = """
create table if not exists leads (
    id integer primary key autoincrement,
    score real not null,
    scored_at text not null default (strftime('%Y-%m-%d %H:%M:%f', 'now'))
)
"""


@dataclass(frozen=True)
class Rules:
    """Scoring rules: a weight per lead signal, and the cutoff below which a lead is cold."""

    source: str
    cutoff: float
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        """``v1`` for a release named ``v1-3f2a9c1d``; None for the built-in defaults."""
        head = self.source.split("-", 1)[0]
        return head if head.startswith("v") and head[1:].isdigit() else None


DEFAULT_RULES = Rules(
    "built-in defaults", 0.2, {"visits": 0.04, "emails_opened": 0.06, "employees": 0.0005}
)


def score(lead: Mapping[str, Any], rules: Rules) -> float:
    """Weighted sum of the lead's signals, capped at 1; a lead below the cutoff scores 0.

    The cap is why a cutoff above 1 (``20`` typed for "20 %") makes every lead score zero.
    """
    raw = sum(weight * float(lead.get(name, 0) or 0) for name, weight in rules.weights.items())
    raw = min(raw, 1.0)
    return round(raw, 4) if raw >= rules.cutoff else 0.0


def demo_lead(number: int) -> dict[str, Any]:
    """A deterministic synthetic lead: the same sequence on every run, mostly warm leads."""
    return {
        "id": f"lead-{number}",
        "visits": 2 + (number * 7) % 9,
        "emails_opened": (number * 3) % 6,
        "employees": 50 + (number * 37) % 400,
    }


def read_rules(live: Path) -> Rules:
    """Read the rules of the release ``live/current`` points at; raises OSError or ValueError.

    The symlink is resolved first and the file read from the resolved folder, so the release
    name reported in /health always matches the rules actually used.
    """
    release = Path(os.path.realpath(live / "current"))
    data = yaml.safe_load((release / RULES_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{RULES_FILE} must be a mapping")
    weights = data.get("weights", {})
    if not isinstance(weights, dict):
        raise ValueError("weights must be a mapping")
    return Rules(
        release.name,
        float(data.get("cutoff", 0)),
        {str(key): float(value) for key, value in weights.items()},
    )


class LeadBook:
    """The ``leads`` table: one connection shared by all threads, one writer at a time.

    WAL mode lets lastgood's SQL check read while the scorer writes.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(_SCHEMA)

    def record(self, value: float) -> int:
        """Insert one scored lead; returns its id."""
        with self._lock:
            cursor = self._db.execute("insert into leads (score) values (?)", (value,))
            return int(cursor.lastrowid or 0)

    def summary(self) -> tuple[int, float | None]:
        """How many leads were scored, and their average score over the last second."""
        window = f"-{RECENT_WINDOW:g} seconds"
        with self._lock:
            (count,) = self._db.execute("select count(*) from leads").fetchone()
            (average,) = self._db.execute(
                "select avg(score) from leads "
                "where scored_at > strftime('%Y-%m-%d %H:%M:%f', 'now', ?)",
                (window,),
            ).fetchone()
        return int(count), None if average is None else round(float(average), 4)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Scorer:
    """Scores leads with the rules live now; keeps the last rules it could read."""

    def __init__(self, live: Path, book: LeadBook) -> None:
        self.live = live
        self.book = book
        self._rules = DEFAULT_RULES
        self._lock = threading.Lock()

    def rules(self) -> Rules:
        """Re-read the live rules (cheap: one tiny file) and log when they change."""
        try:
            fresh = read_rules(self.live)
        except (OSError, ValueError, TypeError, yaml.YAMLError):
            return self._rules
        with self._lock:
            if fresh != self._rules:
                log(f"now scoring with {fresh.source} (cutoff {fresh.cutoff:g})")
                self._rules = fresh
        return fresh

    def score_lead(self, lead: Mapping[str, Any]) -> dict[str, Any]:
        """Score one lead with the live rules and record it."""
        rules = self.rules()
        value = score(lead, rules)
        lead_id = self.book.record(value)
        return {"id": lead_id, "lead": lead.get("id"), "score": value, "config": rules.source}

    def health(self) -> dict[str, Any]:
        rules = self.rules()
        count, average = self.book.summary()
        return {
            "status": "ok",
            "config": rules.source,
            "version": rules.version,
            "cutoff": rules.cutoff,
            "leads_scored": count,
            "recent_average": average,
        }


class ScoringServer(ThreadingHTTPServer):
    """The HTTP server, carrying the scorer its handlers use."""

    daemon_threads = True

    def __init__(self, port: int, scorer: Scorer) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.scorer = scorer


class Handler(BaseHTTPRequestHandler):
    """``GET /health`` and ``POST /score``; everything else is a 404."""

    server: ScoringServer

    def do_GET(self) -> None:
        if self.path != "/health":
            self._send(404, {"error": f"no route {self.path}"})
            return
        self._send(200, self.server.scorer.health())

    def do_POST(self) -> None:
        if self.path != "/score":
            self._send(404, {"error": f"no route {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            lead = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(lead, dict):
                raise ValueError("a lead is a JSON object")
            self._send(200, self.server.scorer.score_lead(lead))
        except ValueError as exc:
            self._send(400, {"error": str(exc)})

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet per request: ten requests a second would drown the log."""


def log(text: str) -> None:
    sys.stderr.write(f"scorer: {text}\n")
    sys.stderr.flush()


def feed(scorer: Scorer, every: float, stop: threading.Event) -> None:
    """Score a synthetic lead every ``every`` seconds until ``stop`` is set."""
    number = 0
    while not stop.wait(every):
        number += 1
        scorer.score_lead(demo_lead(number))


def exit_with_parent(stop: threading.Event) -> None:
    """Block until stdin closes (the parent died or let go), then stop the server.

    This is what keeps the scorer from outliving a demo that was killed outright, when no
    ``finally`` of the parent's could run.
    """
    # os.read on the raw descriptor: a thread blocked inside sys.stdin's buffered reader holds
    # its lock, and the interpreter aborts at exit when it cannot take that lock.
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    if not stop.is_set():
        os.kill(os.getpid(), signal.SIGTERM)


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lastgood.demo.scorer", description=__doc__)
    parser.add_argument("--live", type=Path, required=True, help="the directory target's path")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file for the leads table")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--feed", type=float, default=0.1, help="seconds between fed leads; 0: off")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when stdin reaches end of file"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM, Ctrl-C or (with ``--exit-with-parent``) the end of stdin."""
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _on_terminate)
    book = LeadBook(args.db)
    scorer = Scorer(args.live, book)
    server = ScoringServer(args.port, scorer)
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve_forever, name="http", daemon=True)]
    if args.feed > 0:
        threads.append(threading.Thread(target=feed, args=(scorer, args.feed, stop), daemon=True))
    if args.exit_with_parent:
        threading.Thread(target=exit_with_parent, args=(stop,), daemon=True).start()
    try:
        for thread in threads:
            thread.start()
        print(server.server_address[1], flush=True)
        log(f"listening on 127.0.0.1:{server.server_address[1]}, rules from {args.live}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        _shut_down(server, threads, stop, book)
    return 0


def _shut_down(
    server: ScoringServer, threads: list[threading.Thread], stop: threading.Event, book: LeadBook
) -> None:
    """Stop serving and feeding, then close the socket and the database."""
    stop.set()
    if threads[0].ident is not None:  # shutdown() waits forever on a loop that never started
        server.shutdown()
    for thread in threads:
        if thread.ident is not None:
            thread.join(timeout=2)
    server.server_close()
    book.close()
    log("stopped")


class ScorerProcess:
    """The scorer as the demo's child process; leaving the ``with`` block always stops it.

    Its stdin is a pipe the parent never writes to: if the parent dies without cleaning up, the
    pipe closes and ``--exit-with-parent`` stops the scorer. Its log goes to ``scorer.log`` in
    the demo folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "scorer.log"
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self) -> ScorerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, live: Path, db: Path, *, timeout: float = 15.0) -> int:
        """Start the scorer and return the port it listens on. Creates ``db``."""
        command = [sys.executable, "-m", "lastgood.demo.scorer", "--live", str(live)]
        command += ["--db", str(db), "--port", "0", "--exit-with-parent"]
        with open(self.log, "ab") as log_file:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                cwd=self.folder,
            )
        self.port = self._read_port(self._process, timeout)
        return self.port

    def _read_port(self, process: subprocess.Popen[bytes], timeout: float) -> int:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        line = process.stdout.readline() if ready else b""
        try:
            return int(line)
        except ValueError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1 if ready else 0)
            code = process.returncode
            why = f"no port within {timeout:g} s" if code is None else f"it exited with code {code}"
            raise LastgoodError(
                f"the demo's scorer did not start ({why}): {self._log_tail()}",
                hint="run again with --keep and read scorer.log in the folder it prints",
            ) from None

    def _log_tail(self) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return " | ".join(text.strip().splitlines()[-3:]) or "it printed nothing"

    def health(self) -> dict[str, Any]:
        """``GET /health``, or ``{"status": "unreachable", …}`` when the scorer does not answer."""
        url = f"http://127.0.0.1:{self.port}/health"
        try:
            with self._opener.open(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except (OSError, ValueError) as exc:
            return {"status": "unreachable", "error": str(exc)}

    def stop(self) -> None:
        """Terminate the scorer, wait for it (kill after 5 s) and close the pipes. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


if __name__ == "__main__":
    sys.exit(main())
