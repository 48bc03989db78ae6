-- A rotation asked for by a console that does not hold the purpose (a role taken away, a
-- suspension, a purpose given up): the next console holding the purpose that signs in makes the
-- new version and starts the rotation, so nobody who lacks the purpose ever sees its new key.
CREATE TABLE rotation_requests (
    purpose       TEXT NOT NULL PRIMARY KEY
                  CHECK (purpose IN ('contact', 'network', 'blind_index', 'content_hash')),
    requested_by  TEXT,
    requested_at  BIGINT NOT NULL
);
