-- Notices to operators of security changes to their own account (issue 19, item 10): shown in
-- the app at their next sign-in until dismissed, and queued in the outbox (`notifications`) for
-- mail delivery (issue 22). A notice holds no secret and no address: its kind, when, and who
-- made the change when it was someone else.
CREATE TABLE operator_notices (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('password_changed', 'password_reset', 'mfa_enabled',
                      'mfa_disabled', 'mfa_reset', 'backup_codes_regenerated', 'new_machine')),
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    dismissed_at  BIGINT
);
CREATE INDEX operator_notices_user_idx ON operator_notices (user_id, dismissed_at, created_at);

-- The outbox gains what delivery needs: the message's template, its state and when it is next
-- tried. A message names its recipient by account id only; the address is opened at send time.
ALTER TABLE notifications ADD COLUMN template TEXT;
ALTER TABLE notifications ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'sent', 'failed', 'cancelled'));
ALTER TABLE notifications ADD COLUMN next_attempt_at BIGINT;
UPDATE notifications SET state = 'sent' WHERE sent_at IS NOT NULL;
UPDATE notifications SET next_attempt_at = created_at WHERE sent_at IS NULL;
CREATE INDEX notifications_due_idx ON notifications (state, next_attempt_at);

-- Team mode: an operator reads and dismisses only their own notices; notices and their outbox
-- messages are added only through vigil_notice_add, stamped with the server's clock. An
-- operator adds notices for themselves; one for another operator (an administrator's password
-- or MFA reset) needs the users_manage permission.
ALTER TABLE operator_notices ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_own_read ON operator_notices FOR SELECT USING (user_id = vigil_session_user_id());
CREATE POLICY team_own_dismiss ON operator_notices FOR UPDATE
    USING (user_id = vigil_session_user_id()) WITH CHECK (user_id = vigil_session_user_id());

CREATE FUNCTION vigil_notice_add(p_id TEXT, p_user TEXT, p_kind TEXT, p_details TEXT, p_at BIGINT)
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
        IF p_user IS DISTINCT FROM v_own AND NOT (
            vigil_session_may('users_manage')
            AND p_kind IN ('password_reset', 'mfa_disabled', 'mfa_reset')
        ) THEN
            RAISE EXCEPTION 'vigil: an operator adds notices only for themselves'
                USING ERRCODE = '42501';
        END IF;
        v_at := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
    END IF;
    INSERT INTO operator_notices (id, user_id, kind, details, created_at)
    VALUES (p_id, p_user, p_kind, p_details, v_at);
    INSERT INTO notifications (id, kind, recipient_id, payload, created_at, template, state,
                               next_attempt_at)
    VALUES (p_id, 'operator_notice', p_user,
            json_build_object('notice_id', p_id, 'kind', p_kind,
                              'details', p_details::json)::text,
            v_at, 'operator_notice/' || p_kind, 'queued', v_at);
END
$$;
REVOKE ALL ON FUNCTION vigil_notice_add(TEXT, TEXT, TEXT, TEXT, BIGINT) FROM PUBLIC;
