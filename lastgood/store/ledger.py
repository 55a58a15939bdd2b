"""The ledger in the store: environment state, verdicts, deploy and rollback records, check
results, the event stream and notification deliveries."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from lastgood.record import replace
from lastgood.rows import CheckRecord, Delivery, Deployment, EnvState, EventRecord
from lastgood.store import common, statements
from lastgood.store.audit import Auditor, AuditStore
from lastgood.store.base import select_records
from lastgood.store.chain import CHAINED_EVENTS
from lastgood.store.connection import Session

ENVIRONMENT_COLUMNS = statements.columns_of(EnvState)
DEPLOYMENT_COLUMNS = statements.columns_of(Deployment)
CHECK_COLUMNS = statements.columns_of(CheckRecord)
EVENT_COLUMNS = statements.columns_of(EventRecord)
DELIVERY_COLUMNS = statements.columns_of(Delivery)
VERDICT_COLUMNS = ("env", "version", "verdict", "at", "deployment")
RUNNING = "running"


class LedgerStore(AuditStore):
    """What happened to every environment, and what the ledger believes about it now."""

    # ---- environments and verdicts ----------------------------------------------------------

    def env_state(self, env: str) -> EnvState:
        """What the ledger believes about ``env`` (all None when never deployed)."""
        rows = self._records("read an environment", EnvState, "environments", {"name": env})
        return rows[0] if rows else EnvState(env, None, None, None)

    def set_env(self, env: str, **values: int | None) -> None:
        """Set ``live_version`` and/or ``last_good`` of ``env``, creating its row (writes)."""
        changes: dict[str, Any] = {**values, "updated_at": time.time()}
        with self.db.transaction("update an environment") as session:
            sql, params = statements.update(
                "environments", ENVIRONMENT_COLUMNS, changes, {"name": env}
            )
            if not session.run(sql, params):
                row = {"name": env, **changes}
                session.run(statements.insert("environments", row), row)

    def announce_switch(self, env: str) -> None:
        """Tell every server on this store that what ``env``'s target serves changed outside a
        recorded switch (a rollout step, its end): ``NOTIFY`` on PostgreSQL, nothing where the
        database has no channel (servers poll). Writes nothing."""
        with self.db.transaction("announce a switch") as session:
            self.db.announce_switch(session, env)

    def verdicts(self, env: str) -> dict[int, str]:
        """Version → good, bad or withdrawn in ``env``."""
        sql = "SELECT version, verdict FROM verdicts WHERE env = :env"
        with self.db.transaction("read verdicts") as session:
            return {version: verdict for version, verdict in session.rows(sql, {"env": env})}

    def verdict_times(self, env: str) -> dict[int, tuple[str, float]]:
        """Version → (verdict, when) in ``env``."""
        sql = "SELECT version, verdict, at FROM verdicts WHERE env = :env"
        with self.db.transaction("read verdicts") as session:
            return {
                version: (verdict, at) for version, verdict, at in session.rows(sql, {"env": env})
            }

    def passed_bake(self, env: str, version: int) -> bool:
        """Whether a deploy of ``version`` on ``env`` ever passed its bake (a succeeded
        ``deploy`` record): what a verdict of ``withdrawn`` no longer tells. Reads."""
        sql = ("SELECT 1 FROM deployments WHERE env = :env AND to_version = :version "
               "AND kind = 'deploy' AND status = 'succeeded'")  # fmt: skip
        with self.db.transaction("read the ledger") as session:
            return bool(session.rows(sql + " LIMIT 1", {"env": env, "version": version}))

    def set_verdict(
        self, env: str, version: int, verdict: str, *, deployment: int | None = None
    ) -> None:
        """Record a verdict, replacing any earlier one for the same version (writes)."""
        row = {"env": env, "version": version, "verdict": verdict, "at": time.time(),
               "deployment": deployment}  # fmt: skip
        with self.db.transaction("record a verdict") as session:
            session.run(statements.upsert("verdicts", VERDICT_COLUMNS, ("env", "version")), row)

    # ---- the ledger -------------------------------------------------------------------------

    def begin_deployment(self, **values: Any) -> Deployment:
        """Open a ledger record, status ``running`` unless given (writes). Its versions must
        be in the store when it opens ``running`` (NotFoundError otherwise): from then on a prune
        leaves them alone. A record of something already done (an offline rollback found
        later) is kept as it happened."""
        row = common.deployment_row(values)
        names = statements.checked("deployments", DEPLOYMENT_COLUMNS, row)
        with self._audited("open a ledger record") as audit:
            session = audit.session
            self.db.lock_history(session, exclusive=False)  # a prune sees this record, or ran
            running = row["status"] == "running"  # before it: then say the version went
            for end in ("from_version", "to_version") if running else ():
                number = row.get(end)
                if (
                    number is not None
                    and session.one("SELECT 1 FROM versions WHERE number = :n", {"n": number})
                    is None
                ):
                    newest = session.value("SELECT max(number) FROM versions")
                    pruned = newest is not None and number < newest
                    raise common.version_not_found(int(number), pruned=pruned)
            new_id = session.value(statements.insert("deployments", names, returning="id"), row)
            record = _deployment(session, int(new_id))
            _chain(audit, "deployment-opened", record, record.actor)
        return record

    def update_deployment(self, deployment_id: int, *, by: str, **values: Any) -> Deployment:
        """Change fields of a ledger record, chained as ``by``'s (who or what made this change:
        the person rolling back, the token on the server, the watcher; not necessarily the
        record's actor, who opened it); returns it as it now stands (writes).

        Setting ``activated_at`` also announces the switch to every server on the store where
        the database can (PostgreSQL ``NOTIFY``, delivered when this transaction commits; see
        :mod:`lastgood.store.switches`)."""
        with self._audited("update a ledger record") as audit:
            session = audit.session
            if values:
                session.run(*statements.update(
                    "deployments", DEPLOYMENT_COLUMNS, values, {"id": deployment_id}
                ))  # fmt: skip
            record = _deployment(session, deployment_id)
            if values:
                _chain(audit, "deployment-updated", record, by)
            if values.get("activated_at") is not None:
                self.db.announce_switch(session, record.env)
        return record

    def deployment(self, deployment_id: int) -> Deployment:
        """One ledger record; NotFoundError when there is none."""
        with self.db.transaction("read a ledger record") as session:
            return _deployment(session, deployment_id)

    def deployments(
        self,
        env: str | None = None,
        *,
        limit: int | None = None,
        status: str | None = None,
        since: float | None = None,
    ) -> list[Deployment]:
        """Ledger records newest first, optionally for one environment or status, or only
        those requested at or after ``since`` (epoch seconds)."""
        return self._records("read the ledger", Deployment, "deployments",
                             {"env": env, "status": status}, order="id DESC", limit=limit,
                             since=("requested_at", since))  # fmt: skip

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        """Keep check results (writes; nothing happens for none)."""
        rows = [statements.row_of(record, CHECK_COLUMNS) for record in records]
        if rows:
            with self.db.transaction("record check results") as session:
                session.run_many(statements.insert("check_results", CHECK_COLUMNS), rows)

    def check_records(
        self, *, deployment: int | None = None, env: str | None = None, limit: int = 200
    ) -> list[CheckRecord]:
        """Check results newest first."""
        rows = self._records("read check results", CheckRecord, "check_results",
                             {"deployment": deployment, "env": env}, order="id DESC",
                             limit=limit)  # fmt: skip
        return [replace(row, ok=bool(row.ok)) for row in rows]

    def record_event(
        self,
        kind: str,
        message: str,
        *,
        env: str | None = None,
        version: int | None = None,
        deployment: int | None = None,
        data: Mapping[str, Any] | None = None,
        at: float | None = None,
        actor: str = "",
    ) -> None:
        """Append one event to the ledger's event stream (writes); an override or a loss of
        history (:data:`~lastgood.store.chain.CHAINED_EVENTS`) is chained too, as ``actor``'s."""
        row = common.event_row(
            kind, message, env=env, version=version, deployment=deployment, data=data, at=at
        )
        with self._audited("record an event") as audit:
            audit.session.run(statements.insert("events", row), row)
            if kind in CHAINED_EVENTS:
                audit.append(f"event-{kind}", f"env:{env}" if env else "store", actor,
                             row, env=env)  # fmt: skip

    def events(
        self,
        env: str | None = None,
        *,
        limit: int | None = 100,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[EventRecord]:
        """Events newest first, optionally of one kind or only those at or after ``since``."""
        return self._records("read events", EventRecord, "events", {"env": env, "kind": kind},
                             order="id DESC", limit=limit, since=("at", since))  # fmt: skip

    # ---- notification delivery attempts -----------------------------------------------------

    def record_delivery(self, **values: Any) -> Delivery:
        """Keep one attempt: route, destination (masked), event, env, key, attempt, status,
        detail; ``at`` defaults to now (writes)."""
        row = common.delivery_row(values)
        with self.db.transaction("record a delivery") as session:
            new_id = session.value(statements.insert("deliveries", row, returning="id"), row)
        return Delivery(**{**row, "id": int(new_id)})

    def deliveries(
        self,
        *,
        limit: int | None = 100,
        key: str | None = None,
        route: str | None = None,
        status: str | None = None,
    ) -> list[Delivery]:
        """Delivery attempts newest first, optionally for one dedupe key, route or status."""
        where = {"key": key, "route": route, "status": status}
        return self._records(
            "read deliveries", Delivery, "deliveries", where, order="id DESC", limit=limit
        )


def _deployment(session: Session, deployment_id: int) -> Deployment:
    rows = select_records(session, Deployment, "deployments", {"id": deployment_id})
    if not rows:
        raise common.deployment_not_found(deployment_id)
    return rows[0]


def _chain(audit: Auditor, kind: str, record: Deployment, actor: str) -> None:
    """Chain a ledger record as it now stands, as ``actor``'s.

    The head goes to the environment's target only once the record is settled (no longer
    ``running``): a rollback then writes that file once, after it has restored and verified,
    instead of on each of its three ledger writes. A head a little older is as good a witness.
    """
    audit.append(
        kind,
        f"deployment:{record.id}",
        actor,
        statements.row_of(record, DEPLOYMENT_COLUMNS),
        env=record.env,
        witness=record.status != RUNNING,
    )
