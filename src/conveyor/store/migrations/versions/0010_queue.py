"""The work queue for remote runners: queue columns on job_runs, attempts with leases, agents.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("runs_on", sa.Text(), nullable=True))
        batch.add_column(sa.Column("concurrency_group", sa.String(200), nullable=True))
        batch.add_column(sa.Column("run_group", sa.String(200), nullable=True))
        batch.add_column(sa.Column("retry_max", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retry_backoff_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=True))
        batch.create_index("ix_job_runs_queue", ["status", "queued_at"])
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("api_tokens.id"), nullable=True),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("name", name="uq_agents_name"),
    )
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_run_id",
            sa.Integer(),
            sa.ForeignKey("job_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id"), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("queued_s", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_job_attempts_lease", "job_attempts", ["status", "lease_until"])
    op.create_index("ix_job_attempts_job_run", "job_attempts", ["job_run_id"])
    op.create_index("ix_job_attempts_agent", "job_attempts", ["agent_id", "status"])


def downgrade() -> None:
    op.drop_table("job_attempts")
    op.drop_table("agents")
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_index("ix_job_runs_queue")
        for column in (
            "cancel_requested",
            "payload",
            "queued_at",
            "retry_backoff_s",
            "retry_max",
            "run_group",
            "concurrency_group",
            "runs_on",
        ):
            batch.drop_column(column)
