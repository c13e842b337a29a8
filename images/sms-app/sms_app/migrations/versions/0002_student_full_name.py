"""Release 1.1.0: students.full_name, backfilled from first and last name.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("students") as batch:
        batch.add_column(sa.Column("full_name", sa.String(201), nullable=True))
    students = sa.table("students", sa.column("first_name", sa.String), sa.column("last_name", sa.String),
                        sa.column("full_name", sa.String))
    op.execute(students.update().values(full_name=students.c.first_name + " " + students.c.last_name))


def downgrade():
    with op.batch_alter_table("students") as batch:
        batch.drop_column("full_name")
