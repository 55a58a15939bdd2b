"""``lastgood serve --workers N``: N server processes on one listening socket, kept at N.

Why our own pre-fork rather than uvicorn's ``--workers``: uvicorn starts its workers with
``spawn``, which needs the app as an import string (ours is built from the command line's
project, store URL and options) and re-imports everything in each worker; its supervisor also
knows nothing of what our workers must tell each other. Forking after the command line is parsed
costs a few milliseconds per worker and every worker opens its own store connections (never
the parent's: :func:`serve` forks before any connection is used, and each worker opens the
project anew).

Why one socket bound by the parent and inherited, rather than one ``SO_REUSEPORT`` socket per
worker: a worker killed with connections waiting in its own accept queue loses them with
``SO_REUSEPORT`` (the kernel resets them), while an inherited socket keeps them for the other
workers; the port stays bound while a worker is replaced; and a port that cannot be bound is
one clear error before anything forks. Each worker's event loop accepts from the same queue.

What the workers share, and how:

- **Switches.** Each worker has its own live feeds. A deploy or rollback answered by one
  worker publishes on that worker before the answer (as with one process); the worker then asks
  the parent (``SIGUSR1``) to wake the others, which refresh their feeds at once. Measured
  with ``--poll 10`` (so through the wake-up alone): consumers held by either of two workers
  had the new version 7 to 15 ms after the switch, against up to ``--poll`` (20 ms by default)
  for the readlink poll that also runs. A signal costs no socket or file, and coalesces
  harmlessly (a wake-up is "look now"). On PostgreSQL every worker also hears ``NOTIFY``.
- **The fleet.** Each worker flushes its consumers' reports to the store and reads everyone's
  back, as several servers on one store do (see :mod:`lastgood.server.consumers`). Before it
  answers from the fleet, a worker has every other write what it holds (``FLUSH``, relayed
  like the wake-up), through a block of shared memory that says who holds what (see
  :mod:`lastgood.server.siblings`), so it counts every worker's consumers up to that moment.
- **Leases.** Deploys and rollbacks hold the store's leases, which already keep apart several
  servers on one store.

The parent only supervises: a worker that dies is replaced; SIGTERM or SIGINT to the parent
stops every worker (each ends its held requests cleanly) and then the parent; a parent killed
outright takes its workers with it (``PR_SET_PDEATHSIG`` on Linux). A worker that fails while
starting (its store unreachable, say) stops the whole server with that worker's exit code:
replacing it would fail the same way, forever.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from lastgood.errors import LastgoodError, UsageError
from lastgood.server.siblings import FLUSH, Board

STARTING = 3.0  # seconds: a worker that exits by itself sooner failed to start
WAKE = signal.SIGUSR1  # worker -> parent: "I switched something"; parent -> workers: "refresh"
_PR_SET_PDEATHSIG = 1
MAX_WORKERS = 64


def check_count(workers: int) -> None:
    """``--workers`` must be 1 to :data:`MAX_WORKERS`."""
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(
            f"--workers must be 1 to {MAX_WORKERS}, got {workers}",
            hint=f"one per core is a good start: --workers {os.cpu_count() or 2}",
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from; UsageError when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"lastgood serve could not listen on {host}:{port}: {exc.strerror or exc}",
            hint="stop what uses that port, or give another --port or --host",
        ) from None
    sock.set_inheritable(True)
    return sock


def wake_siblings() -> None:
    """Ask the parent to wake every worker's feeds (from a worker; thread-safe)."""
    with contextlib.suppress(OSError):  # the parent is gone: the poll still catches up
        os.kill(os.getppid(), WAKE)


class Supervisor:
    """Forks ``count`` workers that each run ``work()`` and keeps them at ``count`` until
    SIGTERM or SIGINT. Writes nothing but its children."""

    def __init__(self, count: int, work: Callable[[], int], board: Board | None = None) -> None:
        self.count = count
        self.work = work
        self.board = board  # shared with the workers: who holds reports not yet in the store
        self.children: dict[int, float] = {}  # pid -> when it started
        self.slots: dict[int, int] = {}  # pid -> its slot on the board (0 to count - 1)
        self.stopping = False
        self.stopped_by: int | None = None  # the first SIGTERM or SIGINT received

    def run(self) -> int | None:
        """Supervise until stopped; the signal that stopped it, or None. LastgoodError with a
        worker's exit code when it failed while starting (it printed why)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in
                    (signal.SIGTERM, signal.SIGINT, WAKE, FLUSH)}  # fmt: skip
        try:
            for _ in range(self.count):
                self._fork()
            self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stopped_by

    def _watch(self) -> None:
        """Reap workers; replace the dead while serving; return once all are gone."""
        failed: int | None = None
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            slot = self.slots.pop(pid, None)
            if slot is not None and self.board is not None:
                self.board.clear(slot)  # nobody waits for what a dead worker held
            if started is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code > 0 and time.monotonic() - started < STARTING:
                failed = code
                self._stop_all()
            else:
                sys.stderr.write(f"lastgood serve: worker {pid} {_ended(code)}; starting another\n")
                sys.stderr.flush()
                self._fork()
        if failed is not None:
            error = LastgoodError(
                f"a worker of lastgood serve failed to start (exit {failed}); it said why "
                "above", hint="fix that, then start the server again"
            )  # fmt: skip
            error.exit_code = failed
            raise error

    def _fork(self) -> None:
        slot = min(set(range(self.count)) - set(self.slots.values()))
        pid = os.fork()
        if pid == 0:
            self._be_worker(slot)
        self.children[pid] = time.monotonic()
        self.slots[pid] = slot

    def _be_worker(self, slot: int) -> None:
        """In the child: reset the parent's signal handlers, die with the parent, serve."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(WAKE, signal.SIG_IGN)  # until the worker's loop handles it
        signal.signal(FLUSH, signal.SIG_IGN)  # likewise (it holds no report before that)
        if self.board is not None:
            self.board.take(slot)
        _die_with_parent()
        code = 1
        try:
            code = self.work()
        except LastgoodError as exc:
            sys.stderr.write(f"error: {exc}\n")
            code = exc.exit_code
        except BaseException as exc:  # a worker must never unwind into the CLI's code
            sys.stderr.write(f"unexpected error in a worker: {type(exc).__name__}: {exc}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # never return into the parent's code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in (WAKE, FLUSH):  # from one worker, for every worker
            for pid in list(self.children):
                with contextlib.suppress(OSError):
                    os.kill(pid, signum)
            return
        if self.stopped_by is None:
            self.stopped_by = signum
        self._stop_all()

    def _stop_all(self) -> None:
        """Ask every worker to stop (each ends its held requests, then exits)."""
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


def _ended(code: int) -> str:
    """How a worker ended, for the line that says it was replaced (a crash loop shows)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
