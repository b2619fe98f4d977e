CREATE TABLE agents (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	labels TEXT NOT NULL, 
	concurrency INTEGER NOT NULL, 
	token_id INTEGER, 
	registered_at FLOAT NOT NULL, 
	last_seen_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_agents_name UNIQUE (name), 
	FOREIGN KEY(token_id) REFERENCES api_tokens (id)
);

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE api_tokens (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	role VARCHAR(40) NOT NULL, 
	project VARCHAR(200), 
	token_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(16) NOT NULL, 
	created_by VARCHAR(255) NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT, 
	revoked_at FLOAT, 
	last_used_at FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_api_tokens_hash UNIQUE (token_hash)
);

CREATE TABLE approvals (
	id INTEGER NOT NULL, 
	promotion_id INTEGER NOT NULL, 
	release_digest VARCHAR(80) NOT NULL, 
	actor VARCHAR(255) NOT NULL, 
	role VARCHAR(40) NOT NULL, 
	decision VARCHAR(10) NOT NULL, 
	comment TEXT NOT NULL, 
	decided_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_approvals_promotion_actor UNIQUE (promotion_id, actor), 
	FOREIGN KEY(promotion_id) REFERENCES promotions (id) ON DELETE CASCADE
);

CREATE TABLE "artifacts" (
	id INTEGER NOT NULL, 
	job_run_id INTEGER NOT NULL, 
	path TEXT NOT NULL, 
	digest VARCHAR(80) NOT NULL, 
	size BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_run_id) REFERENCES job_runs (id) ON DELETE CASCADE
);

CREATE TABLE deployments (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	service VARCHAR(63) NOT NULL, 
	environment VARCHAR(63) NOT NULL, 
	promotion_id INTEGER NOT NULL, 
	release_id INTEGER NOT NULL, 
	version VARCHAR(255) NOT NULL, 
	status TEXT NOT NULL, 
	phase VARCHAR(20) NOT NULL, 
	revision INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	due_at FLOAT, 
	claimed_by VARCHAR(255), 
	lease_until FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_deployments_promotion UNIQUE (promotion_id), 
	FOREIGN KEY(promotion_id) REFERENCES promotions (id), 
	FOREIGN KEY(release_id) REFERENCES releases (id)
);

CREATE TABLE environment_states (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	service VARCHAR(63) NOT NULL, 
	environment VARCHAR(63) NOT NULL, 
	release_id INTEGER NOT NULL, 
	version VARCHAR(255) NOT NULL, 
	deployed_at FLOAT NOT NULL, 
	healthy_since FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_environment_states_env UNIQUE (project, service, environment), 
	FOREIGN KEY(release_id) REFERENCES releases (id)
);

CREATE TABLE events (
	seq INTEGER NOT NULL, 
	ts VARCHAR(40) NOT NULL, 
	kind VARCHAR(80) NOT NULL, 
	subject VARCHAR(400) NOT NULL, 
	actor VARCHAR(255) NOT NULL, 
	data TEXT NOT NULL, 
	prev_hash VARCHAR(80) NOT NULL, 
	hash VARCHAR(80) NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (hash)
);

CREATE TABLE job_attempts (
	id INTEGER NOT NULL, 
	job_run_id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	number INTEGER NOT NULL, 
	agent_id INTEGER, 
	status VARCHAR(20) NOT NULL, 
	claimed_at FLOAT NOT NULL, 
	queued_s FLOAT NOT NULL, 
	lease_until FLOAT NOT NULL, 
	heartbeat_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	reason TEXT, exit_code INTEGER, duration_s FLOAT, log_digest VARCHAR(80), tests_passed INTEGER, tests_failed INTEGER, tests_skipped INTEGER, failures TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_run_id) REFERENCES job_runs (id) ON DELETE CASCADE, 
	FOREIGN KEY(agent_id) REFERENCES agents (id)
);

CREATE TABLE job_runs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	name VARCHAR(400) NOT NULL, 
	base_name VARCHAR(200) NOT NULL, 
	needs TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	cached BOOLEAN NOT NULL, 
	allow_failure BOOLEAN NOT NULL, 
	exit_code INTEGER, 
	attempts INTEGER NOT NULL, 
	reason TEXT, 
	started_at FLOAT, 
	finished_at FLOAT, 
	duration_s FLOAT, 
	cache_key VARCHAR(80), 
	fingerprint TEXT, 
	log_digest VARCHAR(80), 
	tests_passed INTEGER, 
	tests_failed INTEGER, 
	tests_skipped INTEGER, 
	failures TEXT, pid INTEGER, runs_on TEXT, concurrency_group VARCHAR(200), run_group VARCHAR(200), retry_max INTEGER, retry_backoff_s FLOAT, queued_at FLOAT, payload TEXT, cancel_requested BOOLEAN, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_job_runs_run_name UNIQUE (run_id, name), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE projects (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	repository TEXT NOT NULL, 
	spec_path VARCHAR(255) NOT NULL, 
	default_branch VARCHAR(255) NOT NULL, 
	webhook_secret TEXT, 
	created_by VARCHAR(255) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_projects_name UNIQUE (name)
);

CREATE TABLE promotions (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	service VARCHAR(63) NOT NULL, 
	version VARCHAR(255) NOT NULL, 
	release_id INTEGER NOT NULL, 
	release_digest VARCHAR(80) NOT NULL, 
	environment VARCHAR(63) NOT NULL, 
	requested_by VARCHAR(255) NOT NULL, 
	requested_at FLOAT NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	basis TEXT NOT NULL, 
	decision TEXT, 
	retry_at FLOAT, 
	revision INTEGER NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(release_id) REFERENCES releases (id)
);

CREATE TABLE release_artifacts (
	id INTEGER NOT NULL, 
	release_id INTEGER NOT NULL, 
	path TEXT NOT NULL, 
	digest VARCHAR(80) NOT NULL, 
	size BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(release_id) REFERENCES releases (id) ON DELETE CASCADE
);

CREATE TABLE releases (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	service VARCHAR(63) NOT NULL, 
	version VARCHAR(255) NOT NULL, 
	commit_sha VARCHAR(64), 
	run_id INTEGER NOT NULL, 
	config_digest VARCHAR(80) NOT NULL, 
	config TEXT NOT NULL, 
	previous_version VARCHAR(255), 
	repository TEXT, 
	commits TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	created_by VARCHAR(255) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_releases_version UNIQUE (project, service, version), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);

CREATE TABLE runs (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	pipeline_path TEXT NOT NULL, 
	spec_digest VARCHAR(80) NOT NULL, 
	workspace TEXT NOT NULL, 
	branch VARCHAR(255), 
	commit_sha VARCHAR(64), 
	event VARCHAR(40) NOT NULL, 
	actor VARCHAR(255) NOT NULL, 
	targets TEXT NOT NULL, 
	options TEXT NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	finished_at FLOAT, 
	duration_s FLOAT, 
	error TEXT, 
	PRIMARY KEY (id)
);

CREATE TABLE secrets (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	ciphertext TEXT NOT NULL, 
	key_id VARCHAR(32) NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	updated_by VARCHAR(255) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_secrets_project_name UNIQUE (project, name)
);

CREATE TABLE tree_heads (
	size INTEGER NOT NULL, 
	root VARCHAR(64) NOT NULL, 
	ts VARCHAR(40) NOT NULL, 
	key_id VARCHAR(80) NOT NULL, 
	signature VARCHAR(120) NOT NULL, 
	frontier TEXT NOT NULL, 
	PRIMARY KEY (size)
);

CREATE TABLE waivers (
	id INTEGER NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	rule VARCHAR(200) NOT NULL, 
	environment VARCHAR(63) NOT NULL, 
	reason TEXT NOT NULL, 
	requested_by VARCHAR(255) NOT NULL, 
	requested_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	decided_by VARCHAR(255), 
	decided_at FLOAT, 
	decision VARCHAR(10), 
	comment TEXT, 
	revoked_by VARCHAR(255), 
	revoked_at FLOAT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_artifacts_digest ON artifacts (digest);

CREATE INDEX ix_artifacts_job_run ON artifacts (job_run_id);

CREATE INDEX ix_deployments_due ON deployments (project, due_at);

CREATE INDEX ix_deployments_queue ON deployments (project, service, environment, id);

CREATE INDEX ix_events_kind ON events (kind);

CREATE INDEX ix_events_subject ON events (subject);

CREATE INDEX ix_job_attempts_agent ON job_attempts (agent_id, status);

CREATE INDEX ix_job_attempts_job_run ON job_attempts (job_run_id);

CREATE INDEX ix_job_attempts_lease ON job_attempts (status, lease_until);

CREATE INDEX ix_job_runs_name_key ON job_runs (name, cache_key);

CREATE INDEX ix_job_runs_queue ON job_runs (status, queued_at);

CREATE INDEX ix_promotions_release ON promotions (release_id);

CREATE INDEX ix_promotions_target ON promotions (project, service, environment, state);

CREATE INDEX ix_release_artifacts_digest ON release_artifacts (digest);

CREATE INDEX ix_release_artifacts_release ON release_artifacts (release_id);

CREATE INDEX ix_runs_project_id ON runs (project, id);

CREATE INDEX ix_runs_status ON runs (status);

CREATE INDEX ix_waivers_rule ON waivers (project, environment, rule);

INSERT INTO alembic_version (version_num) VALUES ('0011');

