"""Artifact sizes as 64-bit integers: a 32-bit INTEGER on PostgreSQL stops at 2 GiB.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite already stores 64-bit integers; the batch copy keeps its declared type in step.
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size", existing_type=sa.Integer(), type_=sa.BigInteger())


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size", existing_type=sa.BigInteger(), type_=sa.Integer())
