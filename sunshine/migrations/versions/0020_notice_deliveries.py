"""notice_deliveries (which channel carried each notice) and wxa_subscriptions (the mini-program's
accepted subscription templates)

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-06 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_notice_deliveries_openid", "notice_deliveries", ["openid"])
    op.create_index("ix_notice_deliveries_application_id", "notice_deliveries", ["application_id"])
    op.create_table(
        "wxa_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mp_openid", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("mp_openid", "template_id"),
    )


def downgrade() -> None:
    op.drop_table("wxa_subscriptions")
    op.drop_index("ix_notice_deliveries_application_id", table_name="notice_deliveries")
    op.drop_index("ix_notice_deliveries_openid", table_name="notice_deliveries")
    op.drop_table("notice_deliveries")
