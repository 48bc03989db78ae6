-- Whether an account's password is still the one an administrator set when creating it (the
-- credential was last written in the same step that made the account), so a new operator's
-- first sign-in says so instead of "reset by an administrator". Only the account's own login (or
-- the owner) may ask, as for the password hash itself.
CREATE FUNCTION vigil_password_set_at_creation(p_user_id TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.changed_at = u.created_at FROM credentials c JOIN users u ON u.id = c.user_id
    WHERE c.user_id = p_user_id
      AND (vigil_session_is_owner() OR p_user_id = vigil_session_user_id())
$$;
REVOKE ALL ON FUNCTION vigil_password_set_at_creation(TEXT) FROM PUBLIC;
