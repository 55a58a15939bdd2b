"""The Prometheus exposition, built per scrape from the store and the server's consumer registry.

A custom collector (rather than counters incremented in process) keeps the figures true across
restarts and for deploys and rollbacks made by the CLI or the watcher, which never pass through
the server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from lastgood.server.app import ServerState

RESTORE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LEDGER_WINDOW = 10_000


class LedgerCollector(Collector):
    """Reads the ledger and the consumers at scrape time.

    A declared subclass, not only the right shape: older prometheus-client releases make
    ``Collector`` an abstract class, newer ones a protocol, and ``register`` takes either."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        store = self.state.project.store
        records = store.deployments(limit=LEDGER_WINDOW)
        changes = CounterMetricFamily(
            "lastgood_deployments", "Ledger records by environment, kind and outcome",
            labels=["env", "kind", "status"],
        )  # fmt: skip
        for (env, kind, status), count in sorted(
            Counter((r.env, r.kind, r.status) for r in records).items()
        ):
            changes.add_metric([env, kind, status], count)
        yield changes
        restores = HistogramMetricFamily(
            "lastgood_restore_seconds",
            "Time from trigger to restored version active, for rollbacks that succeeded",
            labels=["env"],
        )
        by_env: dict[str, list[float]] = {}
        for r in records:
            if r.is_rollback and r.status == "succeeded" and r.time_to_active is not None:
                by_env.setdefault(r.env, []).append(r.time_to_active)
        for env, values in sorted(by_env.items()):
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in RESTORE_BUCKETS]
            buckets.append(("+Inf", len(values)))
            restores.add_metric([env], buckets, sum(values))
        yield restores
        failures = CounterMetricFamily(
            "lastgood_check_failures", "Failed health check results kept in the store",
            labels=["env"],
        )  # fmt: skip
        failed = Counter(c.env for c in store.check_records(limit=LEDGER_WINDOW) if not c.ok)
        for env, count in sorted(failed.items()):
            failures.add_metric([env], count)
        yield failures
        consumers = GaugeMetricFamily(
            "lastgood_consumers", "Consumers heard from in the last 90 s, by version served",
            labels=["env", "version"],
        )  # fmt: skip
        yield from self._consumers(consumers)
        yield from self._rollouts()

    def _consumers(self, family: GaugeMetricFamily) -> Iterator[Metric]:
        import time

        from lastgood.operations.fleet import STALE_AFTER

        now = time.time()
        self.state.consumers.gather()  # the same figures whichever worker is scraped
        counts = Counter(
            (c.env, "none" if c.version is None else str(c.version))
            for c in self.state.consumers.all()
            if now - c.seen_at <= STALE_AFTER
        )
        for (env, version), count in sorted(counts.items()):
            family.add_metric([env, version], count)
        yield family
        live = GaugeMetricFamily("lastgood_live_version", "Version each served environment "
                                 "publishes", labels=["env"])  # fmt: skip
        for env, feed in sorted(self.state.feeds.feeds.items()):
            if feed.current is not None:
                live.add_metric([env], feed.current.version)
        yield live

    def _rollouts(self) -> Iterator[Metric]:
        """Per served environment, the share of consumers a gradual rollout gives its new
        version (0 when none is under way) and, during one, that version. Read from the
        pointer on each target, as the server's feeds are."""
        from lastgood.errors import LastgoodError
        from lastgood.targets.served import ServedTarget

        percent = GaugeMetricFamily(
            "lastgood_rollout_percent", "Share of consumers a gradual rollout gives its new "
            "version, in percent (0: no rollout under way)", labels=["env"],
        )  # fmt: skip
        canary = GaugeMetricFamily(
            "lastgood_rollout_version", "The version a gradual rollout is giving to some "
            "consumers (only while one is under way)", labels=["env"],
        )  # fmt: skip
        project = self.state.project
        for env, settings in sorted(project.config.environments.items()):
            if settings.target.type != "served":
                continue
            try:
                target = project.target(env)
                pointer = target.rollout() if isinstance(target, ServedTarget) else None
            except LastgoodError:
                pointer = None  # unreadable: the feed gives everyone the stable version
            percent.add_metric([env], pointer.percent if pointer else 0.0)
            if pointer is not None:
                canary.add_metric([env], pointer.version)
        yield percent
        yield canary


def render(state: ServerState) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(state))
    return generate_latest(registry), CONTENT_TYPE_LATEST
