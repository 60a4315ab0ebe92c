"""report views: every opening of a party's full credit report in the console, and every refusal

Revision ID: 0025
Revises: 0022
Create Date: 2026-12-06 09:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_views",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("officer_id", sa.Integer(), sa.ForeignKey("officers.id"), nullable=False),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=False),
        sa.Column("party_role", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"), nullable=True),
        sa.Column("report_id", sa.String(64), nullable=True),
        sa.Column("refusal", sa.Text(), nullable=True),
    )
    op.create_index("ix_report_views_at", "report_views", ["at"])
    op.create_index("ix_report_views_officer_id", "report_views", ["officer_id"])
    op.create_index("ix_report_views_application_id", "report_views", ["application_id"])


def downgrade() -> None:
    op.drop_index("ix_report_views_application_id", "report_views")
    op.drop_index("ix_report_views_officer_id", "report_views")
    op.drop_index("ix_report_views_at", "report_views")
    op.drop_table("report_views")
