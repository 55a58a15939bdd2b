"""``report``: the status digest, what happened on each environment over a period, for people
who do not read ledgers.

:func:`build` only reads (the store's ledger, events and document versions, and what each target
says it serves); :func:`send` hands the rendered digest to the event stream as one ``digest``
event, which the notifier delivers through the routes. The CLI (``lastgood report``) and the
watcher's ``[watch] digest`` schedule both go through these two functions.

Records that belong to a drill (its broken variant's deploy and the rollback that undid it) are
the drill's, not changes, incidents or rollbacks: a rehearsal is not an incident.
"""

from __future__ import annotations

import time

from lastgood.errors import ConfigError, TargetError
from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.operations.status import outside_drills
from lastgood.project import Project
from lastgood.report import render, summary, title
from lastgood.report.digest import (
    Change,
    Digest,
    DocumentChange,
    DrillRun,
    EnvDigest,
    Incident,
    Restore,
)
from lastgood.rows import Deployment, DocumentVersion, EventRecord

DEFAULT_PERIOD = 7 * 86400.0
# deploy statuses that changed nothing live: not changes (drift repairs are counted as drift)
_NOT_CHANGES = {"unchanged", "repaired", "refused"}
_FAILED_DEPLOY = {"failed", "failed-restored"}
_ROLLBACK_KINDS = {"rollback", "auto-rollback", "offline-rollback"}


def build(
    project: Project, *, since: float, until: float | None = None, envs: list[str] | None = None
) -> Digest:
    """The digest of ``envs`` (default: every environment, in config order) from ``since`` to
    ``until`` (default: now). Reads only; an unknown environment is a ConfigError that lists
    the known ones."""
    now = time.time()
    end = now if until is None else until
    names = envs or list(project.config.environments)
    places = [Place(project, name) for name in names]  # every name checked before any work
    return Digest(
        since=since,
        until=end,
        generated_at=now,
        envs=[_env_digest(place, since, end) for place in places],
        documents=_documents(project.store.document_versions(limit=None, since=since), end),
    )


def _env_digest(place: Place, since: float, until: float) -> EnvDigest:
    env, settings, store = place.name, place.settings, place.store
    records = sorted(
        (r for r in store.deployments(env, since=since) if r.requested_at <= until),
        key=lambda record: (record.requested_at, record.id),
    )  # oldest first, by time: records written afterwards (offline rollbacks) fall in place
    windows = _drill_windows(records)
    ours = outside_drills(records)
    events = {
        kind: _events(place, kind, since, until, windows)
        for kind in ("health-failed", "restore-failed", "drift-detected", "drift-repaired")
    }
    drill_state = _drill_state(place)
    state = store.env_state(env)
    return EnvDigest(
        env=env,
        budget=settings.budget,
        protected=settings.protected,
        live_version=_live_version(place, state.live_version),
        last_good=state.last_good,
        changes=[_change(r, bool(settings.checks)) for r in ours if _is_change(r)],
        incidents=_incidents(ours, events["health-failed"], events["restore-failed"]),
        rollbacks=[_restore(r, settings.budget) for r in ours if r.is_rollback],
        drills=[_drill_run(r) for r in records if r.kind == "drill"],
        last_drill=drill_state[0],
        last_drill_age=drill_state[1],
        drill_overdue=drill_state[2],
        drift_detected=len(events["drift-detected"]),
        drift_repaired=len(events["drift-repaired"]),
        checked=bool(settings.checks),
    )


def _drill_windows(records: list[Deployment]) -> list[tuple[float, float]]:
    """When each drill ran: its deploy and rollback happened inside this window."""
    return [(r.requested_at, r.finished_at or r.requested_at) for r in records if r.kind == "drill"]


def _events(
    place: Place, kind: str, since: float, until: float, windows: list[tuple[float, float]]
) -> list[EventRecord]:
    found = place.store.events(place.name, limit=None, since=since, kind=kind)
    return sorted(
        (e for e in found if e.at <= until and not any(a <= e.at <= b for a, b in windows)),
        key=lambda event: event.at,
    )


def _is_change(record: Deployment) -> bool:
    # a deploy whose switch failed before anything went live is an incident, not a change
    never_live = record.status == "failed" and record.activated_at is None
    return record.kind == "deploy" and record.status not in _NOT_CHANGES and not never_live


def _change(record: Deployment, checked: bool) -> Change:
    return Change(
        checked=checked,
        id=record.id,
        at=record.requested_at,
        version=record.to_version,
        from_version=record.from_version,
        actor=record.actor,
        reason=record.reason,
        result=record.status,
    )


def _incidents(
    records: list[Deployment], health: list[EventRecord], restores: list[EventRecord]
) -> list[Incident]:
    """Failed deploys, failed health rounds and failed restores, oldest first. A restore-failed
    event that only says a failed deploy had nothing to go back to is part of that incident."""
    failed = [r for r in records if r.kind == "deploy" and r.status in _FAILED_DEPLOY]
    failed_ids = {r.id for r in failed}
    found = [
        Incident("deploy-failed", r.failed_at or r.requested_at, r.to_version,
                 _failure_message(r))
        for r in failed
    ]  # fmt: skip
    for event in health + restores:
        if event.kind == "restore-failed" and event.deployment in failed_ids:
            continue
        found.append(Incident(event.kind, event.at, event.version, event.message))
    return sorted(found, key=lambda incident: incident.at)


def _failure_message(record: Deployment) -> str:
    if record.activated_at is None:  # its switch failed: the detail's first clause says how
        return f"v{record.to_version} could not be put live: {record.detail.split('; ', 1)[0]}"
    # the detail reads "'check' on env (the check's own output)": the output is for engineers
    what = f"v{record.to_version} failed {record.detail.split(' (', 1)[0]}".strip()
    if record.status == "failed-restored":
        return f"{what}; the last known good version was restored"
    return f"{what}; it was NOT restored"


def _restore(record: Deployment, budget: float) -> Restore:
    """A rollback and whether it missed the budget: as ``status`` counts it, a restore that was
    never verified is a miss, and a verified one is judged by its time to verified."""
    took = record.time_to_verified
    if took is None and record.status == "succeeded":
        took = record.time_to_active  # an offline rollback verified by nobody: its switch time
    over = record.status != "succeeded" or took is None or took > budget
    return Restore(
        id=record.id,
        kind=record.kind,
        at=record.trigger_at or record.requested_at,
        from_version=record.from_version,
        to_version=record.to_version,
        actor=record.actor,
        reason=record.reason,
        status=record.status,
        time_to_active=record.time_to_active,
        time_to_verified=record.time_to_verified,
        over_budget=over,
    )


def _drill_run(record: Deployment) -> DrillRun:
    import json

    try:
        figures = json.loads(record.detail or "{}")
    except ValueError:
        figures = {}
    return DrillRun(
        id=record.id,
        at=record.requested_at,
        status=record.status,
        time_to_restore=figures.get("time_to_restore"),
        time_to_verified=figures.get("time_to_verified"),
        summary=str(figures.get("summary", "")),
    )


def _drill_state(place: Place) -> tuple[DrillRun | None, float | None, str | None]:
    """The last drill (whenever it was), its age, and the overdue warning ``status`` gives,
    computed by status's own rule so the two never disagree."""
    from lastgood.operations.status import drill_standing

    standing = drill_standing(place.settings, place.store.deployments(place.name, limit=200))
    if standing.last is None:
        return None, None, standing.overdue
    return _drill_run(standing.last), standing.age, standing.overdue


def _live_version(place: Place, ledger: int | None) -> int | None:
    """What the target says it serves (a read); the ledger's belief when it cannot answer."""
    try:
        live = place.target.live()
    except TargetError:
        return ledger
    return live.version if live else None


def _documents(versions: list[DocumentVersion], until: float) -> list[DocumentChange]:
    """Documents that changed in the period. A document's first reading (version 1) is when
    tracking began, not a change: it is silent in the watcher and not news here."""
    grouped: dict[str, list[DocumentVersion]] = {}
    for version in reversed(versions):
        if version.at <= until and version.version > 1:
            grouped.setdefault(version.name, []).append(version)
    return [
        DocumentChange(
            name=name,
            versions=[v.version for v in found],
            added=sum(v.added for v in found),
            removed=sum(v.removed for v in found),
            last_at=found[-1].at,
        )
        for name, found in sorted(grouped.items())
    ]


def send(project: Project, digest: Digest) -> None:
    """Emit ``digest`` as one ``digest`` event carrying every rendering, so each route can send
    its own format. Returns once emitted: delivery happens in the notifier, which the project
    drains when it closes. Writes nothing itself (digests are not kept in the event table)."""
    names = [env.env for env in digest.envs]
    project.emit(
        Event(
            EventKind.DIGEST,
            message=summary(digest),
            env=names[0] if len(names) == 1 else None,
            data={
                "title": title(digest),
                "text": render(digest, "text"),
                "markdown": render(digest, "markdown"),
                "html": render(digest, "html"),
                "since": digest.since,
                "until": digest.until,
            },
            key=f"digest:{','.join(names)}:{digest.since:.0f}-{digest.until:.0f}",
        )
    )


def digest_routes(project: Project, digest: Digest) -> list[str]:
    """Names of the routes that take this digest: those listing ``digest`` or ``*`` in their
    events, or without ``events`` (the default set includes digests), and whose ``envs`` let
    its environment through. ConfigError with a hint when there are none."""
    routes = project.config.notify.routes
    names = [env.env for env in digest.envs]
    env = names[0] if len(names) == 1 else None
    chosen = [route.name for route in routes if _takes_digest(route.events, route.envs, env)]
    if chosen:
        return chosen
    if not routes:
        raise ConfigError(
            f"no [[notify.route]] in {project.config.path}: there is nowhere to send the digest",
            hint='add a route, e.g. [[notify.route]] to = "mailto://…" events = ["digest"]; '
            "see docs/reports.md",
        )
    raise ConfigError(
        f"no [[notify.route]] in {project.config.path} sends 'digest' events"
        + (f" for {env}" if env else ""),
        hint='add "digest" to a route\'s events, e.g. events = ["digest"]; see docs/reports.md',
    )


def _takes_digest(events: tuple[str, ...], envs: tuple[str, ...], env: str | None) -> bool:
    kinds = not events or bool({"digest", "*"} & set(events))
    return kinds and (env is None or not envs or env in envs)
