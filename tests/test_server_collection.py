"""Full garbage collections on the server's schedule (lastgood.server.collection): while it runs
CPython starts none by itself, the periodic one still frees cycles, and stopping puts the
process's own settings back."""

from __future__ import annotations

import gc
import weakref

from lastgood.server.collection import NEVER, Collection


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only a collection frees it


def test_while_running_only_the_servers_own_full_collection_frees_old_cycles() -> None:
    before = gc.get_threshold()
    collection = Collection()
    collection.start()
    try:
        assert gc.get_threshold()[2] == NEVER and gc.get_freeze_count() > 0
        node = Node()
        gone = weakref.ref(node)
        del node
        assert collection.full() >= 1
        assert gone() is None
    finally:
        collection.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
