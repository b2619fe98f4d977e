"""Runs, job runs, artifacts and the event chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pipeline_path", sa.Text(), nullable=False),
        sa.Column("spec_digest", sa.String(80), nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(255)),
        sa.Column("commit_sha", sa.String(64)),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_runs_project_id", "runs", ["project", "id"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("base_name", sa.String(200), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("allow_failure", sa.Boolean(), nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("cache_key", sa.String(80)),
        sa.Column("fingerprint", sa.Text()),
        sa.Column("log_digest", sa.String(80)),
        sa.Column("tests_passed", sa.Integer()),
        sa.Column("tests_failed", sa.Integer()),
        sa.Column("tests_skipped", sa.Integer()),
        sa.Column("failures", sa.Text()),
        sa.UniqueConstraint("run_id", "name", name="uq_job_runs_run_name"),
    )
    op.create_index("ix_job_runs_name_key", "job_runs", ["name", "cache_key"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_run_id",
            sa.Integer(),
            sa.ForeignKey("job_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )
    op.create_index("ix_artifacts_job_run", "artifacts", ["job_run_id"])
    op.create_index("ix_artifacts_digest", "artifacts", ["digest"])

    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(80), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False, unique=True),
    )
    op.create_index("ix_events_subject", "events", ["subject"])
    op.create_index("ix_events_kind", "events", ["kind"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("artifacts")
    op.drop_table("job_runs")
    op.drop_table("runs")
