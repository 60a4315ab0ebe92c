"""one open hand-off per openid

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 23:08:10.527225
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hand_offs", schema=None) as batch_op:
        batch_op.create_index(
            "uq_hand_offs_open_openid",
            ["openid"],
            unique=True,
            sqlite_where=sa.text("status != 'closed'"),
            postgresql_where=sa.text("status != 'closed'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("hand_offs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_hand_offs_open_openid",
            sqlite_where=sa.text("status != 'closed'"),
            postgresql_where=sa.text("status != 'closed'"),
        )
