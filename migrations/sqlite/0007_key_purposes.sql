-- Keys follow roles. The `pii` purpose splits into `contact` (email, phone, and an erasure's
-- working record) and `network` (IP addresses kept with a person). New values record the version
-- of their own purpose; rows an older version sealed keep `pii_key_version` until
-- `vigil keys split-pii` re-seals them. An incident's source address now records its versions
-- too, so rotation finds it.
ALTER TABLE users ADD COLUMN contact_key_version BIGINT;
ALTER TABLE activity_log ADD COLUMN network_key_version BIGINT;
ALTER TABLE incidents ADD COLUMN network_key_version BIGINT;
ALTER TABLE incidents ADD COLUMN bidx_key_version BIGINT;
ALTER TABLE dsr_requests ADD COLUMN contact_key_version BIGINT;

-- The purposes a data key may have. SQLite changes a CHECK only by rebuilding the table; the
-- grants that reference it are rebuilt with it (renaming the parent first repoints them, so no
-- cascade deletes a grant).
ALTER TABLE data_keys RENAME TO data_keys_old;
DROP INDEX data_keys_purpose_version_key;
CREATE TABLE data_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('contact', 'network', 'pii', 'totp', 'blind_index', 'jwt', 'content_hash')),
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'rotating_out', 'retired')),
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
INSERT INTO data_keys SELECT id, purpose, version, status, created_at, retired_at FROM data_keys_old;
CREATE UNIQUE INDEX data_keys_purpose_version_key ON data_keys (purpose, version);

ALTER TABLE key_grants RENAME TO key_grants_old;
DROP INDEX key_grants_user_key_idx;
CREATE TABLE key_grants (
    data_key_id  TEXT NOT NULL REFERENCES data_keys (id) ON DELETE CASCADE,
    user_key_id  TEXT NOT NULL REFERENCES user_keys (id) ON DELETE CASCADE,
    wrapped_key  BLOB NOT NULL,
    granted_at   BIGINT NOT NULL,
    granted_by   TEXT,
    PRIMARY KEY (data_key_id, user_key_id)
);
INSERT INTO key_grants SELECT data_key_id, user_key_id, wrapped_key, granted_at, granted_by FROM key_grants_old;
CREATE INDEX key_grants_user_key_idx ON key_grants (user_key_id);
DROP TABLE key_grants_old;
DROP TABLE data_keys_old;

-- Grants an administrator ordered for a purpose they do not hold themselves: completed (wrapped)
-- by the next console or worker that holds the purpose and signs in.
CREATE TABLE pending_grants (
    user_key_id   TEXT NOT NULL REFERENCES user_keys (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL CHECK (purpose IN ('contact', 'network', 'totp', 'blind_index', 'jwt', 'content_hash')),
    requested_by  TEXT,
    requested_at  BIGINT NOT NULL,
    PRIMARY KEY (user_key_id, purpose)
);

-- The first administrator holds every purpose until they relinquish the ones their role does
-- not. On a database made before this version, that is the earliest administrator.
INSERT INTO app_meta (key, value, updated_at)
SELECT 'first_admin', u.id, u.created_at FROM users u
JOIN user_roles r ON r.user_id = u.id AND r.role = 'admin'
ORDER BY u.created_at, u.id LIMIT 1
ON CONFLICT (key) DO NOTHING;
