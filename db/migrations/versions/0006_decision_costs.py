"""decisions.threshold may be empty: a multiclass model decides by a cost matrix, not by a threshold

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 22:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("threshold", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM decisions WHERE threshold IS NULL")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("threshold", existing_type=sa.Float(), nullable=False)
