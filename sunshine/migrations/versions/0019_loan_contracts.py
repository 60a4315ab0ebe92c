"""loan contracts: the electronic loan contract of an approved application; the evidence chain records its signing

The consent-evidence chain gets `contract_id` (a record is an authorization's step or a
contract's), so `authorization_id` becomes nullable. On SQLite the table is rebuilt for that
(batch mode), which drops its append-only triggers: they are created again.

Revision ID: 0019
Revises: 0020 (main's head when this was rebased)
Create Date: 2026-12-06 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = ("consent_evidence_no_update", "consent_evidence_no_delete")


def _sqlite_triggers(create: bool) -> None:
    for name in SQLITE_TRIGGERS:
        if not create:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            continue
        op_name = name.rsplit("_", 1)[1].upper()
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {op_name} ON consent_evidence "
            f"BEGIN SELECT RAISE(ABORT, 'consent_evidence is append-only: {op_name} refused'); END"
        )


def upgrade() -> None:
    op.create_table(
        "loan_contracts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("loan_applications.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("party_name", sa.String(length=64), nullable=False),
        sa.Column("party_id_masked", sa.String(length=32), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=True),
        sa.Column("offered_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=True),
        sa.Column("proof", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("evidence_id", sa.Integer(), nullable=True),
        sa.Column("sms_code_hash", sa.String(length=64), nullable=True),
        sa.Column("sms_code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("sms_sends", sa.Integer(), nullable=False),
        sa.UniqueConstraint("application_id"),
        sa.UniqueConstraint("token_hash"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("consent_evidence") as batch_op:
        batch_op.alter_column("authorization_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("contract_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_consent_evidence_contract_id", "loan_contracts", ["contract_id"], ["id"])
        batch_op.create_index("ix_consent_evidence_contract_id", ["contract_id"])
    if sqlite:
        _sqlite_triggers(create=True)


def downgrade() -> None:
    """Refused by the append-only chain's NOT NULL once a contract's signing is recorded."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("consent_evidence") as batch_op:
        batch_op.drop_index("ix_consent_evidence_contract_id")
        batch_op.drop_constraint("fk_consent_evidence_contract_id", type_="foreignkey")
        batch_op.drop_column("contract_id")
        batch_op.alter_column("authorization_id", existing_type=sa.Integer(), nullable=False)
    if sqlite:
        _sqlite_triggers(create=True)
    op.drop_table("loan_contracts")
