-- Security events: authorization denials, token failures, refreshes, logouts, session expiry and
-- locks (src/security_events). Append-only: nothing in Vigil updates or deletes a row, and in
-- team mode (Postgres) no operator's login may either.
CREATE TABLE security_events (
    id          TEXT NOT NULL PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT,
    attempted   TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    session_id  TEXT,
    details     TEXT NOT NULL
);
CREATE INDEX security_events_at_idx ON security_events (at);
CREATE INDEX security_events_actor_idx ON security_events (actor, at);

-- Audit entries say how the action ended and in which session (both hashed onto the chain
-- when set; see src/audit canonical_bytes).
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';
ALTER TABLE audit_log ADD COLUMN session_id TEXT;
