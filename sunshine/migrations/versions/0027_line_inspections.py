"""annual inspection: each line's baseline (last year's snapshot), inspection batches, inspections, photos

Revision ID: 0027
Revises: 0028 (main's head when rebased; the task gave 0022)
Create Date: 2026-12-06 09:50:00
"""

from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_lines") as batch_op:
        batch_op.add_column(sa.Column("baseline", sa.JSON(), nullable=True))
        batch_op.create_index("ix_credit_lines_valid_until", ["valid_until"])
    # The lines already granted: their data today is the best snapshot there is.
    lines = sa.table(
        "credit_lines",
        sa.column("id", sa.Integer()),
        sa.column("customer_id", sa.Integer()),
        sa.column("amount", sa.Integer()),
        sa.column("baseline", sa.JSON()),
    )
    tags = sa.table("customer_tags", sa.column("id"), sa.column("customer_id"), sa.column("kind"), sa.column("value"))
    conn = op.get_bind()
    today = date.today().isoformat()
    held: dict = {}
    for t in conn.execute(sa.select(tags.c.customer_id, tags.c.kind, tags.c.value).order_by(tags.c.id)):
        kinds = held.setdefault(t.customer_id, {})
        kinds[t.kind] = f"{kinds[t.kind]}、{t.value}" if t.kind in kinds else t.value
    rows = [
        {"b_id": r.id, "baseline": {"amount": r.amount, "tags": held.get(r.customer_id, {}), "on": today}}
        for r in conn.execute(sa.select(lines.c.id, lines.c.customer_id, lines.c.amount))
    ]
    if rows:
        conn.execute(
            lines.update().where(lines.c.id == sa.bindparam("b_id")).values(baseline=sa.bindparam("baseline")), rows
        )
    with op.batch_alter_table("credit_lines") as batch_op:
        batch_op.alter_column("baseline", existing_type=sa.JSON(), nullable=False)

    op.create_table(
        "inspection_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("village", sa.String(length=64), nullable=True),
        sa.Column("run_on", sa.Date(), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("raised", sa.Integer(), nullable=False),
        sa.Column("lowered", sa.Integer(), nullable=False),
        sa.Column("on_site", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "line_inspections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("inspection_batches.id"), nullable=True),
        sa.Column("credit_line_id", sa.Integer(), sa.ForeignKey("credit_lines.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("old_amount", sa.Integer(), nullable=False),
        sa.Column("new_amount", sa.Integer(), nullable=True),
        sa.Column("new_valid_until", sa.Date(), nullable=True),
        sa.Column("officer_id", sa.Integer(), sa.ForeignKey("officers.id"), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.String(length=16), nullable=True),
        sa.Column("saved_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("credit_line_id", "due_on"),
    )
    op.create_index("ix_line_inspections_batch_id", "line_inspections", ["batch_id"])
    op.create_index("ix_line_inspections_customer_id", "line_inspections", ["customer_id"])
    op.create_index("ix_line_inspections_officer_id", "line_inspections", ["officer_id"])
    op.create_table(
        "inspection_photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("line_inspections.id"), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_inspection_photos_inspection_id", "inspection_photos", ["inspection_id"])


def downgrade() -> None:
    op.drop_index("ix_inspection_photos_inspection_id", table_name="inspection_photos")
    op.drop_table("inspection_photos")
    for name in ("officer_id", "customer_id", "batch_id"):
        op.drop_index(f"ix_line_inspections_{name}", table_name="line_inspections")
    op.drop_table("line_inspections")
    op.drop_table("inspection_batches")
    with op.batch_alter_table("credit_lines") as batch_op:
        batch_op.drop_index("ix_credit_lines_valid_until")
        batch_op.drop_column("baseline")
