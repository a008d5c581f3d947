"""TLP: each object's own level and producer, RED recipients, collection defaults.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("default_tlp", sa.SmallInteger, nullable=False,
                                   server_default="2"))
        batch.add_column(sa.Column("public", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("tlp", sa.SmallInteger, nullable=True))
        batch.add_column(sa.Column("producer_org", sa.BigInteger, nullable=True))
    op.create_table(
        "object_recipients",
        sa.Column("collection_id", sa.String(36), primary_key=True),
        sa.Column("stix_id", sa.String(300), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("principal", sa.String(330), primary_key=True),
        sa.ForeignKeyConstraint(["collection_id", "stix_id", "version"],
                                ["objects.collection_id", "objects.stix_id", "objects.version"],
                                name="fk_object_recipients_object", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("object_recipients")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("producer_org")
        batch.drop_column("tlp")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("public")
        batch.drop_column("default_tlp")
