-- A counter bumped by every change that can invalidate an access token (account status,
-- roles, session revocation, token revocation), even one made outside Vigil. Token
-- verification caches its database checks per token and re-runs them only when this moved.
CREATE TABLE auth_epoch (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

CREATE FUNCTION bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_epoch_users AFTER UPDATE OF status OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch();
CREATE TRIGGER auth_epoch_roles AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch();
CREATE TRIGGER auth_epoch_sessions AFTER UPDATE OF revoked_at, expires_at OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch();
CREATE TRIGGER auth_epoch_revoked AFTER INSERT ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch();
