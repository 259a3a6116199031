"""analysis_row: every area's comparisons, trends and ICB figures as an ordinary table of a save, read in slices

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.create_table(
        "analysis_row",
        sa.Column("data_version", sa.String(length=80), nullable=False),
        sa.Column("code_digest", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("indicator_id", sa.String(length=80), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=20), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        *[sa.Column(c, sa.Float(), nullable=True)
          for c in ("value", "lci95", "uci95", "lci998", "uci998", "count", "denominator", "england_value")],
        *[sa.Column(c, sa.Text(), nullable=True)
          for c in ("comparison", "comparison_level", "comparison_label", "comparison_basis", "position")],
        sa.Column("position_only", sa.Boolean(), nullable=False),
        sa.Column("min_of_type", sa.Float(), nullable=True),
        sa.Column("max_of_type", sa.Float(), nullable=True),
        sa.Column("trend", sa.Text(), nullable=True),
        sa.Column("trend_method", sa.Text(), nullable=True),
        sa.Column("red_red", sa.Boolean(), nullable=False),
        sa.Column("icb_value", sa.Float(), nullable=True),
        *[sa.Column(c, sa.Text(), nullable=True) for c in ("icb_method", "figure_method", "method")],
        sa.Column("approximate", sa.Boolean(), nullable=True),
        sa.Column("ci_source", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        # an area's rows are read together, and in SQLite stored together (no rowid table beside the key)
        sa.PrimaryKeyConstraint("data_version", "code_digest", "area_code", "seq"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("analysis_row")
