"""consent evidence: the key that sealed each record, and the table made append-only

Existing records keep their plain SHA-256 hashes under the key id "legacy-sha256"
(auth_flow.evidence accepts them only at the start of the chain, before the first keyed
record, and no more of them than a signed checkpoint recorded). Triggers refuse UPDATE,
DELETE and (PostgreSQL) TRUNCATE on the table for every role.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 03:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

POSTGRESQL = (
    """
    CREATE FUNCTION consent_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'consent_evidence is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER consent_evidence_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON consent_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION consent_evidence_append_only()
    """,
    "REVOKE UPDATE, DELETE, TRUNCATE ON consent_evidence FROM PUBLIC",
)
SQLITE = tuple(
    f"""
    CREATE TRIGGER consent_evidence_no_{op_name.lower()} BEFORE {op_name} ON consent_evidence
    BEGIN SELECT RAISE(ABORT, 'consent_evidence is append-only: {op_name} refused'); END
    """
    for op_name in ("UPDATE", "DELETE")
)


def upgrade() -> None:
    with op.batch_alter_table("consent_evidence") as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=False, server_default="legacy-sha256"))
    with op.batch_alter_table("consent_evidence") as batch_op:  # new records always name their key
        batch_op.alter_column("key_id", existing_type=sa.String(length=32), server_default=None)
    dialect = op.get_bind().dialect.name
    for statement in {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(dialect, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER consent_evidence_append_only ON consent_evidence")
        op.execute("DROP FUNCTION consent_evidence_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER consent_evidence_no_update")
        op.execute("DROP TRIGGER consent_evidence_no_delete")
    with op.batch_alter_table("consent_evidence") as batch_op:
        batch_op.drop_column("key_id")
