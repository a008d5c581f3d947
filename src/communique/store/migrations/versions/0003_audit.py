"""The audit log, and the head of its hash chain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", BigKey, primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("org", sa.String(200), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    # The chain's head, locked by every append so that entries are chained one at a time.
    op.execute(sa.text("INSERT INTO node_settings (name, value) VALUES "
                       "('audit.head', '0:" + "0" * 64 + "')"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM node_settings WHERE name = 'audit.head'"))
    op.drop_table("audit_log")
