-- Team mode (migrations/postgres/0009_team_roles.sql) is Postgres only: a local SQLite file has
-- no database logins, group roles or SECURITY DEFINER functions to create. This migration is
-- deliberately empty so both dialects keep the same numbered list; the schema comparison in
-- tests/store.rs names the Postgres-only table (operator_logins) it leaves out.
SELECT 1;
