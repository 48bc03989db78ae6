-- A counter bumped by every change that can invalidate an access token (account status,
-- roles, session revocation, token revocation), even one made outside Vigil. Token
-- verification caches its database checks per token and re-runs them only when this moved.
CREATE TABLE auth_epoch (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

CREATE TRIGGER auth_epoch_users_status AFTER UPDATE OF status ON users
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_users_delete AFTER DELETE ON users
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_roles_insert AFTER INSERT ON user_roles
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_roles_update AFTER UPDATE ON user_roles
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_roles_delete AFTER DELETE ON user_roles
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_sessions_revoke AFTER UPDATE OF revoked_at, expires_at ON sessions
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_sessions_delete AFTER DELETE ON sessions
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_revoked_insert AFTER INSERT ON revoked_tokens
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
