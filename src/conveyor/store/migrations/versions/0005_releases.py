"""Releases: immutable bundles of artifact digests, config and source commit.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("commit_sha", sa.String(64)),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("config_digest", sa.String(80), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("previous_version", sa.String(255)),
        sa.Column("repository", sa.Text()),
        sa.Column("commits", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("project", "service", "version", name="uq_releases_version"),
    )
    op.create_table(
        "release_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "release_id",
            sa.Integer(),
            sa.ForeignKey("releases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_release_artifacts_release", "release_artifacts", ["release_id"])
    op.create_index("ix_release_artifacts_digest", "release_artifacts", ["digest"])


def downgrade() -> None:
    op.drop_table("release_artifacts")
    op.drop_table("releases")
