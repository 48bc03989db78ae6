-- Time partitions (Postgres only; migrations/sqlite/0017 is a no-op). activity_log, the table
-- that grows with every sign-in and submission, becomes a table partitioned by month on
-- occurred_at (`PARTITION BY RANGE`): one partition per UTC calendar month, named
-- activity_log_YYYY_MM, plus activity_log_default for rows no month partition takes (times
-- before 1970 or more than a year ahead, or a month nobody created yet). Retention then clears a
-- month past its period with one DROP TABLE instead of a delete per row (see
-- vigil_activity_partition_drop below and src/retention).
--
-- A key on a partitioned table must include the partition key, so the primary key becomes
-- (id, occurred_at). An id still names one record: ingestion derives it from the line and its
-- time, and the bulk merge skips an id already stored at any time (src/platform/bulk.rs).
-- Nothing references activity_log by foreign key (incident evidence cites records by ref_id).

ALTER TABLE activity_log RENAME TO activity_log_unpartitioned;
ALTER TABLE activity_log_unpartitioned RENAME CONSTRAINT activity_log_pkey TO activity_log_unpartitioned_pkey;
ALTER TABLE activity_log_unpartitioned RENAME CONSTRAINT activity_log_user_id_fkey TO activity_log_unpartitioned_user_id_fkey;
ALTER INDEX activity_log_user_time_idx RENAME TO activity_log_unpartitioned_user_time_idx;
ALTER INDEX activity_log_ingested_idx RENAME TO activity_log_unpartitioned_ingested_idx;
ALTER INDEX activity_log_time_id_idx RENAME TO activity_log_unpartitioned_time_id_idx;

-- Same columns in the same order, defaults and NOT NULLs.
CREATE TABLE activity_log (LIKE activity_log_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (occurred_at);
ALTER TABLE activity_log ADD CONSTRAINT activity_log_pkey PRIMARY KEY (id, occurred_at);
ALTER TABLE activity_log ADD CONSTRAINT activity_log_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX activity_log_user_time_idx ON activity_log (user_id, occurred_at);
CREATE INDEX activity_log_ingested_idx ON activity_log (ingested_at);
CREATE INDEX activity_log_time_id_idx ON activity_log (occurred_at, id);
CREATE TABLE activity_log_default PARTITION OF activity_log DEFAULT;

-- The first microsecond of the UTC month of `p_at` (microseconds since the epoch), from whole
-- seconds so no rounding crosses a month boundary.
CREATE FUNCTION vigil_month_start(p_at BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT (extract(epoch FROM date_trunc('month',
               to_timestamp(floor(p_at / 1000000.0)::DOUBLE PRECISION) AT TIME ZONE 'UTC')
               AT TIME ZONE 'UTC') * 1000000)::BIGINT
$$;

-- The first microsecond of the month after the one starting at `p_start`.
CREATE FUNCTION vigil_month_end(p_start BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT (extract(epoch FROM ((to_timestamp((p_start / 1000000)::DOUBLE PRECISION)
               AT TIME ZONE 'UTC') + INTERVAL '1 month') AT TIME ZONE 'UTC') * 1000000)::BIGINT
$$;

-- The name of the partition of the month starting at `p_start`: generated here, never taken
-- from a caller.
CREATE FUNCTION vigil_activity_partition_name(p_start BIGINT) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT 'activity_log_' || to_char(to_timestamp((p_start / 1000000)::DOUBLE PRECISION)
                                       AT TIME ZONE 'UTC', 'YYYY_MM')
$$;

-- Creates the partition of the month of `p_at` if it is missing, moving any rows of that month
-- out of the default partition, and says whether it created one. Months from January 1970 to a
-- year ahead only: a row outside them stays in the default partition. Any operator's login may
-- call it (ingestion makes sure the months of a batch exist; the worker creates the coming
-- month ahead); it creates nothing but an empty month partition of activity_log.
CREATE FUNCTION vigil_activity_partition_ensure(p_at BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_lo BIGINT;
    v_hi BIGINT;
    v_name TEXT;
    v_ahead BIGINT := (extract(epoch FROM clock_timestamp() + INTERVAL '1 year') * 1000000)::BIGINT;
BEGIN
    IF p_at IS NULL OR p_at < 0 OR p_at >= v_ahead THEN
        RETURN FALSE;
    END IF;
    v_lo := vigil_month_start(p_at);
    v_hi := vigil_month_end(v_lo);
    v_name := vigil_activity_partition_name(v_lo);
    IF to_regclass(format('public.%I', v_name)) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    -- One creator at a time ("VIGILPRT"); the loser finds the partition made.
    PERFORM pg_advisory_xact_lock(6217855015669240404);
    IF to_regclass(format('public.%I', v_name)) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE activity_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   v_name);
    -- Rows of the month already in the default partition move into it (attaching checks the
    -- default partition holds none of the month).
    EXECUTE format('WITH moved AS (DELETE FROM activity_log_default '
                   'WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', v_lo, v_hi, v_name);
    EXECUTE format('ALTER TABLE activity_log ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   v_name, v_lo, v_hi);
    RETURN TRUE;
END
$$;

-- Whether any row of the partition named `p_name` is held: the test of src/retention/repo.rs
-- (`Target::held`) for activity: the account is under a legal hold (or is the subject of an
-- incident under one), of an open incident or of an open data-subject request, or the record
-- is evidence in a held or open incident. The held accounts and records are few: they are
-- looked up in the partition's indexes (by account, by id) rather than the partition scanned.
CREATE FUNCTION vigil_activity_partition_held(p_name TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_users TEXT[];
    v_records TEXT[];
    v_held BOOLEAN;
BEGIN
    SELECT ARRAY(
        SELECT h.target_id FROM legal_holds h
        WHERE h.released_at IS NULL AND h.target_kind = 'user'
        UNION SELECT i.user_id FROM legal_holds h JOIN incidents i ON i.id = h.target_id
        WHERE h.released_at IS NULL AND h.target_kind = 'incident' AND i.user_id IS NOT NULL
        UNION SELECT i.user_id FROM incidents i
        WHERE i.status IN ('open', 'investigating') AND i.user_id IS NOT NULL
        UNION SELECT d.subject_id FROM dsr_requests d
        WHERE d.status IN ('received', 'verifying', 'verified', 'in_progress')
        AND d.subject_id IS NOT NULL) INTO v_users;
    SELECT ARRAY(
        SELECT e.ref_id FROM legal_holds h JOIN incident_evidence e ON e.incident_id = h.target_id
        WHERE h.released_at IS NULL AND h.target_kind = 'incident' AND e.ref_id IS NOT NULL
        UNION SELECT e.ref_id FROM incident_evidence e JOIN incidents i ON i.id = e.incident_id
        WHERE i.status IN ('open', 'investigating') AND e.ref_id IS NOT NULL) INTO v_records;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE user_id = ANY ($1)) '
                   'OR EXISTS (SELECT 1 FROM %I WHERE id = ANY ($2))', p_name, p_name)
        INTO v_held USING v_users, v_records;
    RETURN v_held;
END
$$;

-- Retention's one statement for a month: drops the partition of the month starting at
-- `p_start` and returns how many rows it held, if the whole month is before the cutoff and no
-- row of it is held; NULL (nothing dropped) when a row is held or there is no such partition.
-- The cutoff is the earlier of `p_cutoff` and the activity policy's own as of now, so a caller
-- can never make current data due. Only a holder of the retention permission (or the owner).
-- Holds cannot be placed meanwhile: the hold tables are locked against writes until commit.
CREATE FUNCTION vigil_activity_partition_drop(p_start BIGINT, p_cutoff BIGINT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    v_name TEXT;
    v_days BIGINT;
    v_cutoff BIGINT;
    v_rows BIGINT;
BEGIN
    IF NOT vigil_session_may('retention_manage') THEN
        RAISE EXCEPTION 'vigil: dropping activity partitions needs the retention permission'
            USING ERRCODE = '42501';
    END IF;
    IF p_start IS NULL OR p_cutoff IS NULL OR p_start < 0 OR vigil_month_start(p_start) <> p_start THEN
        RAISE EXCEPTION 'vigil: % is not the start of a month', p_start USING ERRCODE = '22023';
    END IF;
    SELECT period_days INTO v_days FROM retention_policies
    WHERE category = 'activity' AND action = 'delete' AND enabled;
    IF v_days IS NULL THEN
        RAISE EXCEPTION 'vigil: the activity retention policy is off' USING ERRCODE = '42501';
    END IF;
    v_cutoff := LEAST(p_cutoff,
        (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT - v_days * 86400000000);
    IF vigil_month_end(p_start) > v_cutoff THEN
        RAISE EXCEPTION 'vigil: the month starting at % is not entirely past the retention cutoff',
            p_start USING ERRCODE = '42501';
    END IF;
    v_name := vigil_activity_partition_name(p_start);
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'public.activity_log'::regclass AND c.relname = v_name) THEN
        RETURN NULL;
    END IF;
    -- The parent first (as every statement on activity_log locks it), then the partition.
    LOCK TABLE activity_log IN ACCESS EXCLUSIVE MODE;
    LOCK TABLE legal_holds, incidents, incident_evidence, dsr_requests IN SHARE MODE;
    IF vigil_activity_partition_held(v_name) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT COUNT(*) FROM %I', v_name) INTO v_rows;
    EXECUTE format('DROP TABLE %I', v_name);
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION vigil_activity_partition_held(TEXT) FROM PUBLIC;

-- A partition for every month the rows fall in (within the ensured range), and for this month
-- and the next, then the rows.
SELECT vigil_activity_partition_ensure(m)
FROM (SELECT DISTINCT vigil_month_start(occurred_at) AS m FROM activity_log_unpartitioned
      WHERE occurred_at >= 0
      UNION SELECT vigil_month_start((extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT)
      UNION SELECT vigil_month_end(vigil_month_start(
                       (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT))) AS months
ORDER BY m;
INSERT INTO activity_log SELECT * FROM activity_log_unpartitioned;
DROP TABLE activity_log_unpartitioned;
