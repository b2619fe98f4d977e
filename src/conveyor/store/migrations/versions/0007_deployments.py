"""Deployments: the persisted status of each Promotion carried out on a Target.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("promotion_id", sa.Integer(), sa.ForeignKey("promotions.id"), nullable=False),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float()),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("lease_until", sa.Float()),
        sa.UniqueConstraint("promotion_id", name="uq_deployments_promotion"),
    )
    op.create_index(
        "ix_deployments_queue", "deployments", ["project", "service", "environment", "id"]
    )
    op.create_index("ix_deployments_due", "deployments", ["project", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_deployments_due", table_name="deployments")
    op.drop_index("ix_deployments_queue", table_name="deployments")
    op.drop_table("deployments")
