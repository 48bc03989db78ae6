-- Team mode: Postgres enforces the rights (Postgres only; migrations/sqlite/0009 is a no-op).
--
-- Each Vigil role has a NOLOGIN group role, `<prefix>_<role>`; each operator who connects to
-- the database gets a LOGIN role of their own, `<prefix>_u_<username>`, member of the groups
-- of exactly their Vigil roles while their account is active. Role names are cluster-wide,
-- so the prefix is per database (recorded in app_meta, so a database restored under another
-- name keeps its roles' names). Table privileges per group are granted by `vigil migrate`
-- from the permission table in src/rbac (store::team), not here. The owner running this needs
-- CREATEROLE (and pg_signal_backend, to end a suspended operator's connections).

-- Which database login belongs to which Vigil account.
CREATE TABLE operator_logins (
    user_id     TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    db_role     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX operator_logins_db_role_key ON operator_logins (db_role);

INSERT INTO app_meta (key, value, updated_at)
SELECT 'team_role_prefix',
       CASE WHEN length(n) <= 24 THEN n
            ELSE left(n, 20) || '_' || left(md5(current_database()), 6) END,
       0
FROM (SELECT regexp_replace(lower(current_database()), '[^a-z0-9_]', '_', 'g') AS n) AS db
ON CONFLICT (key) DO NOTHING;

-- The group role of a Vigil role in this database.
CREATE FUNCTION vigil_group(vigil_role TEXT) RETURNS TEXT
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT value || '_' || vigil_role FROM app_meta WHERE key = 'team_role_prefix'
$$;

-- An owner without CREATEROLE (a database set up before team mode) still migrates: team mode
-- stays off, and `vigil migrate` creates the groups once the owner may.
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['moderator', 'compliance_officer', 'admin', 'service'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = vigil_group(r)) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', vigil_group(r));
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'vigil: the database owner may not create roles (CREATEROLE); team mode is off until it may';
END
$$;

-- Whether the session's login is the database owner (or a superuser). The session's login,
-- not the current role: SET ROLE does not change session_user, and inside a SECURITY DEFINER
-- function current_user is the function's owner.
CREATE FUNCTION vigil_session_is_owner() RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE(bool_or(r.rolsuper OR pg_has_role(session_user, d.datdba, 'MEMBER')), FALSE)
    FROM pg_roles r, pg_database d
    WHERE r.rolname = session_user AND d.datname = current_database()
$$;

-- The Vigil account whose database login this session is, if any.
CREATE FUNCTION vigil_session_user_id() RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT user_id FROM operator_logins WHERE db_role = session_user
$$;

-- Whether the session's login holds a Vigil permission through its groups. `vigil migrate`
-- replaces this body with one generated from the permission table (store::team); until then
-- only the owner passes.
CREATE FUNCTION vigil_session_may(permission TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT vigil_session_is_owner()
$$;

-- A text as the audit chain's canonical encoding writes it: u32 BE byte length, UTF-8 bytes.
CREATE FUNCTION vigil_audit_text(t TEXT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT int4send(octet_length(convert_to(t, 'UTF8'))) || convert_to(t, 'UTF8')
$$;

-- The one way an operator adds to the audit log: takes the head under its row lock, hashes
-- the entry as src/audit's canonical_bytes does, and appends it. An operator's login may
-- write entries only as its own account (or a system job), stamped with the server's clock.
CREATE FUNCTION vigil_audit_append(p_actor TEXT, p_action TEXT, p_target TEXT, p_details TEXT, p_at BIGINT)
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
        || vigil_audit_text(p_details));
    INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)
    VALUES (v_seq, v_at, p_actor, p_action, p_target, p_details, v_prev, v_hash);
    UPDATE audit_head SET hash = v_hash WHERE id = 1;
    RETURN v_seq;
END
$$;

-- Archiving: moves the live chain's start past entries already written to an archive
-- segment and deletes them. Only a holder of the retention permission.
CREATE FUNCTION vigil_audit_retire(p_first BIGINT, p_last BIGINT, p_last_hash BYTEA)
RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_moved INTEGER;
BEGIN
    IF NOT vigil_session_may('retention_manage') THEN
        RAISE EXCEPTION 'vigil: archiving the audit log needs the retention permission'
            USING ERRCODE = '42501';
    END IF;
    UPDATE audit_head SET archived_through_seq = p_last, archived_hash = p_last_hash
    WHERE id = 1 AND archived_through_seq = p_first - 1;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved = 0 THEN
        RETURN FALSE;
    END IF;
    DELETE FROM audit_log WHERE seq >= p_first AND seq <= p_last;
    RETURN TRUE;
END
$$;

-- A password hash and the credential key sealed with it, for sign-in: only the session's own
-- account's (the database login already says who is signing in), or any to the owner.
CREATE FUNCTION vigil_password_hash(p_user_id TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.password_hash FROM credentials c
    WHERE c.user_id = p_user_id
      AND (vigil_session_is_owner() OR p_user_id = vigil_session_user_id())
$$;
CREATE FUNCTION vigil_credential_key(p_user_id TEXT) RETURNS BYTEA
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.credential_key_sealed FROM credentials c
    WHERE c.user_id = p_user_id
      AND (vigil_session_is_owner() OR p_user_id = vigil_session_user_id())
$$;

-- Sets (or first stores) an account's password hash and the credential key sealed with it (none
-- after an administrator's reset): one's own, or anyone's with the account-management permission.
CREATE FUNCTION vigil_set_password(p_user_id TEXT, p_hash TEXT, p_credential_key BYTEA,
                                   p_must_change BOOLEAN, p_at BIGINT)
RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT (vigil_session_may('users_manage') OR p_user_id = vigil_session_user_id()) THEN
        RAISE EXCEPTION 'vigil: only the account''s owner or an administrator sets its password'
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO credentials (user_id, password_hash, credential_key_sealed, changed_at)
    VALUES (p_user_id, p_hash, p_credential_key, p_at)
    ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                                        credential_key_sealed = EXCLUDED.credential_key_sealed,
                                        changed_at = EXCLUDED.changed_at;
    UPDATE users SET must_change_password = p_must_change, failed_logins = 0,
                     locked_until = NULL, updated_at = p_at
    WHERE id = p_user_id;
END
$$;

-- Stores one's own credential key (made at sign-in), if the password is still p_hash and the
-- sealed key still p_replaces; false if either changed meanwhile. Nobody stores another's.
CREATE FUNCTION vigil_set_credential_key(p_user_id TEXT, p_hash TEXT, p_replaces BYTEA,
                                         p_sealed BYTEA)
RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_moved INTEGER;
BEGIN
    IF NOT (vigil_session_is_owner() OR p_user_id = vigil_session_user_id()) THEN
        RAISE EXCEPTION 'vigil: only the account''s owner stores its credential key'
            USING ERRCODE = '42501';
    END IF;
    UPDATE credentials SET credential_key_sealed = p_sealed
    WHERE user_id = p_user_id AND password_hash = p_hash
      AND credential_key_sealed IS NOT DISTINCT FROM p_replaces;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved = 1;
END
$$;

-- Makes an account's database login mirror its Vigil state: member of the groups of its roles
-- while active (or only locked out), NOLOGIN and in no group otherwise. Runs from triggers, so
-- the change commits or rolls back with the Vigil change that caused it.
CREATE FUNCTION vigil_sync_login(p_user_id TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_login TEXT;
    v_status TEXT;
    v_member BOOLEAN;
    v_want BOOLEAN;
    r TEXT;
BEGIN
    SELECT db_role INTO v_login FROM operator_logins WHERE user_id = p_user_id;
    IF v_login IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_login) THEN
        RETURN;
    END IF;
    SELECT status INTO v_status FROM users WHERE id = p_user_id;
    FOREACH r IN ARRAY ARRAY['moderator', 'compliance_officer', 'admin', 'service'] LOOP
        v_want := v_status IN ('active', 'locked')
            AND EXISTS (SELECT 1 FROM user_roles WHERE user_id = p_user_id AND role = r);
        v_member := EXISTS (
            SELECT 1 FROM pg_auth_members m
            JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
            WHERE g.rolname = vigil_group(r) AND u.rolname = v_login);
        IF v_want AND NOT v_member THEN
            EXECUTE format('GRANT %I TO %I', vigil_group(r), v_login);
        ELSIF v_member AND NOT v_want THEN
            EXECUTE format('REVOKE %I FROM %I', vigil_group(r), v_login);
        END IF;
    END LOOP;
    IF v_status IN ('active', 'locked') THEN
        EXECUTE format('ALTER ROLE %I LOGIN', v_login);
    ELSE
        EXECUTE format('ALTER ROLE %I NOLOGIN', v_login);
    END IF;
END
$$;

CREATE FUNCTION vigil_sync_login_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM vigil_sync_login(NEW.id);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM vigil_sync_login(OLD.user_id);
    ELSE
        PERFORM vigil_sync_login(NEW.user_id);
        IF TG_OP = 'UPDATE' AND OLD.user_id <> NEW.user_id THEN
            PERFORM vigil_sync_login(OLD.user_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER team_sync_roles AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION vigil_sync_login_trigger();
CREATE TRIGGER team_sync_status AFTER UPDATE OF status ON users
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION vigil_sync_login_trigger();
CREATE TRIGGER team_sync_login AFTER INSERT ON operator_logins
    FOR EACH ROW EXECUTE FUNCTION vigil_sync_login_trigger();

-- An account removed for good: its login may no longer connect and leaves every group (the
-- role itself stays for the database administrator to drop).
CREATE FUNCTION vigil_login_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r TEXT;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = OLD.db_role) THEN
        FOREACH r IN ARRAY ARRAY['moderator', 'compliance_officer', 'admin', 'service'] LOOP
            IF EXISTS (SELECT 1 FROM pg_auth_members m
                       JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                       WHERE g.rolname = vigil_group(r) AND u.rolname = OLD.db_role) THEN
                EXECUTE format('REVOKE %I FROM %I', vigil_group(r), OLD.db_role);
            END IF;
        END LOOP;
        EXECUTE format('ALTER ROLE %I NOLOGIN', OLD.db_role);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER team_login_removed AFTER DELETE ON operator_logins
    FOR EACH ROW EXECUTE FUNCTION vigil_login_removed();

-- Creates an operator's database login, or gives an existing one a new password. Takes a
-- SCRAM-SHA-256 verifier, never a password, so the server does not see the password. Needs the
-- account-management permission. Returns the login's name.
CREATE FUNCTION vigil_create_login(p_user_id TEXT, p_verifier TEXT, p_at BIGINT) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_username TEXT;
    v_login TEXT;
BEGIN
    IF NOT vigil_session_may('users_manage') THEN
        RAISE EXCEPTION 'vigil: creating a database login needs the account-management permission'
            USING ERRCODE = '42501';
    END IF;
    IF p_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'vigil: a database login takes a SCRAM-SHA-256 verifier, not a password'
            USING ERRCODE = '22023';
    END IF;
    SELECT username INTO v_username FROM users
    WHERE id = p_user_id AND kind IN ('operator', 'service') AND status <> 'deleted';
    IF v_username IS NULL THEN
        RAISE EXCEPTION 'vigil: no such operator' USING ERRCODE = '22023';
    END IF;
    SELECT db_role INTO v_login FROM operator_logins WHERE user_id = p_user_id;
    IF v_login IS NULL THEN
        v_login := vigil_group('u') || '_' || v_username;
        IF octet_length(v_login) > 63 THEN
            v_login := left(v_login, 54) || '_' || left(md5(p_user_id), 8);
        END IF;
        -- Never take over a role this database did not make for this account.
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_login) THEN
            RAISE EXCEPTION 'vigil: a database role named % exists already', v_login
                USING ERRCODE = '42710';
        END IF;
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', v_login, p_verifier);
        INSERT INTO operator_logins (user_id, db_role, created_at) VALUES (p_user_id, v_login, p_at);
    ELSE
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_login) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', v_login, p_verifier);
        ELSE
            EXECUTE format('ALTER ROLE %I PASSWORD %L', v_login, p_verifier);
        END IF;
        PERFORM vigil_sync_login(p_user_id);
    END IF;
    RETURN v_login;
END
$$;

-- Ends the open connections of an account that may no longer act (suspended or deleted).
-- Needs the account-management permission. Returns how many were ended.
CREATE FUNCTION vigil_end_connections(p_user_id TEXT) RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_login TEXT;
    v_ended INTEGER;
    v_pid INTEGER;
BEGIN
    IF NOT vigil_session_may('users_manage') THEN
        RAISE EXCEPTION 'vigil: ending connections needs the account-management permission'
            USING ERRCODE = '42501';
    END IF;
    SELECT l.db_role INTO v_login FROM operator_logins l JOIN users u ON u.id = l.user_id
    WHERE l.user_id = p_user_id AND u.status NOT IN ('active', 'locked');
    IF v_login IS NULL THEN
        RETURN 0;
    END IF;
    -- One backend at a time in a loop: in a single WHERE clause the planner may call
    -- pg_terminate_backend before the filters, on everyone's connections.
    v_ended := 0;
    FOR v_pid IN SELECT pid FROM pg_stat_activity
                 WHERE usename = v_login AND pid <> pg_backend_pid() LOOP
        IF pg_terminate_backend(v_pid) THEN
            v_ended := v_ended + 1;
        END IF;
    END LOOP;
    RETURN v_ended;
END
$$;

-- The auth-epoch trigger writes a table operators may not write themselves.
ALTER FUNCTION bump_auth_epoch() SECURITY DEFINER SET search_path = public, pg_temp;

-- Row-level rules for the tables whose rows are people's accounts. They bind operators' logins
-- only: the owner (migrations, `vigil init`, the existing single-login setups) and superusers
-- bypass row-level security. Column and table privileges come on top (store::team).
CREATE FUNCTION vigil_is_platform_account(p_user_id TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE id = p_user_id AND kind = 'platform')
$$;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON users FOR SELECT USING (TRUE);
-- Operators' and service accounts are made and changed by account managers; anyone whose
-- permissions let them write platform accounts (ingestion, erasure, incident responses) may
-- write only those; everyone keeps their own sign-in bookkeeping.
CREATE POLICY team_insert ON users FOR INSERT
    WITH CHECK (kind = 'platform' OR vigil_session_may('users_manage'));
CREATE POLICY team_update ON users FOR UPDATE
    USING (kind = 'platform' OR id = vigil_session_user_id() OR vigil_session_may('users_manage'))
    WITH CHECK (kind = 'platform' OR id = vigil_session_user_id() OR vigil_session_may('users_manage'));
CREATE POLICY team_delete ON users FOR DELETE
    USING (kind = 'platform' OR vigil_session_may('users_manage'));

-- Row-level security cannot compare a row before and after: this trigger keeps everyone but
-- account managers to the sign-in bookkeeping columns of an operator's or service account's
-- row (their own, as the policy above allows), so a column grant meant for platform accounts
-- (status, for incident responses) does not let anyone reinstate or re-kind an operator.
-- It runs as the invoker, so a change made inside one of the definer functions above (which
-- check the caller themselves: `vigil_set_password` for one's own password) runs as the owner
-- and passes.
CREATE FUNCTION vigil_guard_operator_row() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    bookkeeping CONSTANT TEXT[] := ARRAY['failed_logins', 'locked_until', 'last_login_at',
                                        'mfa_enabled', 'updated_at'];
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    IF (OLD.kind <> 'platform' OR NEW.kind <> 'platform')
       AND NOT vigil_session_is_owner() AND NOT vigil_session_may('users_manage')
       AND (to_jsonb(NEW) - bookkeeping) IS DISTINCT FROM (to_jsonb(OLD) - bookkeeping) THEN
        RAISE EXCEPTION 'vigil: only an account manager changes an operator''s account'
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER team_guard_operator_row BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION vigil_guard_operator_row();

ALTER TABLE user_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON user_roles FOR SELECT USING (TRUE);
CREATE POLICY team_assign ON user_roles FOR INSERT WITH CHECK (vigil_session_may('roles_assign'));
CREATE POLICY team_unassign ON user_roles FOR DELETE
    USING (vigil_session_may('roles_assign') OR vigil_is_platform_account(user_id));

-- Second factors: one's own, an administrator's reset, key rotation, a platform account's erasure.
ALTER TABLE mfa_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_own ON mfa_secrets FOR ALL
    USING (user_id = vigil_session_user_id() OR vigil_session_may('users_manage')
           OR vigil_session_may('keys_manage') OR vigil_is_platform_account(user_id))
    WITH CHECK (user_id = vigil_session_user_id() OR vigil_session_may('users_manage')
           OR vigil_session_may('keys_manage'));
ALTER TABLE backup_codes ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_own ON backup_codes FOR ALL
    USING (user_id = vigil_session_user_id() OR vigil_session_may('users_manage')
           OR vigil_is_platform_account(user_id))
    WITH CHECK (user_id = vigil_session_user_id() OR vigil_session_may('users_manage'));

-- Key pairs: an operator enrols their own; account and key managers retire others'.
ALTER TABLE user_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON user_keys FOR SELECT USING (TRUE);
CREATE POLICY team_enrol ON user_keys FOR INSERT
    WITH CHECK (user_id = vigil_session_user_id() OR vigil_session_may('keys_manage'));
CREATE POLICY team_retire ON user_keys FOR UPDATE
    USING (user_id = vigil_session_user_id() OR vigil_session_may('users_manage')
           OR vigil_session_may('keys_manage'));
CREATE POLICY team_erase ON user_keys FOR DELETE
    USING (vigil_is_platform_account(user_id) OR vigil_session_may('users_manage'));

-- Sessions and their refresh tokens: an operator opens, refreshes and ends their own; account
-- managers end anyone's; incident responses end a platform account's; retention and erasure
-- remove old or erased ones (their table privileges decide who deletes at all).
CREATE FUNCTION vigil_may_touch_sessions_of(p_user_id TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT p_user_id = vigil_session_user_id() OR vigil_session_may('users_manage')
        OR vigil_is_platform_account(p_user_id)
$$;
CREATE FUNCTION vigil_may_touch_session(p_session_id TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE((SELECT vigil_may_touch_sessions_of(user_id) FROM sessions
                     WHERE id = p_session_id), FALSE)
$$;

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON sessions FOR SELECT USING (TRUE);
CREATE POLICY team_open ON sessions FOR INSERT WITH CHECK (user_id = vigil_session_user_id());
CREATE POLICY team_end ON sessions FOR UPDATE
    USING (vigil_may_touch_sessions_of(user_id)) WITH CHECK (vigil_may_touch_sessions_of(user_id));
CREATE POLICY team_remove ON sessions FOR DELETE
    USING (vigil_may_touch_sessions_of(user_id) OR vigil_session_may('retention_manage'));

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON refresh_tokens FOR SELECT USING (TRUE);
CREATE POLICY team_issue ON refresh_tokens FOR INSERT WITH CHECK (vigil_may_touch_session(session_id));
CREATE POLICY team_rotate ON refresh_tokens FOR UPDATE
    USING (vigil_may_touch_session(session_id)) WITH CHECK (vigil_may_touch_session(session_id));
CREATE POLICY team_remove ON refresh_tokens FOR DELETE
    USING (vigil_may_touch_session(session_id) OR vigil_session_may('retention_manage'));

-- Data keys. A key is wrapped for a key pair only through `vigil_insert_grant`, and only a
-- console that holds a purpose writes that purpose's keys, rotations and pending grants. What
-- "holds" means comes from the role-to-purpose table in src/rbac: `vigil migrate` replaces the
-- bodies of the two functions below with ones generated from it (until then only the owner
-- passes). The first administrator also holds what they were given before any officer existed,
-- for as long as they keep a wrap of it (or of the retired `pii`, during the split).
CREATE FUNCTION vigil_account_holds(p_user_id TEXT, p_purpose TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT FALSE
$$;
CREATE FUNCTION vigil_session_holds(p_purpose TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT vigil_session_is_owner() OR COALESCE(vigil_account_holds(vigil_session_user_id(), p_purpose), FALSE)
$$;

-- Stores a wrapped data key for a key pair: the caller must hold the purpose, the key pair must
-- be live and its account must hold the purpose too. True if stored (false if it was already).
CREATE FUNCTION vigil_insert_grant(p_data_key_id TEXT, p_user_key_id TEXT, p_wrapped BYTEA,
                                   p_by TEXT, p_at BIGINT)
RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_purpose TEXT;
    v_grantee TEXT;
    v_moved INTEGER;
BEGIN
    SELECT purpose INTO v_purpose FROM data_keys WHERE id = p_data_key_id AND status <> 'retired';
    SELECT user_id INTO v_grantee FROM user_keys WHERE id = p_user_key_id AND retired_at IS NULL;
    IF v_purpose IS NULL OR v_grantee IS NULL THEN
        RAISE EXCEPTION 'vigil: no such live data key or key pair' USING ERRCODE = '22023';
    END IF;
    IF NOT vigil_session_is_owner() THEN
        IF NOT vigil_session_holds(v_purpose) THEN
            RAISE EXCEPTION 'vigil: only a holder of a purpose wraps its keys' USING ERRCODE = '42501';
        END IF;
        IF NOT vigil_account_holds(v_grantee, v_purpose) THEN
            RAISE EXCEPTION 'vigil: the key pair''s owner does not hold this purpose'
                USING ERRCODE = '42501';
        END IF;
    END IF;
    INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at, granted_by)
    VALUES (p_data_key_id, p_user_key_id, p_wrapped, p_at, p_by)
    ON CONFLICT (data_key_id, user_key_id) DO NOTHING;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved = 1;
END
$$;

-- Deletes the wraps of a retired data key (the end of a rotation or of the split): a holder of
-- its purpose, or a key manager.
CREATE FUNCTION vigil_delete_retired_grants(p_data_key_id TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_purpose TEXT;
BEGIN
    SELECT purpose INTO v_purpose FROM data_keys WHERE id = p_data_key_id AND status = 'retired';
    IF v_purpose IS NULL THEN
        RAISE EXCEPTION 'vigil: only a retired data key''s wraps are deleted this way'
            USING ERRCODE = '22023';
    END IF;
    IF NOT (vigil_session_may('keys_manage') OR vigil_session_holds(v_purpose)) THEN
        RAISE EXCEPTION 'vigil: only a holder of a purpose retires its keys' USING ERRCODE = '42501';
    END IF;
    DELETE FROM key_grants WHERE data_key_id = p_data_key_id;
END
$$;

-- Deletes the retired shared `totp` key once no TOTP secret is sealed with it (any sign-in
-- that re-sealed the last one may call it; it checks the condition itself).
CREATE FUNCTION vigil_drop_unused_totp_keys() RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM mfa_secrets WHERE sealed_with = 'totp_data_key') THEN
        RETURN;
    END IF;
    DELETE FROM key_grants WHERE data_key_id IN (SELECT id FROM data_keys WHERE purpose = 'totp');
    DELETE FROM key_rotations WHERE purpose = 'totp';
    DELETE FROM data_keys WHERE purpose = 'totp';
END
$$;

ALTER TABLE data_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON data_keys FOR SELECT USING (TRUE);
CREATE POLICY team_make ON data_keys FOR INSERT
    WITH CHECK (vigil_session_may('keys_manage') OR vigil_session_holds(purpose));
CREATE POLICY team_change ON data_keys FOR UPDATE
    USING (vigil_session_may('keys_manage') OR vigil_session_holds(purpose))
    WITH CHECK (vigil_session_may('keys_manage') OR vigil_session_holds(purpose));

ALTER TABLE key_rotations ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON key_rotations FOR SELECT USING (TRUE);
CREATE POLICY team_start ON key_rotations FOR INSERT
    WITH CHECK (vigil_session_may('keys_manage') OR vigil_session_holds(purpose));
CREATE POLICY team_advance ON key_rotations FOR UPDATE
    USING (vigil_session_may('keys_manage') OR vigil_session_holds(purpose))
    WITH CHECK (vigil_session_may('keys_manage') OR vigil_session_holds(purpose));

ALTER TABLE pending_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_read ON pending_grants FOR SELECT USING (TRUE);
CREATE POLICY team_order ON pending_grants FOR INSERT WITH CHECK (vigil_session_may('keys_manage'));
CREATE POLICY team_settle ON pending_grants FOR DELETE
    USING (vigil_session_may('keys_manage') OR vigil_session_may('users_manage')
           OR vigil_session_may('roles_assign') OR vigil_session_holds(purpose));
