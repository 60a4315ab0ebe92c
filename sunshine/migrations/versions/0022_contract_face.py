"""contract face check: a loan contract's face attempts and renewals; face reviews of a contract's signing

Revision ID: 0022
Revises: 0023 (0017 -> 0020 -> 0019 -> 0018 -> 0023)
Create Date: 2026-12-06 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loan_contracts") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("face_verified_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("renewals", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("face_reviews") as batch_op:
        batch_op.alter_column("authorization_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("contract_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_face_reviews_contract_id", "loan_contracts", ["contract_id"], ["id"])
        batch_op.create_index("ix_face_reviews_contract_id", ["contract_id"])


def downgrade() -> None:
    with op.batch_alter_table("face_reviews") as batch_op:
        batch_op.drop_index("ix_face_reviews_contract_id")
        batch_op.drop_constraint("fk_face_reviews_contract_id", type_="foreignkey")
        batch_op.drop_column("contract_id")
        batch_op.alter_column("authorization_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("loan_contracts") as batch_op:
        batch_op.drop_column("renewals")
        batch_op.drop_column("face_verified_at")
        batch_op.drop_column("attempts")
