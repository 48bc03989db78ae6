-- Postgres adds a definer function telling whether an account's password is still the one set
-- when it was created (team mode hides the credentials table). SQLite reads that from the
-- credentials table directly (credentials.changed_at = users.created_at): nothing to add.
SELECT 1;
