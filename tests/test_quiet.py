"""The server's background store work stands aside while a switch reaches the fleet
(lastgood.server.quiet): real threads, a real store."""

from __future__ import annotations

import threading
import time

from lastgood.server.consumers import FLUSH_PART, Consumers
from lastgood.server.quiet import Quiet
from lastgood.store import open_store


def waited_in_thread(quiet: Quiet) -> tuple[threading.Thread, list[float]]:
    """``quiet.wait()`` in a thread of its own; the moment it returned lands in the list."""
    returned: list[float] = []
    thread = threading.Thread(target=lambda: (quiet.wait(), returned.append(time.monotonic())))
    thread.start()
    return thread, returned


def test_nothing_waits_when_no_switch_is_reaching_the_fleet() -> None:
    assert Quiet(settle=5.0, longest=5.0).wait() < 1.0


def test_background_work_waits_until_the_fan_out_ended_and_the_consumers_applied_it() -> None:
    quiet = Quiet(settle=0.2, longest=10.0)
    with quiet.fanning_out():
        thread, returned = waited_in_thread(quiet)
        time.sleep(0.3)
        assert not returned  # still waiting while the fan-out runs
        ended = time.monotonic()
    thread.join(10)
    assert returned and returned[0] >= ended + 0.2 * 0.9  # and for the settle time after it


def test_fan_outs_of_two_feeds_at_once_are_both_waited_for() -> None:
    quiet = Quiet(settle=0.0, longest=10.0)
    first, second = quiet.fanning_out(), quiet.fanning_out()
    first.__enter__()
    second.__enter__()
    thread, returned = waited_in_thread(quiet)
    first.__exit__(None, None, None)
    time.sleep(0.2)
    assert not returned  # the other feed is still writing
    second.__exit__(None, None, None)
    thread.join(10)
    assert returned


def test_no_wait_lasts_longer_than_its_bound() -> None:
    quiet = Quiet(settle=0.0, longest=0.3)
    with quiet.fanning_out():  # a fan-out that does not end in time
        assert 0.25 <= quiet.wait() < 5.0
        assert quiet.wait(time.monotonic() + 0.1) < 0.25  # nor past the caller's deadline


def test_a_flush_writes_in_parts_and_waits_while_a_switch_reaches_the_fleet(
    store_url: str,
) -> None:
    """Reports of more consumers than one part holds: while a fan-out runs, the flush writes
    nothing; after it, every report reaches the store, one transaction per part."""
    store = open_store(store_url)
    try:
        quiet = Quiet(settle=0.05, longest=10.0)
        registry = Consumers(store, quiet=quiet)
        count = FLUSH_PART * 2 + 200
        for number in range(count):
            registry.report("prod", f"app-{number}", name=f"app-{number}", version=2,
                            content_hash="c2")  # fmt: skip
        flushed: list[int] = []
        with quiet.fanning_out():
            thread = threading.Thread(target=lambda: flushed.append(registry.flush()))
            thread.start()
            time.sleep(0.3)
            assert store.consumers("prod") == [] and not flushed
        thread.join(30)
        assert flushed == [count]
        assert len(store.consumers("prod")) == count
        rows, newest = store.consumers_written_after(-1)
        assert len(rows) == count
        assert newest == 3  # three parts, each its own numbered write
    finally:
        store.close()


def test_a_flush_a_sibling_worker_waits_for_does_not_stand_aside(store_url: str) -> None:
    store = open_store(store_url)
    try:
        quiet = Quiet(settle=5.0, longest=10.0)
        registry = Consumers(store, quiet=quiet)
        registry.report("prod", "app-1", name="app-1", version=2, content_hash="c2")
        with quiet.fanning_out():
            assert registry.flush(stand_aside=False) == 1
        assert [c.consumer_id for c in store.consumers("prod")] == ["app-1"]
    finally:
        store.close()
