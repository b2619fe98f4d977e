"""Waivers: time-boxed, approved exceptions to one Policy rule in one Environment.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("decided_at", sa.Float()),
        sa.Column("decision", sa.String(10)),
        sa.Column("comment", sa.Text()),
        sa.Column("revoked_by", sa.String(255)),
        sa.Column("revoked_at", sa.Float()),
    )
    op.create_index("ix_waivers_rule", "waivers", ["project", "environment", "rule"])


def downgrade() -> None:
    op.drop_index("ix_waivers_rule", table_name="waivers")
    op.drop_table("waivers")
