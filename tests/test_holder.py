"""Who holds a lease: a dead holder is detected at once, but only where a pid means something."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lastgood import holder
from lastgood.errors import LockedError
from lastgood.rows import Lease
from lastgood.store import open_store


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_identity_names_start_time_and_namespace() -> None:
    start, _, namespace = holder.process_start(os.getpid()).partition("@")
    assert start.isdigit()
    assert namespace.startswith("pid:[")


def test_a_dead_pid_here_is_dead_but_not_in_another_namespace() -> None:
    pid = dead_pid()
    assert holder.is_alive(holder.hostname(), pid, holder.process_start(os.getpid())) is False
    elsewhere = "12345@pid:[4026599999]"
    assert holder.is_alive(holder.hostname(), pid, elsewhere) is None
    assert holder.is_alive("another-host", pid, "") is None


def test_a_lease_from_another_pid_namespace_waits_for_expiry(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.acquire_lease("env:prod", purpose="deploy", holder_name="ci", ttl=60)
        # the same lease as a process in a container (same hostname, own pid namespace) holds it
        with store.db.transaction("fake a container's lease") as session:
            session.run(
                "UPDATE leases SET pid = :pid, pid_start = :start WHERE name = :name",
                {"pid": dead_pid(), "start": "12345@pid:[4026599999]", "name": "env:prod"},
            )
        with pytest.raises(LockedError, match="locked by ci"):
            store.acquire_lease("env:prod", purpose="rollback", holder_name="me", ttl=60)
    finally:
        store.close()


def lease(host: str, pid: int, pid_start: str, expires_at: float) -> Lease:
    return Lease(name="env:prod", token="t", holder="ci", purpose="deploy", host=host,
                 pid=pid, pid_start=pid_start, acquired_at=expires_at - 60,
                 expires_at=expires_at)  # fmt: skip


def test_a_lease_is_alive_until_it_expires_or_its_holder_dies_here() -> None:
    now, here, me = time.time(), holder.hostname(), holder.process_start(os.getpid())
    assert holder.lease_is_alive(lease(here, os.getpid(), me, now + 60), now)
    assert not holder.lease_is_alive(lease(here, os.getpid(), me, now), now)  # expired
    assert not holder.lease_is_alive(lease(here, dead_pid(), me, now + 60), now)  # kill -9
    # a holder elsewhere cannot be told dead: its lease lasts until it expires
    assert holder.lease_is_alive(lease("another-host", dead_pid(), "", now + 60), now)
