"""dataset_versions.notes: what the reader or a fix noticed, as catalog keys and parameters, not English

The old `note` was one English sentence (or several joined by "; "). Each becomes one note with the key
`note.text`, which shows the stored words as they are, so nothing a user wrote down or read is lost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_versions = sa.table(
    "dataset_versions",
    sa.column("id", sa.Integer),
    sa.column("note", sa.Text),
    sa.column("notes", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notes", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for row_id, note in bind.execute(sa.select(_versions.c.id, _versions.c.note)).all():
        notes = [{"key": "note.text", "params": {"text": note}}] if note else []
        bind.execute(_versions.update().where(_versions.c.id == row_id).values(notes=notes))
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.alter_column("notes", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("note")


def downgrade() -> None:
    """Back to one sentence: stored words come back as they were; newer notes keep only their key."""
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    bind = op.get_bind()
    for row_id, notes in bind.execute(sa.select(_versions.c.id, _versions.c.notes)).all():
        words = [n["params"]["text"] if n["key"] == "note.text" else n["key"] for n in notes or []]
        bind.execute(_versions.update().where(_versions.c.id == row_id).values(note="; ".join(words)))
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.alter_column("note", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("notes")
