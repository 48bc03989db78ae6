-- A rotation asked for by a console that does not hold the purpose (a role taken away, a
-- suspension, a purpose given up): the next console holding the purpose that signs in makes the
-- new version and starts the rotation, so nobody who lacks the purpose ever sees its new key.
CREATE TABLE rotation_requests (
    purpose       TEXT NOT NULL PRIMARY KEY
                  CHECK (purpose IN ('contact', 'network', 'blind_index', 'content_hash')),
    requested_by  TEXT,
    requested_at  BIGINT NOT NULL
);

-- Team mode: anyone who may take a purpose away asks; only a holder takes the request up.
ALTER TABLE rotation_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON rotation_requests FOR SELECT USING (TRUE);
CREATE POLICY team_ask ON rotation_requests FOR INSERT
    WITH CHECK (vigil_session_may('keys_manage') OR vigil_session_may('users_manage')
                OR vigil_session_may('roles_assign') OR vigil_session_holds(purpose));
CREATE POLICY team_take ON rotation_requests FOR DELETE
    USING (vigil_session_may('keys_manage') OR vigil_session_holds(purpose));

-- Taking a request up means starting that rotation in the same transaction (checked at commit),
-- so a holder cannot make a rotation someone asked for quietly go away.
CREATE FUNCTION vigil_rotation_request_taken() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT vigil_session_is_owner() AND NOT EXISTS (
        SELECT 1 FROM key_rotations
        WHERE purpose = OLD.purpose AND status = 'running'
          AND xmin::TEXT = (pg_current_xact_id()::TEXT::NUMERIC % 4294967296)::TEXT
    ) THEN
        RAISE EXCEPTION 'vigil: a rotation request is taken up only by starting the rotation'
            USING ERRCODE = '42501';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER rotation_request_taken AFTER DELETE ON rotation_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vigil_rotation_request_taken();
