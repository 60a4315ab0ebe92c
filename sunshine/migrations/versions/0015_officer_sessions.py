"""officer sessions, first passwords, four-eyes approvals

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-06 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Officers already there must choose their own password at their next login.
    with op.batch_alter_table("officers") as batch_op:
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("password_changed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "officer_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["officer_id"], ["officers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_officer_sessions_officer_id", "officer_sessions", ["officer_id"])
    # Until products.yml is synchronised, every officer approval needs a second one (the safe side).
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.add_column(sa.Column("second_approval_above", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("loan_applications") as batch_op:
        batch_op.add_column(sa.Column("first_approved_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_approved_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key("fk_loan_applications_first_approved_by", "officers", ["first_approved_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("loan_applications") as batch_op:
        batch_op.drop_constraint("fk_loan_applications_first_approved_by", type_="foreignkey")
        batch_op.drop_column("first_approved_at")
        batch_op.drop_column("first_approved_by")
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.drop_column("second_approval_above")
    op.drop_index("ix_officer_sessions_officer_id", table_name="officer_sessions")
    op.drop_table("officer_sessions")
    with op.batch_alter_table("officers") as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("must_change_password")
