"""observation.published_comparison (the publisher's own comparison with England); indicator.ci_method and
ci_reason (how a figure may get a confidence interval)

Revision ID: 0004_i11a
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_i11a"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observation") as batch:
        batch.add_column(sa.Column("published_comparison", sa.String(20), nullable=True))
    with op.batch_alter_table("indicator") as batch:
        batch.add_column(sa.Column("ci_method", sa.String(20), nullable=False, server_default="published"))
        batch.add_column(sa.Column("ci_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("indicator") as batch:
        batch.drop_column("ci_reason")
        batch.drop_column("ci_method")
    with op.batch_alter_table("observation") as batch:
        batch.drop_column("published_comparison")
