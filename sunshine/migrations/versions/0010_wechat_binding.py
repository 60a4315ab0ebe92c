"""WeChat binding by a code texted to the phone on file; atomic event counters

Revision ID: 0010
Revises: 0015
Create Date: 2026-12-06 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counters",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_ends", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "wechat_bind_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("id_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("wrong_codes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wechat_bind_requests_openid", "wechat_bind_requests", ["openid"])


def downgrade() -> None:
    op.drop_index("ix_wechat_bind_requests_openid", table_name="wechat_bind_requests")
    op.drop_table("wechat_bind_requests")
    op.drop_table("event_counters")
