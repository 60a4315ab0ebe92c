"""face reviews: an officer's review of a face check, its sealed frames; the reference photo sealed

Revision ID: 0016
Revises: 0011 (main's head: 0007 -> 0015 -> 0010 -> 0009 -> 0011)
Create Date: 2026-12-06 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_references") as batch_op:
        batch_op.add_column(sa.Column("photo_sealed", sa.Text(), nullable=True))
    op.create_table(
        "face_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("authorization_id", sa.Integer(), sa.ForeignKey("authorizations.id"), nullable=False),
        sa.Column("reference_id", sa.Integer(), sa.ForeignKey("face_references.id"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("face", sa.JSON(), nullable=False),
        sa.Column("frames_sealed", sa.JSON(), nullable=True),
        sa.Column("step_session_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("frames_deleted_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_face_reviews_authorization_id", "face_reviews", ["authorization_id"])


def downgrade() -> None:
    op.drop_index("ix_face_reviews_authorization_id", table_name="face_reviews")
    op.drop_table("face_reviews")
    with op.batch_alter_table("face_references") as batch_op:
        batch_op.drop_column("photo_sealed")
