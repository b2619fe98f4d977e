"""Promotions, their approvals, and the Release running in each environment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("release_digest", sa.String(80), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text()),
        sa.Column("retry_at", sa.Float()),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_promotions_target", "promotions", ["project", "service", "environment", "state"]
    )
    op.create_index("ix_promotions_release", "promotions", ["release_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "promotion_id",
            sa.Integer(),
            sa.ForeignKey("promotions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("release_digest", sa.String(80), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("promotion_id", "actor", name="uq_approvals_promotion_actor"),
    )
    op.create_table(
        "environment_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("deployed_at", sa.Float(), nullable=False),
        sa.Column("healthy_since", sa.Float()),
        sa.UniqueConstraint("project", "service", "environment", name="uq_environment_states_env"),
    )


def downgrade() -> None:
    op.drop_table("environment_states")
    op.drop_table("approvals")
    op.drop_index("ix_promotions_release", table_name="promotions")
    op.drop_index("ix_promotions_target", table_name="promotions")
    op.drop_table("promotions")
