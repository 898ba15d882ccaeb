"""runs.target may be empty: text generation has no target, implicit-feedback recommendation no rating

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("target", existing_type=sa.String(length=200), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("target", existing_type=sa.String(length=200), nullable=False)
