"""the branch's figures: customers by village, application events, hand-offs and authorizations by time

Revision ID: 0028
Revises: 0024
Create Date: 2026-12-06 10:00:00
"""

from alembic import op

revision = "0028"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_customers_village", "customers", "village"),
    ("ix_application_events_at", "application_events", "at"),
    ("ix_hand_offs_created_at", "hand_offs", "created_at"),
    ("ix_authorizations_created_at", "authorizations", "created_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
