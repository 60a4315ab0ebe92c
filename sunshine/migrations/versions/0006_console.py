"""officer console: WeCom notices of hand-offs, queue indexes

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officer_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hand_off_id", sa.Integer(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["hand_off_id"], ["hand_offs.id"]),
        sa.ForeignKeyConstraint(["officer_id"], ["officers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hand_off_id", "officer_id", "kind"),
    )
    op.create_index("ix_officer_notices_hand_off_id", "officer_notices", ["hand_off_id"])
    op.create_index("ix_hand_offs_status_deadline", "hand_offs", ["status", "deadline"])
    op.create_index("ix_hand_offs_officer_status", "hand_offs", ["officer_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_hand_offs_officer_status", table_name="hand_offs")
    op.drop_index("ix_hand_offs_status_deadline", table_name="hand_offs")
    op.drop_index("ix_officer_notices_hand_off_id", table_name="officer_notices")
    op.drop_table("officer_notices")
