"""Federation: signature status and origin of each version, trusted keys, peers and their links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("signature", sa.SmallInteger, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("origin_peer", sa.BigInteger, nullable=True))
    op.create_table(
        "trusted_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("identity_id", sa.String(300), nullable=False, index=True),
        sa.Column("x", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("decided", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "peers",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("token_file", sa.Text, nullable=False),
        sa.Column("org_id", sa.BigInteger, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("local_org_id", sa.BigInteger, sa.ForeignKey("organisations.id"),
                  nullable=False),
        sa.Column("max_tlp", sa.SmallInteger, nullable=False),
        sa.Column("every_seconds", sa.Integer, nullable=False),
        sa.Column("identity_id", sa.String(300), nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "peer_links",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("peer_id", sa.BigInteger, sa.ForeignKey("peers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("remote_collection", sa.String(300), nullable=False),
        sa.Column("local_collection", sa.String(36),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=True),
        sa.Column("last_attempt", sa.BigInteger, nullable=True),
        sa.Column("last_success", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("errors_in_row", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_due", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("moved", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refused", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("peer_id", "direction", "remote_collection", "local_collection",
                            name="uq_peer_links"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "push_retries",
        sa.Column("link_id", sa.BigInteger, sa.ForeignKey("peer_links.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("stix_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_try", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("push_retries")
    op.drop_table("peer_links")
    op.drop_table("peers")
    op.drop_table("trusted_keys")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("origin_peer")
        batch.drop_column("signature")

