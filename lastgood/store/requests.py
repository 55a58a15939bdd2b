"""Change requests and their timelines in the store (see :mod:`lastgood.operations.requests`).

A request row holds what is proposed and how it stands; its entries are append-only: who did
what to it, and to which content. Whether it is approved is worked out from the entries, so
an approval given to some content counts again whenever the request holds that content again.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from lastgood.errors import NotFoundError
from lastgood.rows import UNFINISHED_REQUESTS, ChangeRequest, RequestEntry
from lastgood.store import statements
from lastgood.store.audit import Auditor, AuditStore
from lastgood.store.base import select_records
from lastgood.store.connection import Session

REQUEST_COLUMNS = statements.columns_of(ChangeRequest)
ENTRY_COLUMNS = statements.columns_of(RequestEntry)


class RequestStore(AuditStore):
    """Change requests, numbered from 1, and their entries."""

    def open_request(self, entry: dict[str, Any], **values: Any) -> ChangeRequest:
        """Record a new request and its ``opened`` entry in one transaction (writes). The
        proposed version must exist: from now on a prune keeps it while the request is open."""
        now = time.time()
        row = {"created_at": now, "updated_at": now, "deployment": None, "detail": "",
               "apply_at": None, "emergency": False, **values}  # fmt: skip
        names = statements.checked("change_requests", REQUEST_COLUMNS, row)
        with self._audited("open a change request") as audit:
            session = audit.session
            self.db.lock_history(session, exclusive=False)  # a prune sees it, or ran before
            if session.one("SELECT 1 FROM versions WHERE number = :n", {"n": row["version"]}):
                sql = statements.insert("change_requests", names, returning="number")
                number = int(session.value(sql, row))
                request = _request(session, number)
                _chain(audit, "request-opened", request, request.requester)
                _add_entry(audit, request, now, entry)
                return request
        from lastgood.store import common

        raise common.version_not_found(int(row["version"]))

    def update_request(
        self,
        number: int,
        entry: dict[str, Any] | None = None,
        *,
        by: str,
        when_status: Collection[str] | None = None,
        when: dict[str, Any] | None = None,
        **values: Any,
    ) -> ChangeRequest:
        """Change fields of request ``number`` and add ``entry`` to its timeline, together
        (writes); returns the request as it now stands. The change is chained as ``by``'s (who
        made it: the person, the token on the server, ``lastgood`` for what it settles itself),
        with or without an entry. With ``when_status`` (and ``when``, columns and the values
        they must hold), only while the request's status is one of those (checked by the UPDATE
        itself, so two processes cannot both move it): otherwise nothing is written and the
        request is returned as another process left it."""
        return self._update(number, entry, when_status, when, values, by)[0]

    def add_request_entry(self, number: int, entry: dict[str, Any]) -> ChangeRequest:
        """Add one entry to the timeline of request ``number`` (writes)."""
        return self._update(number, entry, None, None, {}, _maker(entry))[0]

    def add_request_entry_when(
        self,
        number: int,
        entry: dict[str, Any],
        *,
        when_status: Collection[str],
        when: dict[str, Any],
    ) -> ChangeRequest | None:
        """Add ``entry`` only while request ``number`` is in one of ``when_status`` and its
        columns hold the values in ``when`` — checked by the same UPDATE that stamps it, so a
        change committed by another process after the caller looked cannot slip in between
        (writes). The request as it now stands, or None when nothing was written."""
        request, written = self._update(number, entry, when_status, when, {}, _maker(entry))
        return request if written else None

    def _update(
        self,
        number: int,
        entry: dict[str, Any] | None,
        when_status: Collection[str] | None,
        when: dict[str, Any] | None,
        values: dict[str, Any],
        by: str,
    ) -> tuple[ChangeRequest, bool]:
        """:meth:`update_request`, and whether anything was written."""
        now = time.time()
        with self._audited("update a change request") as audit:
            session = audit.session
            _request(session, number)
            sql, params = statements.update(
                "change_requests", REQUEST_COLUMNS, {**values, "updated_at": now},
                {"number": number},
            )  # fmt: skip
            if when_status is not None:
                states, among = statements.among("expected", list(when_status))
                sql, params = f"{sql} AND status IN {states}", {**params, **among}
            for column in statements.checked("change_requests", REQUEST_COLUMNS, when or {}):
                sql += f" AND {column} = :when_{column}"
                params[f"when_{column}"] = (when or {})[column]
            if not session.run(sql, params):
                return _request(session, number), False
            request = _request(session, number)
            if values:
                _chain(audit, "request-updated", request, by)
            if entry is not None:
                _add_entry(audit, request, now, entry)
        return request, True

    def change_request(self, number: int) -> ChangeRequest:
        """One request; NotFoundError when there is none."""
        with self.db.transaction("read a change request") as session:
            return _request(session, number)

    def change_requests(
        self, env: str | None = None, *, status: str | None = None, limit: int | None = 100
    ) -> list[ChangeRequest]:
        """Requests newest first, of one environment or all, in one state or any."""
        where = {"env": env, "status": status}
        return self._records("read change requests", ChangeRequest, "change_requests", where,
                             order="number DESC", limit=limit)  # fmt: skip

    def request_entries(self, number: int) -> list[RequestEntry]:
        """The timeline of request ``number``, oldest first."""
        return self._records("read a request's timeline", RequestEntry, "request_entries",
                             {"request": number}, order="id")  # fmt: skip

    def requested_versions(self) -> set[int]:
        """Versions named by a request that may still go live (prune keeps them)."""
        states, params = statements.among("status", UNFINISHED_REQUESTS)
        sql = f"SELECT version FROM change_requests WHERE status IN {states}"
        with self.db.transaction("read requested versions") as session:
            rows = session.rows(sql, params)
        return {int(n) for (n,) in rows}


def _request(session: Session, number: int) -> ChangeRequest:
    found = select_records(session, ChangeRequest, "change_requests", {"number": number})
    if not found:
        raise NotFoundError(
            f"no change request #{number}",
            hint="'lastgood request list' shows the requests there are",
        )
    return found[0]


def _add_entry(audit: Auditor, request: ChangeRequest, at: float, entry: dict[str, Any]) -> None:
    """Add one entry to a request's timeline, and chain it (an approval is one of these)."""
    row = {"request": request.number, "at": at, "comment": "", "via": "cli", **entry}
    names = statements.checked("request_entries", ENTRY_COLUMNS, row)
    sql = statements.insert("request_entries", names, returning="id")
    written = {"id": int(audit.session.value(sql, row)), **row}
    audit.append("request-entry", f"request:{request.number}", _maker(row), written,
                 env=request.env)  # fmt: skip


def _maker(entry: dict[str, Any]) -> str:
    """Who made a timeline entry: its actor."""
    return str(entry.get("actor", ""))


def _chain(audit: Auditor, kind: str, request: ChangeRequest, actor: str) -> None:
    """Chain a request as it now stands, for its environment."""
    audit.append(
        kind,
        f"request:{request.number}",
        actor,
        statements.row_of(request, REQUEST_COLUMNS),
        env=request.env,
    )
