-- Retention. Each category is cleaned in (time, key) order a chunk at a time, so every
-- category's table gets that index (replacing a time-only one where the new one covers it).
DROP INDEX activity_log_time_idx;
-- No query looks activity up by address (the detectors group by address in memory), and an
-- index in address order makes every insert and every retention delete touch a random page.
DROP INDEX activity_log_ip_time_idx;
DROP INDEX comments_created_idx;
CREATE INDEX comments_created_id_idx ON comments (created_at, id);
DROP INDEX sessions_expires_idx;
CREATE INDEX sessions_expires_id_idx ON sessions (expires_at, id);
DROP INDEX revoked_tokens_expires_idx;
CREATE INDEX revoked_tokens_expires_jti_idx ON revoked_tokens (expires_at, jti);
CREATE INDEX login_challenges_expires_idx ON login_challenges (expires_at, id);
CREATE INDEX users_deleted_idx ON users (deleted_at, id);

-- The policies start at the defaults: comments anonymised after 5 years, activity deleted
-- after 90 days, ended sessions and expired tokens after 30, the audit log archived after 7
-- years, deleted accounts removed for good 30 days after deletion.
INSERT INTO retention_policies (category, period_days, action, enabled, updated_at, updated_by) VALUES
    ('comments', 1825, 'anonymize', TRUE, 0, NULL),
    ('activity', 90, 'delete', TRUE, 0, NULL),
    ('sessions', 30, 'delete', TRUE, 0, NULL),
    ('audit', 2555, 'archive', TRUE, 0, NULL),
    ('deleted_users', 30, 'delete', TRUE, 0, NULL);

-- A run's progress: which policies it covers, the time it judges against and where it is, so
-- a run cut short resumes where it stopped.
ALTER TABLE retention_runs ADD COLUMN as_of BIGINT;
CREATE INDEX retention_runs_status_idx ON retention_runs (status, started_at);
