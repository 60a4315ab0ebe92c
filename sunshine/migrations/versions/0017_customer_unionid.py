"""customers: the mini-program openid and the UnionID that links it to the Official Account's

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 06:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("mp_openid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("unionid", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_customers_mp_openid", ["mp_openid"])
        batch_op.create_unique_constraint("uq_customers_unionid", ["unionid"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_constraint("uq_customers_unionid", type_="unique")
        batch_op.drop_constraint("uq_customers_mp_openid", type_="unique")
        batch_op.drop_column("unionid")
        batch_op.drop_column("mp_openid")
