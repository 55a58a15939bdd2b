"""The audit chain: ``audit_log``, every ledger record, request, request entry, token change and
override event hash-chained (see lastgood/store/chain.py and docs/audit.md).

A store that already holds history starts its chain here: the first link (``chain-started``)
records the upgrade, how many rows existed before it (``rows_before``) and the newest key of
each chained table then (``last_before``); those rows are not chained, and ``audit verify``
leaves exactly them out when it holds the tables against the chain. A new, empty store starts
with an empty chain, so that ``store copy`` can fill it.

Revision ID: 0007
Revises: 0006
"""

import time

import sqlalchemy as sa
from alembic import op

from lastgood.record import as_dict
from lastgood.store import chain

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BEFORE = ("versions", "deployments", "change_requests", "request_entries", "api_tokens")
KEYS = {"deployments": "id", "change_requests": "number", "request_entries": "id",
        "api_tokens": "id", "events": "id"}  # fmt: skip
"""The chained tables' keys (events: those of the override kinds are chained)."""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    bind = op.get_bind()
    counts = {name: bind.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar() or 0
              for name in BEFORE}  # fmt: skip
    if any(counts.values()):
        last = {name: bind.execute(sa.text(f"SELECT max({key}) FROM {name}")).scalar()
                for name, key in KEYS.items()}  # fmt: skip
        _start_chain(bind, counts, {name: key for name, key in last.items() if key is not None})


def _start_chain(bind: sa.Connection, counts: dict[str, int], last: dict[str, int]) -> None:
    """Link 1: the upgrade itself, with what the store held before the chain began."""
    data = chain.canonical_json({"schema": revision, "rows_before": counts, "last_before": last})
    link = chain.new_link(None, 1, time.time(), "chain-started", "store", "schema-upgrade", data)
    bind.execute(
        sa.text("INSERT INTO audit_log (seq, at, kind, subject, actor, data, hash) "
                "VALUES (:seq, :at, :kind, :subject, :actor, :data, :hash)"),
        as_dict(link),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("audit_log")
