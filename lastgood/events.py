"""Typed events: one stream for everything that happens.

The ledger, the terminal renderer (and later notifications and the web page) subscribe to the
same stream. A subscriber that fails never stops a deploy or a rollback; only the ledger, which
must tell the truth, is allowed to raise.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from lastgood.record import Record, field


class EventKind(StrEnum):
    """Every kind of event, with the name used in the ledger and the docs."""

    SNAPSHOT_CREATED = "snapshot-created"
    IMPORTED = "imported"
    DEPLOY_PLANNED = "deploy-planned"
    DEPLOY_STARTED = "deploy-started"
    DEPLOY_UNCHANGED = "deploy-unchanged"
    DEPLOY_REFUSED = "deploy-refused"
    BASELINE_IGNORED = "baseline-ignored"
    STAGED = "staged"
    PREFLIGHT_PASSED = "preflight-passed"
    PREFLIGHT_FAILED = "preflight-failed"
    ACTIVATED = "activated"
    ROLLOUT_STEP = "rollout-step"
    ROLLOUT_PROMOTED = "rollout-promoted"
    ROLLOUT_STOPPED = "rollout-stopped"
    ROLLOUT_ABORTED = "rollout-aborted"
    ROLLOUT_INTERRUPTED = "rollout-interrupted"
    CHECK_ROUND = "check-round"
    CHECK_FAILED = "check-failed"
    BAKE_PASSED = "bake-passed"
    DEPLOY_SUCCEEDED = "deploy-succeeded"
    DEPLOY_FAILED = "deploy-failed"
    AUTO_ROLLBACK_STARTED = "auto-rollback-started"
    AUTO_ROLLED_BACK = "auto-rolled-back"
    ROLLBACK_STARTED = "rollback-started"
    ROLLBACK_PERFORMED = "rollback-performed"
    RESTORE_FAILED = "restore-failed"
    LEASE_BROKEN = "lease-broken"
    LEASE_TAKEN_OVER = "lease-taken-over"
    TARGET_RECOVERED = "target-recovered"
    TARGET_RECOVERY_FAILED = "target-recovery-failed"
    DRIFT_REPAIRED = "drift-repaired"
    RECONCILED = "reconciled"
    OFFLINE_ROLLBACK_RECORDED = "offline-rollback-recorded"
    GIT_REFS_FAILED = "git-refs-failed"
    DRILL_STARTED = "drill-started"
    DRILL_FINISHED = "drill-finished"
    DRILL_OVERDUE = "drill-overdue"
    BISECT_FINISHED = "bisect-finished"
    BUDGET_EXCEEDED = "budget-exceeded"
    LAST_GOOD_CHANGED = "last-good-changed"
    HEALTH_FAILED = "health-failed"
    HEALTH_RECOVERED = "health-recovered"
    DRIFT_DETECTED = "drift-detected"
    DOCUMENT_CHANGED = "document-changed"
    WATCH_STARTED = "watch-started"
    WATCH_STOPPED = "watch-stopped"
    WATCH_ALERT = "watch-alert"
    WATCH_RECOVERED = "watch-recovered"
    PRUNED = "pruned"
    DIGEST = "digest"
    NOTIFY_TEST = "notify-test"
    REQUEST_OPENED = "request-opened"
    REQUEST_UPDATED = "request-updated"
    REQUEST_APPROVED = "request-approved"
    REQUEST_REJECTED = "request-rejected"
    REQUEST_APPLIED = "request-applied"
    REQUEST_FAILED = "request-failed"
    REQUEST_STALE = "request-stale"
    REQUEST_HELD = "request-held"
    REQUEST_EXPIRED = "request-expired"
    REQUEST_WITHDRAWN = "request-withdrawn"
    REQUEST_SIGNED_OFF = "request-signed-off"
    REQUEST_REMINDER = "request-reminder"


# Kinds written to the ledger's event table; check rounds live in their own table instead, and
# a test message or a digest is not something that happened to an environment.
PERSISTED = frozenset(EventKind) - {EventKind.CHECK_ROUND, EventKind.NOTIFY_TEST, EventKind.DIGEST}


class Event(Record):
    """Something that happened, with enough data to render it without asking the store."""

    kind: EventKind
    message: str
    env: str | None = None
    version: int | None = None
    deployment: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    """Deduplication key for notifications: a route delivers each key once. None lets the
    notifier derive one from kind, environment, deployment and version."""


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers each event to the ledger first, then to every other subscriber."""

    def __init__(self) -> None:
        self._ledger: Subscriber | None = None
        self._subscribers: list[Subscriber] = []

    def set_ledger(self, subscriber: Subscriber) -> None:
        self._ledger = subscriber

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """Every subscriber but the ledger, in order."""
        return tuple(self._subscribers)

    def emit(self, event: Event) -> None:
        if self._ledger is not None and event.kind in PERSISTED:
            self._ledger(event)
        self.announce(event)

    def announce(self, event: Event) -> None:
        """Deliver ``event`` to the subscribers only: for the watcher's alerts about a store it
        cannot reach, when the ledger cannot take the event but people must still hear of it."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a renderer or notifier must never block a rollback
                import logging

                logging.getLogger("lastgood.events").exception(
                    "event subscriber failed on %s", event.kind.value
                )
