"""Each attempt of a remote JobRun keeps the result its runner reported.

A JobRun waiting to retry no longer keeps its failed attempt's result on its
own row: the result moves to that attempt, and the JobRun's row is left with
none until it ends. A finished JobRun's result is copied to the attempt that
ended it, so each attempt's row says how it ended.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = (
    "exit_code",
    "duration_s",
    "log_digest",
    "tests_passed",
    "tests_failed",
    "tests_skipped",
    "failures",
)
_RESULT = ", ".join(_COLUMNS)
_WAITING = "status = 'queued' AND attempts > 0"  # queued again after an attempt


def upgrade() -> None:
    with op.batch_alter_table("job_attempts") as batch:
        batch.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("log_digest", sa.String(80), nullable=True))
        batch.add_column(sa.Column("tests_passed", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tests_failed", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tests_skipped", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("failures", sa.Text(), nullable=True))
    # The JobRun's result belongs to its last attempt when that one ended it, or when it
    # failed or lost its runner and the JobRun waits to retry it (what 0010 kept meanwhile).
    op.execute(
        f"UPDATE job_attempts SET ({_RESULT}) = (SELECT {_of('j')} FROM job_runs j "
        "WHERE j.id = job_attempts.job_run_id) WHERE EXISTS (SELECT 1 FROM job_runs j "
        "WHERE j.id = job_attempts.job_run_id AND j.attempts = job_attempts.number "
        "AND (j.status = job_attempts.status OR (j.status = 'queued' "
        "AND job_attempts.status IN ('failed', 'timed_out', 'runner_lost'))))"
    )
    nothing = ", ".join(f"{column} = NULL" for column in _COLUMNS)
    op.execute(f"UPDATE job_runs SET {nothing} WHERE {_WAITING}")


def downgrade() -> None:
    # 0010 keeps a waiting retry's result on the JobRun: that of its last attempt.
    op.execute(
        f"UPDATE job_runs SET ({_RESULT}) = (SELECT {_of('a')} FROM job_attempts a "
        f"WHERE a.job_run_id = job_runs.id AND a.number = job_runs.attempts) WHERE {_WAITING}"
    )
    with op.batch_alter_table("job_attempts") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)


def _of(table: str) -> str:
    """The result's columns of `table` (an alias), named in full: both tables have them."""
    return ", ".join(f"{table}.{column}" for column in _COLUMNS)
