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

ALTER TABLE data_keys DROP CONSTRAINT data_keys_purpose_check;
ALTER TABLE data_keys ADD CONSTRAINT data_keys_purpose_check
    CHECK (purpose IN ('contact', 'network', 'pii', 'totp', 'blind_index', 'jwt', 'content_hash'));

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
