"""authorization evidence: party and progress of each authorization, face references,
the consent-evidence chain, credit-report records

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.add_column(sa.Column("party_customer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("party_phone_masked", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("identity_checked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("biometric_consent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("face_verified_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(
            "fk_authorizations_party_customer_id_customers", "customers", ["party_customer_id"], ["id"]
        )
    op.create_table(
        "face_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("encoding_sealed", sa.Text(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("enrolled_by", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_face_references_customer_id", "face_references", ["customer_id"])
    op.create_table(
        "consent_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("party_role", sa.String(length=16), nullable=False),
        sa.Column("party_name", sa.String(length=64), nullable=False),
        sa.Column("party_id_masked", sa.String(length=32), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("face", sa.JSON(), nullable=False),
        sa.Column("image_sha256", sa.JSON(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prev_hash"),
        sa.UniqueConstraint("record_hash"),
    )
    op.create_index("ix_consent_evidence_authorization_id", "consent_evidence", ["authorization_id"])
    op.create_table(
        "credit_report_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"), nullable=False),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=False),
        sa.Column("party_role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.Column("report_sealed", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("authorization_id"),
    )
    op.create_index("ix_credit_report_records_application_id", "credit_report_records", ["application_id"])


def downgrade() -> None:
    op.drop_table("credit_report_records")
    op.drop_table("consent_evidence")
    op.drop_table("face_references")
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.drop_constraint("fk_authorizations_party_customer_id_customers", type_="foreignkey")
        for column in (
            "face_verified_at",
            "biometric_consent_at",
            "identity_checked_at",
            "attempts",
            "party_phone_masked",
            "party_customer_id",
        ):
            batch_op.drop_column(column)
