"""What a message template sees: the event, the route, and the details a person asks first.

Events carry what their emitter knew; a reader of an alert also wants who, why, from which
version to which, how long the restore took against the budget, and which files changed. Those
come from the event's data when the emitter put them there, else from the ledger record and the
store. Runs on the notifier's worker thread; reads the store, writes nothing. A store that
cannot answer only makes the message shorter: an alert is never lost for want of detail.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lastgood.config import Config
from lastgood.config_notify import Route
from lastgood.errors import LastgoodError
from lastgood.events import Event, EventKind

if TYPE_CHECKING:
    from lastgood.store.core import Store

FILES_SHOWN = 20
DIFF_LINES = 60

# The data keys the default templates already show in their own lines.
SHOWN_KEYS = frozenset(
    {"from", "to", "actor", "reason", "time_to_active", "time_to_verified", "budget", "diff",
     "files", "files_changed", "title", "text", "markdown", "html", "key", "activated_at"}
)  # fmt: skip

NEXT_STEPS = {
    EventKind.DEPLOY_FAILED: "lastgood history {env}",
    EventKind.AUTO_ROLLED_BACK: "lastgood history {env}",
    EventKind.ROLLBACK_PERFORMED: "lastgood history {env}",
    EventKind.RESTORE_FAILED: "lastgood status {env}",
    EventKind.BUDGET_EXCEEDED: "lastgood history {env}",
    EventKind.DRIFT_DETECTED: "lastgood diff {env}:live",
    EventKind.DRILL_OVERDUE: "lastgood drill {env}",
    EventKind.HEALTH_FAILED: "lastgood check {env}",
    EventKind.WATCH_ALERT: "lastgood status",
}
"""The command to run next, per kind (only for kinds whose events name an environment)."""

SEVERITY = {
    EventKind.DEPLOY_FAILED: "failure",
    EventKind.RESTORE_FAILED: "failure",
    EventKind.HEALTH_FAILED: "failure",
    EventKind.BUDGET_EXCEEDED: "warning",
    EventKind.AUTO_ROLLED_BACK: "warning",
    EventKind.DRIFT_DETECTED: "warning",
    EventKind.DRILL_OVERDUE: "warning",
    EventKind.WATCH_ALERT: "warning",
    EventKind.DOCUMENT_CHANGED: "info",
    EventKind.ROLLBACK_PERFORMED: "success",
    EventKind.HEALTH_RECOVERED: "success",
    EventKind.WATCH_RECOVERED: "success",
    EventKind.LAST_GOOD_CHANGED: "success",
    EventKind.DEPLOY_SUCCEEDED: "success",
}
"""apprise's notify type per kind (colours and icons in chat services); the rest is info."""


def build(
    event: Event, route: Route, *, at: float, config: Config, store: Store | None
) -> dict[str, Any]:
    """The template variables ``event``, ``route`` and ``details`` (see docs/notifications.md).

    A diff in the event's data is masked here once more (``[secrets]``), whoever emitted it:
    a message leaves the machine, and a template may print ``event.data`` as it likes."""
    event = _masked(event, config)
    return {
        "event": {
            "kind": event.kind.value,
            "message": event.message,
            "env": event.env,
            "version": event.version,
            "deployment": event.deployment,
            "data": dict(event.data),
            "key": event.key,
            "at": at,
        },
        "route": {
            "name": route.name,
            "format": route.format,
            "events": list(route.events),
            "envs": list(route.envs),
        },
        "details": details(event, config=config, store=store),
    }


def _masked(event: Event, config: Config) -> Event:
    diff = event.data.get("diff")
    if not isinstance(diff, str) or not diff:
        return event
    from lastgood.record import replace
    from lastgood.secrets.mask import Masker

    return replace(event, data={**event.data, "diff": Masker(config.secrets).diff(diff)})


def details(event: Event, *, config: Config, store: Store | None) -> dict[str, Any]:
    """Who, why, from → to, timings, budget, files changed and diff, as far as they are known."""
    data = event.data
    record = _deployment(event, store)
    # a deploy's own timings measure activation, not a restore: only rollbacks have those
    restore = record if record is not None and "rollback" in record.kind else None
    found: dict[str, Any] = {
        "from_version": data.get("from", record.from_version if record else None),
        "to_version": data.get("to", record.to_version if record else event.version),
        "actor": data.get("actor", record.actor if record else None),
        "reason": data.get("reason", record.reason if record else None),
        "deployment_kind": record.kind if record else None,
        "deployment_status": record.status if record else None,
        "time_to_active": data.get("time_to_active", restore.time_to_active if restore else None),
        "time_to_verified": data.get(
            "time_to_verified", restore.time_to_verified if restore else None
        ),
        "budget": data.get("budget", _budget(event, config)),
        "diff": _clip(data["diff"]) if isinstance(data.get("diff"), str) else None,
        "next": NEXT_STEPS.get(event.kind, "").format(env=event.env) if event.env else "",
        "severity": SEVERITY.get(event.kind, "info"),
        "extra": {k: v for k, v in data.items() if k not in SHOWN_KEYS and _plain(v) and _said(v)},
    }
    found["over_budget"] = _over(found["time_to_verified"], found["budget"])
    found["files"], found["more_files"] = _files(event, found, store)
    return found


def _deployment(event: Event, store: Store | None) -> Any:
    if event.deployment is None or store is None:
        return None
    try:
        return store.deployment(event.deployment)
    except LastgoodError:
        return None


def _budget(event: Event, config: Config) -> float | None:
    if event.env is None or event.env not in config.environments:
        return None
    return config.environments[event.env].budget


def _over(took: Any, budget: Any) -> bool | None:
    if not isinstance(took, int | float) or not isinstance(budget, int | float):
        return None
    return took > budget


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or (
        isinstance(value, list) and all(isinstance(item, str | int | float) for item in value)
    )


def _said(value: Any) -> bool:
    """Whether a value says anything: an empty list or text would print an empty line."""
    return value not in ("", [])


def _clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= DIFF_LINES:
        return text.rstrip("\n")
    rest = len(lines) - DIFF_LINES
    return "\n".join([*lines[:DIFF_LINES], f"… {rest} more lines"])


def _files(
    event: Event, found: dict[str, Any], store: Store | None
) -> tuple[list[dict[str, str]], int]:
    """Files that differ between the from and to versions, as (path, change, and lines added
    and removed when the emitter counted them), at most 20."""
    given = event.data.get("files_changed", event.data.get("files"))
    if isinstance(given, list) and all(isinstance(p, str) for p in given):
        rows = [{"path": path, "change": "changed"} for path in given]
    elif isinstance(given, list) and all(isinstance(p, dict) for p in given):
        rows = [
            _file_row(given_row) for given_row in given if isinstance(given_row.get("path"), str)
        ]
    elif _both_versions(found) and store is not None:
        try:
            before = store.manifest(found["from_version"])
            rows = _manifest_changes(before, store.manifest(found["to_version"]))
        except LastgoodError:
            rows = []
    else:
        rows = []
    return rows[:FILES_SHOWN], max(0, len(rows) - FILES_SHOWN)


def _file_row(given: dict[str, Any]) -> dict[str, str]:
    """``{"path", "change", "added", "removed"}`` as the templates show it: ``+3 -1``."""
    added, removed = given.get("added"), given.get("removed")
    counted = isinstance(added, int) and isinstance(removed, int)
    return {"path": given["path"], "change": str(given.get("change") or "changed"),
            "lines": f"+{added} -{removed}" if counted else ""}  # fmt: skip


def _both_versions(found: dict[str, Any]) -> bool:
    return isinstance(found["from_version"], int) and isinstance(found["to_version"], int)


def _manifest_changes(before: dict[str, str], after: dict[str, str]) -> list[dict[str, str]]:
    rows = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            rows.append({"path": path, "change": "removed"})
        elif path not in before:
            rows.append({"path": path, "change": "added"})
        elif before[path] != after[path]:
            rows.append({"path": path, "change": "modified"})
    return rows


def when(at: float) -> str:
    """``2025-03-14 09:26:53 UTC``: one unambiguous clock for every reader of an alert."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
