"""authorization step session: the later steps bound to the session that passed identity

Revision ID: 0009
Revises: 0010 (after main's 0007 -> 0015 -> 0010)
Create Date: 2026-12-06 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.add_column(sa.Column("step_session_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.drop_column("step_session_hash")
