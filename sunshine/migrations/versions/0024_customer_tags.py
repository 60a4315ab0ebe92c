"""customers' tags as data (customer_tags, from credit_lines.tags), credit-line history
(credit_line_changes), the console's search columns, products offered by tag

Revision ID: 0024
Revises: 0025 (0022 -> 0025 -> 0024)
Create Date: 2026-12-06 10:00:00
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0025"
branch_labels = None
depends_on = None

_DOTS = str.maketrans({".": "·", "•": "·", "・": "·", "‧": "·", "･": "·"})


def _name_norm(name: str) -> str:
    """As lending.customers.normalise_name (frozen here, as migrations are)."""
    return "".join(unicodedata.normalize("NFKC", name).translate(_DOTS).split())


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("name_norm", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("id_last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("phone_last4", sa.String(length=4), nullable=True))
        batch_op.create_index("ix_customers_name_norm", ["name_norm"])
        batch_op.create_index("ix_customers_id_last4", ["id_last4"])
        batch_op.create_index("ix_customers_phone_last4", ["phone_last4"])
        batch_op.create_index("ix_customers_officer_id_name_norm", ["officer_id", "name_norm"])
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.add_column(sa.Column("offered_to_tags", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "customer_tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("customer_id", "kind", "value"),
    )
    op.create_index("ix_customer_tags_kind_value", "customer_tags", ["kind", "value"])
    op.create_table(
        "credit_line_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("credit_line_id", sa.Integer(), sa.ForeignKey("credit_lines.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("old_amount", sa.Integer(), nullable=True),
        sa.Column("new_amount", sa.Integer(), nullable=False),
        sa.Column("old_valid_until", sa.Date(), nullable=True),
        sa.Column("new_valid_until", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_credit_line_changes_credit_line_id", "credit_line_changes", ["credit_line_id"])
    op.create_index("ix_credit_line_changes_customer_id", "credit_line_changes", ["customer_id"])

    conn = op.get_bind()
    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("id_masked", sa.String),
        sa.column("phone_masked", sa.String),
        sa.column("name_norm", sa.String),
        sa.column("id_last4", sa.String),
        sa.column("phone_last4", sa.String),
    )
    keys = [
        {
            "b_id": row.id,
            "name_norm": _name_norm(row.name),
            "id_last4": row.id_masked[-4:],
            "phone_last4": row.phone_masked[-4:] if row.phone_masked else None,
        }
        for row in conn.execute(
            sa.select(customers.c.id, customers.c.name, customers.c.id_masked, customers.c.phone_masked)
        )
    ]
    if keys:
        conn.execute(
            customers.update()
            .where(customers.c.id == sa.bindparam("b_id"))
            .values(
                name_norm=sa.bindparam("name_norm"),
                id_last4=sa.bindparam("id_last4"),
                phone_last4=sa.bindparam("phone_last4"),
            ),
            keys,
        )

    # The free tags on credit lines become the customer's tags from the village file; each
    # line's present amount is the first entry of its history.
    lines = sa.table(
        "credit_lines",
        sa.column("id", sa.Integer),
        sa.column("customer_id", sa.Integer),
        sa.column("amount", sa.Integer),
        sa.column("valid_until", sa.Date),
        sa.column("tags", sa.JSON),
        sa.column("updated_at", sa.DateTime),
    )
    tags, changes, seen = [], [], set()
    for row in conn.execute(sa.select(lines).order_by(lines.c.id)):
        for kind, value in (row.tags or {}).items():
            key = (row.customer_id, str(kind)[:32], str(value)[:64])
            if key not in seen and key[2]:
                seen.add(key)
                tags.append(
                    {
                        "customer_id": key[0],
                        "kind": key[1],
                        "value": key[2],
                        "source": "village_file",
                        "set_by": "migration",
                        "set_at": row.updated_at,
                    }
                )
        changes.append(
            {
                "credit_line_id": row.id,
                "customer_id": row.customer_id,
                "old_amount": None,
                "new_amount": row.amount,
                "old_valid_until": None,
                "new_valid_until": row.valid_until,
                "source": "migration",
                "actor": "migration",
                "reason": "",
                "at": row.updated_at,
            }
        )
    if tags:
        op.bulk_insert(sa.table("customer_tags", *(sa.column(k) for k in tags[0])), tags)
    if changes:
        op.bulk_insert(sa.table("credit_line_changes", *(sa.column(k) for k in changes[0])), changes)
    with op.batch_alter_table("credit_lines") as batch_op:
        batch_op.drop_column("tags")


def downgrade() -> None:
    with op.batch_alter_table("credit_lines") as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="{}"))
    conn = op.get_bind()
    tags = sa.table("customer_tags", sa.column("customer_id"), sa.column("kind"), sa.column("value"))
    lines = sa.table("credit_lines", sa.column("id"), sa.column("customer_id"), sa.column("tags", sa.JSON))
    by_customer: dict = {}
    for row in conn.execute(sa.select(tags)):
        by_customer.setdefault(row.customer_id, {})[row.kind] = row.value
    for customer_id, values in by_customer.items():
        conn.execute(lines.update().where(lines.c.customer_id == customer_id).values(tags=values))
    op.drop_index("ix_credit_line_changes_customer_id", table_name="credit_line_changes")
    op.drop_index("ix_credit_line_changes_credit_line_id", table_name="credit_line_changes")
    op.drop_table("credit_line_changes")
    op.drop_index("ix_customer_tags_kind_value", table_name="customer_tags")
    op.drop_table("customer_tags")
    with op.batch_alter_table("loan_products") as batch_op:
        batch_op.drop_column("offered_to_tags")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_index("ix_customers_officer_id_name_norm")
        batch_op.drop_index("ix_customers_phone_last4")
        batch_op.drop_index("ix_customers_id_last4")
        batch_op.drop_index("ix_customers_name_norm")
        batch_op.drop_column("phone_last4")
        batch_op.drop_column("id_last4")
        batch_op.drop_column("name_norm")
