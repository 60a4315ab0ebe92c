"""report views: every opening of a party's full credit report in the console, and every refusal

Append-only, like the consent evidence: triggers refuse UPDATE, DELETE and (PostgreSQL)
TRUNCATE on the table for every role.

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

POSTGRESQL = (
    """
    CREATE FUNCTION report_views_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'report_views is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER report_views_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON report_views
    FOR EACH STATEMENT EXECUTE FUNCTION report_views_append_only()
    """,
    "REVOKE UPDATE, DELETE, TRUNCATE ON report_views FROM PUBLIC",
)
SQLITE = tuple(
    f"""
    CREATE TRIGGER report_views_no_{op_name.lower()} BEFORE {op_name} ON report_views
    BEGIN SELECT RAISE(ABORT, 'report_views is append-only: {op_name} refused'); END
    """
    for op_name in ("UPDATE", "DELETE")
)


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
    for statement in {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(op.get_bind().dialect.name, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER report_views_append_only ON report_views")
        op.execute("DROP FUNCTION report_views_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER report_views_no_update")
        op.execute("DROP TRIGGER report_views_no_delete")
    op.drop_index("ix_report_views_application_id", "report_views")
    op.drop_index("ix_report_views_officer_id", "report_views")
    op.drop_index("ix_report_views_at", "report_views")
    op.drop_table("report_views")
