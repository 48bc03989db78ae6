-- Security events: authorization denials, token failures, refreshes, logouts, session expiry and
-- locks (src/security_events). Append-only: no group role may INSERT, UPDATE or DELETE rows;
-- an operator's login appends through vigil_security_event_append, only as itself.
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

-- The one way an operator records a security event: as their own account, a system step, or
-- nobody (a token whose signer is not known yet), stamped with the server's clock.
CREATE FUNCTION vigil_security_event_append(p_id TEXT, p_kind TEXT, p_actor TEXT,
    p_attempted TEXT, p_outcome TEXT, p_session_id TEXT, p_details TEXT, p_at BIGINT)
RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_at BIGINT := p_at;
    v_own TEXT;
BEGIN
    IF NOT vigil_session_is_owner() THEN
        v_own := vigil_session_user_id();
        IF v_own IS NULL THEN
            RAISE EXCEPTION 'vigil: % is not an operator''s database login', session_user
                USING ERRCODE = '42501';
        END IF;
        IF p_actor IS NOT NULL AND p_actor <> ('user:' || v_own) AND p_actor NOT LIKE 'system:%' THEN
            RAISE EXCEPTION 'vigil: an operator records security events only as themselves'
                USING ERRCODE = '42501';
        END IF;
        v_at := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    END IF;
    INSERT INTO security_events (id, at, kind, actor, attempted, outcome, session_id, details)
    VALUES (p_id, v_at, p_kind, p_actor, p_attempted, p_outcome, p_session_id, p_details);
END
$$;

-- Audit entries say how the action ended and in which session (both hashed onto the chain
-- when set; see src/audit canonical_bytes).
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';
ALTER TABLE audit_log ADD COLUMN session_id TEXT;

DROP FUNCTION vigil_audit_append(TEXT, TEXT, TEXT, TEXT, BIGINT);
CREATE FUNCTION vigil_audit_append(p_actor TEXT, p_action TEXT, p_target TEXT, p_details TEXT,
    p_at BIGINT, p_outcome TEXT, p_session_id TEXT)
RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_seq BIGINT;
    v_prev BYTEA;
    v_hash BYTEA;
    v_at BIGINT := p_at;
    v_own TEXT;
BEGIN
    IF NOT vigil_session_is_owner() THEN
        v_own := vigil_session_user_id();
        IF v_own IS NULL THEN
            RAISE EXCEPTION 'vigil: % is not an operator''s database login', session_user
                USING ERRCODE = '42501';
        END IF;
        IF p_actor <> ('user:' || v_own) AND p_actor NOT LIKE 'system:%' THEN
            RAISE EXCEPTION 'vigil: an operator appends audit entries only as themselves'
                USING ERRCODE = '42501';
        END IF;
        v_at := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    END IF;
    UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    v_hash := sha256(v_prev
        || convert_to('vigil-audit-v1', 'UTF8') || '\x00'::BYTEA
        || int8send(v_seq) || int8send(v_at)
        || vigil_audit_text(p_actor) || vigil_audit_text(p_action)
        || CASE WHEN p_target IS NULL THEN '\x00'::BYTEA
                ELSE '\x01'::BYTEA || vigil_audit_text(p_target) END
        || vigil_audit_text(p_details)
        -- The outcome and session tail, present only when either differs from the default,
        -- so entries written before them hash as they always did.
        || CASE WHEN p_outcome = 'success' AND p_session_id IS NULL THEN ''::BYTEA
                ELSE '\x01'::BYTEA || vigil_audit_text(p_outcome)
                     || CASE WHEN p_session_id IS NULL THEN '\x00'::BYTEA
                             ELSE '\x01'::BYTEA || vigil_audit_text(p_session_id) END END);
    INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash, outcome, session_id)
    VALUES (v_seq, v_at, p_actor, p_action, p_target, p_details, v_prev, v_hash, p_outcome, p_session_id);
    UPDATE audit_head SET hash = v_hash WHERE id = 1;
    RETURN v_seq;
END
$$;
