-- Per-day counts the dashboard charts read instead of the rows they count (see
-- `store::daily_counts`): `metric` names what is counted, `key` the kind, severity, rule or status
-- it is counted by, `day` the UTC day (days since 1970-01-01, floored) and `n` how many. No
-- personal data: kinds, severities, rule names, statuses and counts only.
--
--   activity    activity_log rows by kind, on the day the activity occurred;
--   incidents   incidents by current severity, on the day opened;
--   evidence    incident evidence by rule, on the day added;
--   violations  incident evidence by rule, on the day the activity behind it occurred (the day
--               added for evidence that is not an activity);
--   requests    data-subject requests by current status, on the day received.
--
-- Written in the transaction of the change it counts. A count may be held in several rows, its
-- `slot`s, whose sum is the count: 0 on SQLite (one writer at a time); on Postgres each
-- session adds to a slot of its own (its server process id) so that concurrent transactions
-- never wait for each other's counts, and a fold after ingestion and detection adds the slots
-- into slot 0. Keyed by metric first: a chart reads one metric over a range of days.
CREATE TABLE daily_counts (
    metric TEXT NOT NULL,
    day    BIGINT NOT NULL,
    key    TEXT NOT NULL,
    slot   BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (metric, day, key, slot)
);

-- What the charts subtract for the rows of today after the instant they are read at.
CREATE INDEX incidents_created_idx ON incidents (created_at);
CREATE INDEX incident_evidence_added_idx ON incident_evidence (added_at);
CREATE INDEX dsr_requests_received_idx ON dsr_requests (received_at);

-- The counts of what is already stored. A day is floor(t / 86400000000): `%` truncates on both
-- databases, so the remainder is made non-negative first.
INSERT INTO daily_counts (metric, day, key, slot, n)
SELECT 'activity',
       (occurred_at - ((occurred_at % 86400000000) + 86400000000) % 86400000000) / 86400000000,
       kind, 0, COUNT(*)
FROM activity_log GROUP BY 2, 3;

INSERT INTO daily_counts (metric, day, key, slot, n)
SELECT 'incidents',
       (created_at - ((created_at % 86400000000) + 86400000000) % 86400000000) / 86400000000,
       severity, 0, COUNT(*)
FROM incidents GROUP BY 2, 3;

INSERT INTO daily_counts (metric, day, key, slot, n)
SELECT 'evidence',
       (added_at - ((added_at % 86400000000) + 86400000000) % 86400000000) / 86400000000,
       rule, 0, COUNT(*)
FROM incident_evidence WHERE rule IS NOT NULL GROUP BY 2, 3;

INSERT INTO daily_counts (metric, day, key, slot, n)
SELECT 'violations', (t - ((t % 86400000000) + 86400000000) % 86400000000) / 86400000000,
       rule, 0, COUNT(*)
FROM (SELECT COALESCE(a.occurred_at, e.added_at) AS t, e.rule AS rule
      FROM incident_evidence e
      LEFT JOIN activity_log a ON e.kind = 'activity' AND a.id = e.ref_id
      WHERE e.rule IS NOT NULL) v
GROUP BY 2, 3;

INSERT INTO daily_counts (metric, day, key, slot, n)
SELECT 'requests',
       (received_at - ((received_at % 86400000000) + 86400000000) % 86400000000) / 86400000000,
       status, 0, COUNT(*)
FROM dsr_requests GROUP BY 2, 3;
