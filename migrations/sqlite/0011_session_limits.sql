-- Sessions end on their own: each session keeps the idle timeout it was opened with (its
-- absolute end is `expires_at`); verification and refresh refuse a session not used for that
-- long. `last_seen_at` is moved forward at most about once a minute.
ALTER TABLE sessions ADD COLUMN idle_timeout_secs BIGINT NOT NULL DEFAULT 900;
