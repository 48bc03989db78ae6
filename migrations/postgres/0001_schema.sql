-- Vigil logical schema (Postgres dialect). Kept in step with migrations/postgres by a test.
-- Conventions: ids are UUID text; flags are BOOLEAN here and INTEGER 0/1 on SQLite; times are UTC microseconds since the epoch (BIGINT);
-- *_enc columns hold field ciphertext only; *_bidx columns hold keyed blind indexes.

CREATE TABLE app_meta (
    key         TEXT NOT NULL PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- People: platform users, Vigil operators and service accounts share one table.
CREATE TABLE users (
    id                    TEXT NOT NULL PRIMARY KEY,
    username              TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('platform', 'operator', 'service')),
    status                TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'locked', 'deleted')),
    email_enc             BYTEA,
    email_bidx            BYTEA,
    phone_enc             BYTEA,
    pii_key_version       BIGINT,
    country               TEXT,
    must_change_password  BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled           BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins         BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    last_login_at         BIGINT,
    deleted_at            BIGINT
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE INDEX users_email_bidx_idx ON users (email_bidx);
CREATE INDEX users_kind_status_idx ON users (kind, status);

CREATE TABLE user_roles (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('user', 'moderator', 'compliance_officer', 'admin', 'service')),
    granted_at  BIGINT NOT NULL,
    granted_by  TEXT,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role);

CREATE TABLE credentials (
    user_id        TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    changed_at     BIGINT NOT NULL
);

CREATE TABLE mfa_secrets (
    user_id         TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc      BYTEA NOT NULL,
    key_version     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    last_used_step  BIGINT
);

CREATE TABLE backup_codes (
    id          TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX backup_codes_user_idx ON backup_codes (user_id);

-- A login that passed the password and still owes MFA: single use, short-lived.
CREATE TABLE login_challenges (
    id          TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    used_at     BIGINT
);
CREATE UNIQUE INDEX login_challenges_token_key ON login_challenges (token_hash);

CREATE TABLE sessions (
    id              TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client          TEXT NOT NULL,
    ip_enc          BYTEA,
    user_agent      TEXT,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    id           TEXT NOT NULL PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    family_id    TEXT NOT NULL,
    token_hash   BYTEA NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    rotated_at   BIGINT,
    revoked_at   BIGINT,
    replaced_by  TEXT
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE revoked_tokens (
    jti         TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT,
    reason      TEXT NOT NULL,
    revoked_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

-- Sliding-window throttling state shared by every console and worker on one database.
CREATE TABLE rate_limit_hits (
    id       TEXT NOT NULL PRIMARY KEY,
    scope    TEXT NOT NULL,
    subject  BYTEA NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX rate_limit_hits_window_idx ON rate_limit_hits (scope, subject, at);

-- Keys: operator key pairs (public half only) and wrapped, versioned data keys.
CREATE TABLE user_keys (
    id              TEXT NOT NULL PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    algorithm       TEXT NOT NULL,
    bits            BIGINT NOT NULL,
    public_key_der  BYTEA NOT NULL,
    fingerprint     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT
);
CREATE UNIQUE INDEX user_keys_fingerprint_key ON user_keys (fingerprint);
CREATE INDEX user_keys_user_idx ON user_keys (user_id);

CREATE TABLE data_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('pii', 'totp', 'blind_index', 'jwt', 'content_hash')),
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'rotating_out', 'retired')),
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX data_keys_purpose_version_key ON data_keys (purpose, version);

CREATE TABLE key_grants (
    data_key_id  TEXT NOT NULL REFERENCES data_keys (id) ON DELETE CASCADE,
    user_key_id  TEXT NOT NULL REFERENCES user_keys (id) ON DELETE CASCADE,
    wrapped_key  BYTEA NOT NULL,
    granted_at   BIGINT NOT NULL,
    granted_by   TEXT,
    PRIMARY KEY (data_key_id, user_key_id)
);
CREATE INDEX key_grants_user_key_idx ON key_grants (user_key_id);

CREATE TABLE key_rotations (
    id            TEXT NOT NULL PRIMARY KEY,
    purpose       TEXT NOT NULL,
    from_version  BIGINT NOT NULL,
    to_version    BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    cursor        TEXT,
    rows_done     BIGINT NOT NULL DEFAULT 0,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT
);

-- The platform's content.
CREATE TABLE events (
    id          TEXT NOT NULL PRIMARY KEY,
    title       TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE comments (
    id               TEXT NOT NULL PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    author_id        TEXT REFERENCES users (id) ON DELETE SET NULL,
    parent_id        TEXT,
    is_private       BOOLEAN NOT NULL DEFAULT FALSE,
    body             TEXT,
    body_envelope    BYTEA,
    content_hash     BYTEA,
    created_at       BIGINT NOT NULL,
    edited_at        BIGINT,
    deleted_at       BIGINT,
    deleted_by       TEXT,
    deletion_reason  TEXT
);
CREATE INDEX comments_event_created_idx ON comments (event_id, created_at);
CREATE INDEX comments_author_idx ON comments (author_id);
CREATE INDEX comments_created_idx ON comments (created_at);

-- Recipients of an end-to-end encrypted comment: the content key wrapped for each.
CREATE TABLE comment_recipients (
    comment_id       TEXT NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    recipient_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_fingerprint  TEXT NOT NULL,
    wrapped_key      BYTEA NOT NULL,
    PRIMARY KEY (comment_id, recipient_id)
);
CREATE INDEX comment_recipients_recipient_idx ON comment_recipients (recipient_id);

CREATE TABLE reactions (
    id          TEXT NOT NULL PRIMARY KEY,
    comment_id  TEXT NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX reactions_once_key ON reactions (comment_id, user_id, kind);
CREATE INDEX reactions_user_idx ON reactions (user_id);

-- What people did on the platform (and in Vigil): the monitoring module's input.
CREATE TABLE activity_log (
    id               TEXT NOT NULL PRIMARY KEY,
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason           TEXT,
    occurred_at      BIGINT NOT NULL,
    ingested_at      BIGINT NOT NULL,
    ip_enc           BYTEA,
    ip_bidx          BYTEA,
    pii_key_version  BIGINT,
    user_agent       TEXT,
    country          TEXT,
    ref_id           TEXT,
    details          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX activity_log_user_time_idx ON activity_log (user_id, occurred_at);
CREATE INDEX activity_log_time_idx ON activity_log (occurred_at);
CREATE INDEX activity_log_ip_time_idx ON activity_log (ip_bidx, occurred_at);
CREATE INDEX activity_log_ingested_idx ON activity_log (ingested_at);

CREATE TABLE monitor_checkpoints (
    name        TEXT NOT NULL PRIMARY KEY,
    position    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE ip_blocks (
    id           TEXT NOT NULL PRIMARY KEY,
    ip           TEXT NOT NULL,
    reason       TEXT NOT NULL,
    incident_id  TEXT,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    lifted_at    BIGINT,
    lifted_by    TEXT
);
CREATE INDEX ip_blocks_ip_idx ON ip_blocks (ip);

CREATE TABLE user_restrictions (
    id           TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    incident_id  TEXT,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    lifted_at    BIGINT,
    lifted_by    TEXT
);
CREATE INDEX user_restrictions_user_idx ON user_restrictions (user_id);

-- Incidents and the moderator's work on them.
CREATE TABLE incidents (
    id              TEXT NOT NULL PRIMARY KEY,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status          TEXT NOT NULL CHECK (status IN ('open', 'investigating', 'resolved', 'dismissed')),
    user_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    source_ip_enc   BYTEA,
    source_ip_bidx  BYTEA,
    assignee_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    dedup_key       TEXT NOT NULL,
    summary         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    resolved_at     BIGINT
);
CREATE INDEX incidents_queue_idx ON incidents (status, severity, created_at);
CREATE INDEX incidents_dedup_idx ON incidents (dedup_key, status);
CREATE INDEX incidents_user_idx ON incidents (user_id);

CREATE TABLE incident_evidence (
    id           TEXT NOT NULL PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    ref_id       TEXT,
    rule         TEXT,
    added_at     BIGINT NOT NULL
);
CREATE INDEX incident_evidence_incident_idx ON incident_evidence (incident_id);

CREATE TABLE incident_actions (
    id           TEXT NOT NULL PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    action       TEXT NOT NULL,
    actor_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    automated    BOOLEAN NOT NULL,
    details      TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    reversed_at  BIGINT,
    reversed_by  TEXT
);
CREATE INDEX incident_actions_incident_idx ON incident_actions (incident_id);

CREATE TABLE notifications (
    id            TEXT NOT NULL PRIMARY KEY,
    kind          TEXT NOT NULL,
    recipient_id  TEXT REFERENCES users (id) ON DELETE CASCADE,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX notifications_pending_idx ON notifications (sent_at, created_at);

-- Holds that keep records from retention cleanup and erasure.
CREATE TABLE legal_holds (
    id           TEXT NOT NULL PRIMARY KEY,
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('user', 'incident')),
    target_id    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    released_at  BIGINT,
    released_by  TEXT
);
CREATE INDEX legal_holds_target_idx ON legal_holds (target_kind, target_id);

-- Data-subject requests (GDPR Art. 15-17, 20).
CREATE TABLE dsr_requests (
    id                       TEXT NOT NULL PRIMARY KEY,
    kind                     TEXT NOT NULL CHECK (kind IN ('access', 'portability', 'erasure', 'rectification')),
    status                   TEXT NOT NULL CHECK (status IN ('received', 'verifying', 'verified', 'in_progress', 'completed', 'rejected', 'withdrawn')),
    subject_id               TEXT REFERENCES users (id) ON DELETE SET NULL,
    subject_email_bidx       BYTEA,
    received_at              BIGINT NOT NULL,
    due_at                   BIGINT NOT NULL,
    extended_due_at          BIGINT,
    extension_reason         TEXT,
    verification_method      TEXT,
    verification_code_hash   TEXT,
    verification_expires_at  BIGINT,
    verification_attempts    BIGINT NOT NULL DEFAULT 0,
    verified_at              BIGINT,
    completed_at             BIGINT,
    rejected_reason          TEXT,
    created_by               TEXT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE INDEX dsr_requests_status_due_idx ON dsr_requests (status, due_at);
CREATE INDEX dsr_requests_subject_idx ON dsr_requests (subject_id);

CREATE TABLE dsr_steps (
    id             TEXT NOT NULL PRIMARY KEY,
    request_id     TEXT NOT NULL REFERENCES dsr_requests (id) ON DELETE CASCADE,
    step_no        BIGINT NOT NULL,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
    rows_affected  BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT,
    finished_at    BIGINT,
    error          TEXT
);
CREATE UNIQUE INDEX dsr_steps_order_key ON dsr_steps (request_id, step_no);

CREATE TABLE dsr_artifacts (
    id          TEXT NOT NULL PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES dsr_requests (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX dsr_artifacts_request_idx ON dsr_artifacts (request_id);

-- Retention.
CREATE TABLE retention_policies (
    category     TEXT NOT NULL PRIMARY KEY,
    period_days  BIGINT NOT NULL CHECK (period_days > 0),
    action       TEXT NOT NULL CHECK (action IN ('delete', 'anonymize', 'archive')),
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT
);

CREATE TABLE retention_runs (
    id           TEXT NOT NULL PRIMARY KEY,
    policy       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_by   TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    cursor       TEXT,
    counts       TEXT NOT NULL DEFAULT '{}',
    errors       TEXT
);
CREATE INDEX retention_runs_started_idx ON retention_runs (started_at);

-- The audit chain: hash = SHA-256(prev_hash || canonical(row)). Append-only.
CREATE TABLE audit_log (
    seq        BIGINT NOT NULL PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    details    TEXT NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The chain's head, one row. Appenders lock it, which serialises them on every backend.
-- archived_through_seq/archived_hash: where the live chain starts once older entries are archived.
CREATE TABLE audit_head (
    id                    BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq                   BIGINT NOT NULL,
    hash                  BYTEA NOT NULL,
    archived_through_seq  BIGINT NOT NULL DEFAULT 0,
    archived_hash         BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash, archived_through_seq, archived_hash)
VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
