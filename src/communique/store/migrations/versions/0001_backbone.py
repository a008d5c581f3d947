"""The backbone: accounts, API roots, collections, objects, status resources.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "node_settings",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "organisations",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("org_id", sa.BigInteger, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.BigInteger, nullable=True),
        sa.Column("last_used", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "api_roots",
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_root", sa.String(64), sa.ForeignKey("api_roots.slug"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("alias", sa.String(100), nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("last_added", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("api_root", "alias", name="uq_collections_alias"),
    )
    op.create_table(
        "grants",
        sa.Column("collection_id", sa.String(36),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("org_id", sa.BigInteger, sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("can_read", sa.Boolean, nullable=False),
        sa.Column("can_write", sa.Boolean, nullable=False),
    )
    op.create_table(
        "objects",
        sa.Column("pk", BigKey, primary_key=True, autoincrement=True),
        sa.Column("collection_id", sa.String(36),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stix_id", sa.String(300), nullable=False),
        sa.Column("type", sa.String(250), nullable=False),
        sa.Column("spec_version", sa.String(10), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("date_added", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("is_first", sa.Boolean, nullable=False),
        sa.Column("is_last", sa.Boolean, nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("collection_id", "date_added", name="uq_objects_date_added"),
        sa.UniqueConstraint("collection_id", "stix_id", "version", name="uq_objects_version"),
    )
    op.create_index("ix_objects_last", "objects", ["collection_id", "date_added"],
                    sqlite_where=sa.text("is_last = 1"), postgresql_where=sa.text("is_last"))
    op.create_index("ix_objects_type", "objects", ["collection_id", "type", "date_added"])
    op.create_table(
        "statuses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_root", sa.String(64), nullable=False),
        sa.Column("org_id", sa.BigInteger, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_statuses_created", "statuses", ["created"])


def downgrade() -> None:
    for table in ("statuses", "objects", "grants", "collections", "api_roots", "api_tokens",
                  "users", "organisations", "node_settings"):
        op.drop_table(table)
