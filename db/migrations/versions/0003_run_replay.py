"""run: payload metadata and replay provenance, so a run can be replayed from its archived payloads

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("payload_meta", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("replay_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("replay_of")
        batch.drop_column("payload_meta")
