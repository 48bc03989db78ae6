-- Time partitions are Postgres only (migrations/postgres/0017_activity_partitions.sql): SQLite
-- has no declarative partitioning, and retention deletes old activity a chunk at a time as
-- before. Nothing changes here; the file keeps both dialects' migration versions in step.
SELECT 1;
