"""loans: products' repayment method, disbursements, loans and their instalments

Revision ID: 0018
Revises: 0019
Create Date: 2026-12-06 06:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.add_column(
            sa.Column("repayment_method", sa.String(length=32), nullable=False, server_default="equal_instalments")
        )
    op.create_table(
        "disbursements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("application_id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("account_no", sa.String(length=32), nullable=False),
        sa.Column("settlement_account", sa.String(length=32), nullable=False),
        sa.Column("principal_fen", sa.Integer(), nullable=False),
        sa.Column("annual_rate_bp", sa.Integer(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("repayment_method", sa.String(length=32), nullable=False),
        sa.Column("disbursed_at", sa.DateTime(), nullable=False),
        sa.Column("disbursed_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("principal_outstanding_fen", sa.Integer(), nullable=False),
        sa.Column("overdue_fen", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("application_id"),
        sa.UniqueConstraint("account_no"),
    )
    op.create_index("ix_loans_customer_id", "loans", ["customer_id"])
    op.create_table(
        "loan_instalments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("loan_id", sa.Integer(), sa.ForeignKey("loans.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("principal_fen", sa.Integer(), nullable=False),
        sa.Column("interest_fen", sa.Integer(), nullable=False),
        sa.Column("paid_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.UniqueConstraint("loan_id", "number"),
    )
    op.create_index("ix_loan_instalments_due", "loan_instalments", ["status", "due_date"])


def downgrade() -> None:
    op.drop_index("ix_loan_instalments_due", table_name="loan_instalments")
    op.drop_table("loan_instalments")
    op.drop_index("ix_loans_customer_id", table_name="loans")
    op.drop_table("loans")
    op.drop_table("disbursements")
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.drop_column("repayment_method")
