"""analysis_row.run_id: the run that loaded each published figure, so an export says when without every observation

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("analysis_row", sa.Column("run_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analysis_row") as batch:
        batch.drop_column("run_id")
