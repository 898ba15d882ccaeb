"""model_stages: which version of a model holds a stage (staging, production), who moved it, when and why

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_stages")),
    )
    with op.batch_alter_table("model_stages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_stages_model_name"), ["model_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_stages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_stages_model_name"))
    op.drop_table("model_stages")
