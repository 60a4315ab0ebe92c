"""authorization identity: the SMS code of a party without a bound WeChat

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.add_column(sa.Column("sms_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sms_code_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sms_sends", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.drop_column("sms_sends")
        batch_op.drop_column("sms_code_expires_at")
        batch_op.drop_column("sms_code_hash")
