"""WeChat followers, service stations, conversation messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("village", sa.String(length=64), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["officer_id"], ["officers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "wechat_followers",
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("subscribed_at", sa.DateTime(), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["station_id"], ["service_stations.id"]),
        sa.PrimaryKeyConstraint("openid"),
    )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("hand_off_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("wechat_msg_key", sa.String(length=96), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["hand_off_id"], ["hand_offs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("wechat_msg_key"),
    )
    op.create_index("ix_conversation_messages_openid", "conversation_messages", ["openid"])
    op.create_index("ix_conversation_messages_hand_off_id", "conversation_messages", ["hand_off_id"])
    # Followers of the account now live in wechat_followers, customers or not.
    op.execute(
        "INSERT INTO wechat_followers (openid, subscribed) "
        "SELECT wechat_openid, subscribed FROM customers WHERE wechat_openid IS NOT NULL"
    )
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("subscribed")


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("subscribed", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute(
        "UPDATE customers SET subscribed = COALESCE((SELECT f.subscribed FROM wechat_followers f "
        "WHERE f.openid = customers.wechat_openid), TRUE)"
    )
    op.drop_index("ix_conversation_messages_hand_off_id", "conversation_messages")
    op.drop_index("ix_conversation_messages_openid", "conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_table("wechat_followers")
    op.drop_table("service_stations")
