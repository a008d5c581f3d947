"""Detection: facts of indicator and sighting versions, their values, analysts' overrides.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _version_key() -> sa.Column:
    return sa.Column("object_pk", sa.BigInteger,
                     sa.ForeignKey("objects.pk", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "indicator_facts", _version_key(),
        sa.Column("valid_from", sa.BigInteger, nullable=False),
        sa.Column("valid_until", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("confidence", sa.SmallInteger, nullable=True),
        sa.Column("kinds", sa.String(300), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=True),
        sa.Column("warninglists", sa.Text, nullable=True),
    )
    op.create_table(
        "indicator_values", _version_key(),
        sa.Column("digest", sa.LargeBinary(16), primary_key=True),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_indicator_values_digest", "indicator_values", ["digest"])
    op.create_table(
        "sighting_facts", _version_key(),
        sa.Column("sighting_of_ref", sa.String(300), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=True),
        sa.Column("last_seen", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_sighting_facts_sighting_of_ref", "sighting_facts", ["sighting_of_ref"])
    op.create_table(
        "indicator_overrides",
        sa.Column("collection_id", sa.String(36),
                  sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("stix_id", sa.String(300), primary_key=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("indicator_overrides")
    op.drop_index("ix_sighting_facts_sighting_of_ref", "sighting_facts")
    op.drop_table("sighting_facts")
    op.drop_index("ix_indicator_values_digest", "indicator_values")
    op.drop_table("indicator_values")
    op.drop_table("indicator_facts")
