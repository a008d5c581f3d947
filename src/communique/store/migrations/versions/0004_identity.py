"""Identity: passwords, TOTP, recovery codes, token scopes, web sessions, sign-in failures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text, nullable=True))
        batch.add_column(sa.Column("mfa_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("mfa_last_step", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("failed_signins", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.BigInteger, nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(10), nullable=False,
                                   server_default="write"))
    op.create_table(
        "recovery_codes",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False,
                  index=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("used", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False,
                  index=True),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("pending_secret", sa.String(64), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signin_failures",
        sa.Column("id", BigKey, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_signin_failures_address", "signin_failures", ["address", "at"])


def downgrade() -> None:
    op.drop_table("signin_failures")
    op.drop_table("web_sessions")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("users") as batch:
        for column in ("locked_until", "failed_signins", "mfa_last_step", "mfa_secret",
                       "password_hash"):
            batch.drop_column(column)
