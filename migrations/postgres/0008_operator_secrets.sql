-- Least privilege: no shared TOTP key, no shared token-signing key.

-- An operator's credential key, sealed with a key derived from the argon2id work of checking
-- their password; it seals their TOTP secret. Made at their next sign-in.
ALTER TABLE credentials ADD COLUMN credential_key_sealed BYTEA;

-- How each TOTP secret is sealed: with the retired shared `totp` data key (re-sealed at its
-- owner's next sign-in with a code) or with its owner's credential key. Unconfirmed enrolments
-- under the old key start again.
ALTER TABLE mfa_secrets ADD COLUMN sealed_with TEXT NOT NULL DEFAULT 'totp_data_key'
    CHECK (sealed_with IN ('totp_data_key', 'credential_key'));
DELETE FROM mfa_secrets WHERE confirmed_at IS NULL;

-- Each key pair's Ed25519 token-signing public key; tokens name the key pair in `kid`.
ALTER TABLE user_keys ADD COLUMN signing_public_key BYTEA;

-- Retiring or removing a key pair ends the tokens it signed: verification caches by epoch.
CREATE TRIGGER auth_epoch_user_keys AFTER UPDATE OF retired_at, signing_public_key OR DELETE
    ON user_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch();

-- The shared token-signing key is gone (tokens it signed are refused; refresh tokens still work).
DELETE FROM key_grants WHERE data_key_id IN (SELECT id FROM data_keys WHERE purpose = 'jwt');
DELETE FROM key_rotations WHERE purpose = 'jwt';
DELETE FROM data_keys WHERE purpose = 'jwt';

-- The shared `totp` key goes too once no secret is sealed with it (at once where none is).
DELETE FROM key_grants WHERE data_key_id IN (SELECT id FROM data_keys WHERE purpose = 'totp')
    AND NOT EXISTS (SELECT 1 FROM mfa_secrets);
DELETE FROM key_rotations WHERE purpose = 'totp' AND NOT EXISTS (SELECT 1 FROM mfa_secrets);
DELETE FROM data_keys WHERE purpose = 'totp' AND NOT EXISTS (SELECT 1 FROM mfa_secrets);
