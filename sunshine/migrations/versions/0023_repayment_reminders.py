"""repayment_reminders: each repayment notice sent, once per instalment and kind

Revision ID: 0023
Revises: 0018
Create Date: 2026-12-06 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repayment_reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("loan_id", sa.Integer(), sa.ForeignKey("loans.id"), nullable=False),
        sa.Column("instalment_id", sa.Integer(), sa.ForeignKey("loan_instalments.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("instalment_id", "kind"),
    )
    op.create_index("ix_repayment_reminders_loan_id", "repayment_reminders", ["loan_id"])


def downgrade() -> None:
    op.drop_index("ix_repayment_reminders_loan_id", table_name="repayment_reminders")
    op.drop_table("repayment_reminders")
