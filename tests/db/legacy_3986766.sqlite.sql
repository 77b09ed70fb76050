-- Schema created by jaas at commit 3986766 (the release before Alembic migrations), sqlite.
-- Generated from that code's metadata.create_all, kept verbatim as a test fixture.

CREATE TABLE datasets (
	id INTEGER NOT NULL,
	name VARCHAR(200) NOT NULL,
	version INTEGER NOT NULL,
	description TEXT NOT NULL,
	created DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_datasets_name_version UNIQUE (name, version)
);

CREATE TABLE jaas_schema (
	version INTEGER NOT NULL,
	applied DATETIME NOT NULL,
	PRIMARY KEY (version)
);

CREATE TABLE runs (
	run INTEGER NOT NULL,
	start_ns BIGINT,
	end_ns BIGINT,
	status VARCHAR(32) NOT NULL,
	meta JSON NOT NULL,
	PRIMARY KEY (run)
);

CREATE TABLE files (
	id INTEGER NOT NULL,
	path TEXT NOT NULL,
	kind VARCHAR(16) NOT NULL,
	run INTEGER,
	seq INTEGER,
	size BIGINT,
	adler32 VARCHAR(8),
	n_events BIGINT,
	t_min BIGINT,
	t_max BIGINT,
	software_version VARCHAR(64),
	created DATETIME NOT NULL,
	status VARCHAR(16) NOT NULL,
	status_reason TEXT NOT NULL,
	meta JSON NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_files_path UNIQUE (path),
	CONSTRAINT ck_files_kind CHECK (kind IN ('raw', 'rtraw', 'esd', 'index', 'truth', 'meta')),
	CONSTRAINT ck_files_status CHECK (status IN ('good', 'bad', 'quarantined')),
	FOREIGN KEY(run) REFERENCES runs (run)
);

CREATE INDEX ix_files_kind ON files (kind);

CREATE INDEX ix_files_run_seq ON files (run, seq);

CREATE TABLE dataset_files (
	dataset_id INTEGER NOT NULL,
	file_id INTEGER NOT NULL,
	PRIMARY KEY (dataset_id, file_id),
	FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE CASCADE,
	FOREIGN KEY(file_id) REFERENCES files (id)
);

CREATE INDEX ix_dataset_files_file_id ON dataset_files (file_id);

CREATE TABLE parentage (
	child_id INTEGER NOT NULL,
	parent_id INTEGER NOT NULL,
	PRIMARY KEY (child_id, parent_id),
	FOREIGN KEY(child_id) REFERENCES files (id) ON DELETE CASCADE,
	FOREIGN KEY(parent_id) REFERENCES files (id) ON DELETE CASCADE
);

CREATE INDEX ix_parentage_parent_id ON parentage (parent_id);

CREATE TABLE replicas (
	id INTEGER NOT NULL,
	file_id INTEGER NOT NULL,
	endpoint VARCHAR(200) NOT NULL,
	url TEXT NOT NULL,
	verified DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT uq_replicas_file_url UNIQUE (file_id, url),
	FOREIGN KEY(file_id) REFERENCES files (id) ON DELETE CASCADE
);

CREATE INDEX ix_replicas_file_id ON replicas (file_id);

CREATE TABLE kup_alerts (
	id INTEGER NOT NULL,
	rule VARCHAR(64) NOT NULL,
	subject VARCHAR(255) NOT NULL,
	severity VARCHAR(16) NOT NULL,
	message TEXT NOT NULL,
	value FLOAT,
	raised DATETIME NOT NULL,
	last_seen DATETIME NOT NULL,
	resolved DATETIME,
	PRIMARY KEY (id)
);

CREATE INDEX ix_kup_alerts_active ON kup_alerts (rule, subject, resolved);

CREATE TABLE kup_audit (
	id INTEGER NOT NULL,
	at DATETIME NOT NULL,
	who VARCHAR(128) NOT NULL,
	action VARCHAR(32) NOT NULL,
	file VARCHAR(512) NOT NULL,
	stage VARCHAR(64) NOT NULL,
	version VARCHAR(64) NOT NULL,
	from_state VARCHAR(16) NOT NULL,
	to_state VARCHAR(16) NOT NULL,
	note TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE kup_jobs (
	id INTEGER NOT NULL,
	file VARCHAR(512) NOT NULL,
	stage VARCHAR(64) NOT NULL,
	version VARCHAR(64) NOT NULL,
	state VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	last_reason TEXT,
	input_path TEXT,
	output_path TEXT,
	retry_at DATETIME,
	lease_until DATETIME,
	owner VARCHAR(128),
	created DATETIME NOT NULL,
	updated DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_kup_jobs_key UNIQUE (file, stage, version)
);

CREATE TABLE kup_monitor_history (
	id INTEGER NOT NULL,
	at DATETIME NOT NULL,
	stage VARCHAR(64) NOT NULL,
	queued INTEGER NOT NULL,
	running INTEGER NOT NULL,
	done INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	files_per_min FLOAT NOT NULL,
	failure_rate FLOAT,
	produced INTEGER,
	consumed INTEGER,
	lag INTEGER,
	lag_status VARCHAR(8),
	PRIMARY KEY (id)
);

CREATE INDEX ix_kup_monitor_history_at ON kup_monitor_history (at);

CREATE TABLE kup_outbox (
	id INTEGER NOT NULL,
	message_id VARCHAR(64) NOT NULL,
	topic VARCHAR(255) NOT NULL,
	"key" VARCHAR(512) NOT NULL,
	payload JSON NOT NULL,
	created DATETIME NOT NULL,
	published_at DATETIME,
	PRIMARY KEY (id),
	UNIQUE (message_id)
);

CREATE INDEX ix_kup_outbox_published_at ON kup_outbox (published_at);

CREATE TABLE kup_attempts (
	id INTEGER NOT NULL,
	job_id INTEGER NOT NULL,
	number INTEGER NOT NULL,
	worker VARCHAR(128),
	started DATETIME NOT NULL,
	ended DATETIME,
	exit_code INTEGER,
	log_path TEXT,
	reason TEXT,
	classification VARCHAR(16),
	PRIMARY KEY (id),
	FOREIGN KEY(job_id) REFERENCES kup_jobs (id)
);

CREATE INDEX ix_kup_attempts_job_id ON kup_attempts (job_id);
