"""``lastgood watch``: the long-running watcher that keeps every environment honest.

Each cycle it runs the health checks (rolling back within the ``guard`` window after a deploy),
compares what every target serves with what the ledger says (drift), tracks documents, runs
scheduled drills and digests, and watches itself: problems it cannot fix are alerted again every
``alert_every`` until they are resolved. One watcher per store, through a lease.
"""

from __future__ import annotations

from lastgood.watch.daemon import CycleReport, Watcher

__all__ = ["CycleReport", "Watcher"]
