"""analysis_save, analysis_part: the precomputed analysis lives in the database (no pickle beside it)

Revision ID: 0005
Revises: 0004_i11a
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_i11a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_save",
        sa.Column("data_version", sa.String(length=80), nullable=False),
        sa.Column("code_digest", sa.String(length=40), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("data_version", "code_digest"),
    )
    op.create_table(
        "analysis_part",
        sa.Column("data_version", sa.String(length=80), nullable=False),
        sa.Column("code_digest", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("data_version", "code_digest", "seq"),
    )


def downgrade() -> None:
    op.drop_table("analysis_part")
    op.drop_table("analysis_save")
