"""application workflow: events, watch list, review deadlines, product approval limits, household look-up

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("status NOT IN ('rejected', 'withdrawn', 'disbursed')")


def upgrade() -> None:
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.add_column(sa.Column("needs_collateral", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("auto_approval_limit", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("loan_applications") as batch_op:
        batch_op.add_column(sa.Column("guarantor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("review_deadline", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("risk_hits", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("loan_account", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            "fk_loan_applications_guarantor_id_customers", "customers", ["guarantor_id"], ["id"]
        )
        batch_op.create_index("ix_loan_applications_status_deadline", ["status", "review_deadline"])
        batch_op.create_index(
            "uq_loan_applications_live",
            ["customer_id", "product_code"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    op.create_table(
        "application_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["loan_applications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_application_events_application_id", "application_events", ["application_id"])
    # Households are looked up from either side (spouse_of, the risk rules).
    op.create_index("ix_family_members_member_id", "family_members", ["member_id"])
    op.create_table(
        "watch_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("id_masked", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("watch_list")
    op.drop_index("ix_family_members_member_id", "family_members")
    op.drop_index("ix_application_events_application_id", "application_events")
    op.drop_table("application_events")
    with op.batch_alter_table("loan_applications") as batch_op:
        batch_op.drop_index("uq_loan_applications_live", sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.drop_index("ix_loan_applications_status_deadline")
        batch_op.drop_constraint("fk_loan_applications_guarantor_id_customers", type_="foreignkey")
        for column in ("loan_account", "risk_hits", "escalated_at", "review_deadline", "review_mode", "guarantor_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.drop_column("auto_approval_limit")
        batch_op.drop_column("needs_collateral")
