"""The tables, as SQLAlchemy metadata: the reference the migrations are checked against.

Times are seconds since the epoch (UTC) as floats; JSON is stored as text so
the same SQL works on SQLite and PostgreSQL. Event timestamps are ISO 8601
strings because the event hash covers them byte for byte.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("pipeline_path", Text, nullable=False),
    Column("spec_digest", String(80), nullable=False),
    Column("workspace", Text, nullable=False),
    Column("branch", String(255)),
    Column("commit_sha", String(64)),
    Column("event", String(40), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("targets", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Column("error", Text),
    Index("ix_runs_project_id", "project", "id"),
    Index("ix_runs_status", "status"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(400), nullable=False),
    Column("base_name", String(200), nullable=False),
    Column("needs", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("allow_failure", Boolean, nullable=False),
    Column("exit_code", Integer),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Column("cache_key", String(80)),
    Column("fingerprint", Text),
    Column("log_digest", String(80)),
    Column("tests_passed", Integer),
    Column("tests_failed", Integer),
    Column("tests_skipped", Integer),
    Column("failures", Text),
    Column("pid", Integer),
    UniqueConstraint("run_id", "name", name="uq_job_runs_run_name"),
    Index("ix_job_runs_name_key", "name", "cache_key"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_run_id", Integer, ForeignKey("job_runs.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_artifacts_job_run", "job_run_id"),
    Index("ix_artifacts_digest", "digest"),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(40), nullable=False),
    Column("kind", String(80), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False, unique=True),
    Index("ix_events_subject", "subject"),
    Index("ix_events_kind", "kind"),
)

# A signed tree head over the first `size` events (`size` is the seq of the last one
# covered). `frontier` holds the hex hashes of the perfect subtrees of that prefix, so
# the next head hashes only the events after it; it is checked against `root` before use.
tree_heads = Table(
    "tree_heads",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("ts", String(40), nullable=False),
    Column("key_id", String(80), nullable=False),
    Column("signature", String(120), nullable=False),
    Column("frontier", Text, nullable=False),
)

# A Release is never updated: its row, its artifacts and its `release.created` Event
# are written in one transaction. `config` is the canonical JSON of the `delivery:`
# section it was made with; `commits` the JSON list of commits since `previous_version`.
releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("service", String(63), nullable=False),
    Column("version", String(255), nullable=False),
    Column("commit_sha", String(64)),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("config_digest", String(80), nullable=False),
    Column("config", Text, nullable=False),
    Column("previous_version", String(255)),
    Column("repository", Text),
    Column("commits", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("project", "service", "version", name="uq_releases_version"),
)

release_artifacts = Table(
    "release_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_id", Integer, ForeignKey("releases.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_release_artifacts_release", "release_id"),
    Index("ix_release_artifacts_digest", "digest"),
)

# A Promotion of one Release into one Environment. `basis` is the JSON of the requirements
# and policy rules it is judged by (fixed at request), `decision` the JSON of its last Gate
# report, `retry_at` when a gate may next change by itself; `revision` counts updates, so a
# re-evaluation never overwrites a decision made meanwhile.
promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("service", String(63), nullable=False),
    Column("version", String(255), nullable=False),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("release_digest", String(80), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("requested_by", String(255), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("state", String(20), nullable=False),
    Column("basis", Text, nullable=False),
    Column("decision", Text),
    Column("retry_at", Float),
    Column("revision", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_promotions_target", "project", "service", "environment", "state"),
    Index("ix_promotions_release", "release_id"),
)

# One person's decision on one Promotion, bound to the identity of the Release it was
# requested for; a person decides once per promotion.
approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "promotion_id", Integer, ForeignKey("promotions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("release_digest", String(80), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("role", String(40), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("comment", Text, nullable=False),
    Column("decided_at", Float, nullable=False),
    UniqueConstraint("promotion_id", "actor", name="uq_approvals_promotion_actor"),
)

# The Release running in each Environment of a service, written by the step that deploys.
environment_states = Table(
    "environment_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("version", String(255), nullable=False),
    Column("deployed_at", Float, nullable=False),
    Column("healthy_since", Float),
    UniqueConstraint("project", "service", "environment", name="uq_environment_states_env"),
)

# One Promotion carried out on a Target. `status` is the JSON of the rollout's status, all
# the controller remembers between passes; `phase` is computed from it and kept beside it
# for queries. `due_at` is when the next pass is due, NULL once the Deployment settled and
# its outcome was recorded: the Deployments with a `due_at` form each environment's queue,
# oldest first, and only the oldest is worked on. `claimed_by` and `lease_until` say which
# controller works on it until when; `revision` counts writes, so a controller whose lease
# was taken over never overwrites the new owner's status.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("service", String(63), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("promotion_id", Integer, ForeignKey("promotions.id"), nullable=False),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("version", String(255), nullable=False),
    Column("status", Text, nullable=False),
    Column("phase", String(20), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("due_at", Float),
    Column("claimed_by", String(255)),
    Column("lease_until", Float),
    UniqueConstraint("promotion_id", name="uq_deployments_promotion"),
    Index("ix_deployments_queue", "project", "service", "environment", "id"),
    Index("ix_deployments_due", "project", "due_at"),
)

# A time-boxed exception to one Policy rule in one Environment. It is requested by one
# person and becomes active only when a second person approves it; `expires_at` is fixed
# when it is requested. Every use is an Event (`waiver.used`), not a row here.
waivers = Table(
    "waivers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("environment", String(63), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(255), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_by", String(255)),
    Column("decided_at", Float),
    Column("decision", String(10)),
    Column("comment", Text),
    Column("revoked_by", String(255)),
    Column("revoked_at", Float),
    Index("ix_waivers_rule", "project", "environment", "rule"),
)

# API tokens. Only the SHA-256 of a token is kept; `prefix` is its first characters, so a
# person can tell their tokens apart. `kind` is `user` or `runner`; a runner token cannot
# call user endpoints. `project` limits a token to one project when set.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("role", String(40), nullable=False),
    Column("project", String(200)),
    Column("token_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
    UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
)

# Secrets, encrypted at rest; the plaintext is never stored. `project` is '' for a secret
# every project may use. `key_id` names the key that encrypted it, so keys can rotate.
secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("name", String(255), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("project", "name", name="uq_secrets_project_name"),
)

# Projects a server knows: a repository and the path of its conveyor.yaml. Webhooks find
# their project by repository; `webhook_secret` is encrypted like a secret.
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("repository", Text, nullable=False),
    Column("spec_path", String(255), nullable=False),
    Column("default_branch", String(255), nullable=False),
    Column("webhook_secret", Text),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", name="uq_projects_name"),
)

# The work queue of remote runs (revision 0010). A remote JobRun carries what a runner needs:
# `payload` (the job and where its source is, as JSON), `runs_on` (the JSON list of labels a
# runner must have), `concurrency_group` (at most one running holder at a time, across runs)
# and `run_group` (the pipeline's group: a run waits while an older run of the group is
# unfinished). `queued_at` is when it became claimable (`status = 'queued'`); claims take the
# oldest first. `cancel_requested` is the intent a running holder learns at its next heartbeat.
for _column in (
    Column("runs_on", Text),
    Column("concurrency_group", String(200)),
    Column("run_group", String(200)),
    Column("retry_max", Integer),
    Column("retry_backoff_s", Float),
    Column("queued_at", Float),
    Column("payload", Text),
    Column("cancel_requested", Boolean),
):
    job_runs.append_column(_column)
Index("ix_job_runs_queue", job_runs.c.status, job_runs.c.queued_at)

# Runners: `labels` is a JSON list; `last_seen_at` moves with every claim and heartbeat.
agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("token_id", Integer, ForeignKey("api_tokens.id")),
    Column("registered_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    UniqueConstraint("name", name="uq_agents_name"),
)

# One attempt of a JobRun. A runner's is its claim of the JobRun; one made on the machine
# that started the Run (a retried job's) has no runner, no wait and no lease, and is
# written once it ended. `lease_until` is when a claim is given up unless a heartbeat
# extends it; `queued_s` is how long the JobRun waited, claimable, before this claim. Its
# status is `running` while held, then the job's outcome, or `runner_lost`, `handed_back`,
# `canceled`. An attempt its runner completed keeps the result it reported (exit code, log,
# tests; revision 0011): a JobRun waiting to retry keeps none, and ends with its last
# attempt's if the Run halts first.
job_attempts = Table(
    "job_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_run_id", Integer, ForeignKey("job_runs.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("agent_id", Integer, ForeignKey("agents.id")),
    Column("status", String(20), nullable=False),
    Column("claimed_at", Float, nullable=False),
    Column("queued_s", Float, nullable=False),
    Column("lease_until", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("reason", Text),
    Column("exit_code", Integer),
    Column("duration_s", Float),
    Column("log_digest", String(80)),
    Column("tests_passed", Integer),
    Column("tests_failed", Integer),
    Column("tests_skipped", Integer),
    Column("failures", Text),
    Index("ix_job_attempts_lease", "status", "lease_until"),
    Index("ix_job_attempts_job_run", "job_run_id"),
    Index("ix_job_attempts_agent", "agent_id", "status"),
)
