"""The first schema: versions, content-addressed blobs, environments, the ledger and leases.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _content()
    _environments()
    _ledger()
    _events_and_leases()


def _content() -> None:
    """Versions and the file contents they hold."""
    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("content_hash", sa.String(64), nullable=False, index=True),
        sa.Column("parent", sa.Integer, nullable=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("total_size", sa.Integer, nullable=False),
    )
    op.create_table(
        "version_files",
        sa.Column("version", sa.Integer, sa.ForeignKey("versions.number"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("blob", sa.String(64), sa.ForeignKey("blobs.hash"), nullable=False),
    )


def _environments() -> None:
    """What the ledger believes about each environment, and its verdicts."""
    op.create_table(
        "environments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("live_version", sa.Integer, nullable=True),
        sa.Column("last_good", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "verdicts",
        sa.Column("env", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("deployment", sa.Integer, nullable=True),
    )


def _ledger() -> None:
    """Deploy and rollback records, and the check results they gathered."""
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("parent", sa.Integer, nullable=True),
        sa.Column("trigger_at", sa.Float, nullable=True),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("activated_at", sa.Float, nullable=True),
        sa.Column("verified_at", sa.Float, nullable=True),
        sa.Column("failed_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_deployments_env_id", "deployments", ["env", "id"])
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.Integer, nullable=True, index=True),
        sa.Column("env", sa.String(100), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def _events_and_leases() -> None:
    """The event stream, and one lease per environment."""
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("env", sa.String(100), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("deployment", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_events_env_id", "events", ["env", "id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pid_start", sa.String(40), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "events",
        "check_results",
        "deployments",
        "verdicts",
        "environments",
        "version_files",
        "versions",
        "blobs",
    ):
        op.drop_table(table)
