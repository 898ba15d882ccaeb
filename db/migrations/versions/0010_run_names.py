"""runs.names: the words a run's classes and input columns are shown by ({"classes": {}, "columns": {}})

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_runs = sa.table("runs", sa.column("names", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", sa.JSON(), nullable=True))
    op.get_bind().execute(_runs.update().values(names={}))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("names", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("names")
