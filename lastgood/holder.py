"""Who is acting: the process identity written into leases, whether a lease's holder still
lives, and the author of a change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood import settings

if TYPE_CHECKING:
    from lastgood.rows import Lease


def hostname() -> str:
    """This machine's name, as leases record it (``os.uname`` is cheaper than socket)."""
    return os.uname().nodename


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def pid_namespace() -> str:
    """This process's PID namespace ("" when unknown): a pid means nothing outside it."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """``start-time@pid-namespace`` of ``pid``: tells a live pid from a reused one, and says in
    which namespace the pid is meaningful ("" parts when unknown)."""
    return f"{_start_time(pid)}@{pid_namespace()}"


def is_alive(host: str, pid: int, pid_start: str) -> bool | None:
    """Whether a lease's process still runs; None when it cannot be told.

    It cannot be told on another host, nor from another PID namespace (two containers may share
    a hostname and reuse pid numbers): such a lease is only taken over once it expires.
    """
    recorded_start, _, recorded_namespace = pid_start.partition("@")
    if host != hostname() or (recorded_namespace and recorded_namespace != pid_namespace()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not recorded_start or _start_time(pid) in ("", recorded_start)


def lease_is_alive(lease: Lease, now: float) -> bool:
    """Unexpired and its process not known dead: a kill -9 frees the lease at once.

    The rule every reader of a lease applies (the deploy taking one over, the watcher asking
    whether an environment is busy); it reads ``/proc`` only, never the store."""
    if lease.expires_at <= now:
        return False
    return is_alive(lease.host, lease.pid, lease.pid_start) is not False


def author(explicit: str | None = None) -> str:
    """``--author``, then ``LASTGOOD_AUTHOR``, then git's user.name, then the OS user."""
    if explicit:
        return explicit
    configured = settings.AUTHOR.read()
    if configured:
        return configured
    import subprocess

    try:
        name = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=2
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
