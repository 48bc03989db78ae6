-- Which data-key version made each derived value, so rotation and `vigil keys status` can
-- find and count rows by version.
ALTER TABLE users ADD COLUMN bidx_key_version BIGINT;
ALTER TABLE activity_log ADD COLUMN bidx_key_version BIGINT;
ALTER TABLE comments ADD COLUMN hash_key_version BIGINT;
