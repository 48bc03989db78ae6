//! SQL of retention: what each category's cleanup touches, the hold test, the plan's counts and
//! the chunked actions, and the run records.
//!
//! Each category is one or more *targets*: a table walked in `(time, key)` order. A chunk is the
//! next `chunk` due rows after the run's cursor; the action applies to those not held, and the
//! rows of the chunk still due afterwards are exactly the held ones, so they are counted then.

use sqlx::Row;

use super::{Category, PolicyAction};
use crate::store::{map_rows, Store, StoreError, Tx};

type Result<T> = std::result::Result<T, StoreError>;

/// One table a category cleans.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) table: &'static str,
    key: &'static str,
    time: &'static str,
    /// The account a row is about, for holds (an SQL expression over the row).
    user: Option<&'static str>,
    /// Rows of this table can be evidence in an incident (`incident_evidence.ref_id`).
    evidence: bool,
    /// What else makes a row due besides its age.
    scope: &'static str,
    /// Indexes keyed by person rather than time, which a chunk of old rows touches all over:
    /// on SQLite a run that clears most of the table drops them and builds them once at the
    /// end (see [`Store::defer_named_indexes`]).
    pub(super) by_person: &'static [&'static str],
}

/// The tables of `category` under `action`, in the order they are cleaned.
pub(super) fn targets(category: Category, action: PolicyAction) -> &'static [Target] {
    const COMMENTS_ANON: &[Target] = &[Target {
        table: "comments",
        key: "id",
        time: "created_at",
        user: Some("comments.author_id"),
        evidence: true,
        scope: "comments.author_id IS NOT NULL",
        by_person: &["comments_author_idx"],
    }];
    const COMMENTS_DELETE: &[Target] = &[Target {
        table: "comments",
        key: "id",
        time: "created_at",
        user: Some("comments.author_id"),
        evidence: true,
        scope: "(comments.author_id IS NOT NULL OR comments.body IS NOT NULL \
                OR comments.body_envelope IS NOT NULL)",
        by_person: &["comments_author_idx"],
    }];
    const ACTIVITY: &[Target] = &[Target {
        table: "activity_log",
        key: "id",
        time: "occurred_at",
        user: Some("activity_log.user_id"),
        evidence: true,
        scope: "1 = 1",
        by_person: &["activity_log_user_time_idx"],
    }];
    const SESSIONS: &[Target] = &[
        // A session goes with its refresh tokens.
        Target {
            table: "sessions",
            key: "id",
            time: "expires_at",
            user: Some("sessions.user_id"),
            evidence: false,
            scope: "1 = 1",
            by_person: &[],
        },
        Target {
            table: "revoked_tokens",
            key: "jti",
            time: "expires_at",
            user: Some("revoked_tokens.user_id"),
            evidence: false,
            scope: "1 = 1",
            by_person: &[],
        },
        Target {
            table: "login_challenges",
            key: "id",
            time: "expires_at",
            user: None,
            evidence: false,
            scope: "1 = 1",
            by_person: &[],
        },
    ];
    const DELETED_USERS: &[Target] = &[Target {
        table: "users",
        key: "id",
        time: "deleted_at",
        user: Some("users.id"),
        evidence: false,
        scope: "users.status = 'deleted' AND users.kind = 'platform'",
        by_person: &[],
    }];
    match (category, action) {
        (Category::Comments, PolicyAction::Delete) => COMMENTS_DELETE,
        (Category::Comments, _) => COMMENTS_ANON,
        (Category::Activity, _) => ACTIVITY,
        (Category::Sessions, _) => SESSIONS,
        (Category::DeletedUsers, _) => DELETED_USERS,
        // The audit log is archived by the audit module, not through a target.
        (Category::Audit, _) => &[],
    }
}

/// Open request statuses (a request not yet completed, rejected or withdrawn).
const OPEN_REQUEST: &str = "('received', 'verifying', 'verified', 'in_progress')";
/// Open incident statuses.
const OPEN_INCIDENT: &str = "('open', 'investigating')";

impl Target {
    /// Why a row is held: 0 not held, 1 a legal hold, 2 an open incident, 3 an open data-subject
    /// request (the first that applies). Each test is an uncorrelated `IN (subquery)`, which
    /// both databases evaluate once per statement into a small hashed set and probe per row.
    fn held(&self) -> String {
        let key = format!("{}.{}", self.table, self.key);
        let mut legal = Vec::new();
        let mut incident = Vec::new();
        let mut request = Vec::new();
        if let Some(u) = self.user {
            legal.push(format!(
                "{u} IN (SELECT h.target_id FROM legal_holds h WHERE h.released_at IS NULL \
                 AND h.target_kind = 'user' \
                 UNION SELECT i.user_id FROM legal_holds h JOIN incidents i ON i.id = h.target_id \
                 WHERE h.released_at IS NULL AND h.target_kind = 'incident' \
                 AND i.user_id IS NOT NULL)"
            ));
            incident.push(format!(
                "{u} IN (SELECT i.user_id FROM incidents i WHERE i.status IN {OPEN_INCIDENT} \
                 AND i.user_id IS NOT NULL)"
            ));
            request.push(format!(
                "{u} IN (SELECT d.subject_id FROM dsr_requests d WHERE d.status IN {OPEN_REQUEST} \
                 AND d.subject_id IS NOT NULL)"
            ));
        }
        if self.evidence {
            legal.push(format!(
                "{key} IN (SELECT e.ref_id FROM legal_holds h JOIN incident_evidence e \
                 ON e.incident_id = h.target_id WHERE h.released_at IS NULL \
                 AND h.target_kind = 'incident' AND e.ref_id IS NOT NULL)"
            ));
            incident.push(format!(
                "{key} IN (SELECT e.ref_id FROM incident_evidence e JOIN incidents i \
                 ON i.id = e.incident_id WHERE i.status IN {OPEN_INCIDENT} \
                 AND e.ref_id IS NOT NULL)"
            ));
        }
        let mut out = String::from("CASE");
        for (n, tests) in [(1, legal), (2, incident), (3, request)] {
            if !tests.is_empty() {
                out.push_str(&format!(" WHEN {} THEN {n}", tests.join(" OR ")));
            }
        }
        if out == "CASE" {
            return "0".into();
        }
        out.push_str(" ELSE 0 END");
        out
    }

    /// Rows due: older than `$1`, in scope.
    fn due(&self) -> String {
        format!("{}.{} < $1 AND {}", self.table, self.time, self.scope)
    }

    /// Rows after the cursor `($2, $3)` and, with `upper`, up to `($4, $5)`.
    fn range(&self, upper: bool) -> String {
        let (t, k) = (
            format!("{}.{}", self.table, self.time),
            format!("{}.{}", self.table, self.key),
        );
        let mut s = format!("{} AND ({t}, {k}) > ($2, $3)", self.due());
        if upper {
            s.push_str(&format!(" AND ({t}, {k}) <= ($4, $5)"));
        }
        s
    }
}

/// What the plan counts for one target.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TargetPlan {
    pub(super) total: i64,
    pub(super) oldest_free: Option<i64>,
    pub(super) legal: i64,
    pub(super) incident: i64,
    pub(super) request: i64,
}

pub(super) async fn plan(store: &Store, t: &Target, cutoff: i64) -> Result<TargetPlan> {
    let sql = format!(
        "SELECT COUNT(*), MIN(CASE WHEN held = 0 THEN t END), \
         CAST(COALESCE(SUM(CASE WHEN held = 1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN held = 2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN held = 3 THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM (SELECT {table}.{time} AS t, {held} AS held FROM {table} WHERE {due}) x",
        table = t.table,
        time = t.time,
        held = t.held(),
        due = t.due(),
    );
    let r = sqlx::query(&sql)
        .bind(cutoff)
        .fetch_one(store.pool())
        .await?;
    Ok(TargetPlan {
        total: r.try_get(0)?,
        oldest_free: r.try_get(1)?,
        legal: r.try_get(2)?,
        incident: r.try_get(3)?,
        request: r.try_get(4)?,
    })
}

/// Rows due, held or not: the size of the job, for progress.
pub(super) async fn count_due(store: &Store, t: &Target, cutoff: i64) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {} WHERE {}", t.table, t.due());
    Ok(sqlx::query(&sql)
        .bind(cutoff)
        .fetch_one(store.pool())
        .await?
        .try_get(0)?)
}

/// All rows of a target's table.
pub(super) async fn count_rows(store: &Store, t: &Target) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {}", t.table);
    Ok(sqlx::query(&sql)
        .fetch_one(store.pool())
        .await?
        .try_get(0)?)
}

/// A position in a target's `(time, key)` order.
pub(super) type Cursor = (i64, String);

/// The last row of the next chunk of `chunk` due rows after `after`, or `None` if fewer remain
/// (the chunk then runs to the end).
pub(super) async fn chunk_end(
    tx: &mut Tx,
    t: &Target,
    cutoff: i64,
    after: &Cursor,
    chunk: u32,
) -> Result<Option<Cursor>> {
    let sql = format!(
        "SELECT {table}.{time}, {table}.{key} FROM {table} WHERE {range} \
         ORDER BY {table}.{time}, {table}.{key} LIMIT 1 OFFSET $4",
        table = t.table,
        time = t.time,
        key = t.key,
        range = t.range(false),
    );
    let row = sqlx::query(&sql)
        .bind(cutoff)
        .bind(after.0)
        .bind(after.1.as_str())
        .bind(i64::from(chunk.max(1)) - 1)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Applies `action` to the rows of the chunk `(after, upper]` that no hold keeps, then counts
/// the rows of the chunk still due (the held ones). Returns (acted on, held).
pub(super) async fn act(
    tx: &mut Tx,
    t: &Target,
    action: PolicyAction,
    cutoff: i64,
    after: &Cursor,
    upper: Option<&Cursor>,
    now: i64,
) -> Result<(u64, u64)> {
    let range = t.range(upper.is_some());
    let free = format!("{range} AND ({}) = 0", t.held());
    let done = match (t.table, action) {
        ("comments", PolicyAction::Anonymize) => {
            let sql = format!("UPDATE comments SET author_id = NULL WHERE {free}");
            bound(&sql, cutoff, after, upper)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        }
        ("comments", _) => {
            // Soft delete: the content goes, a placeholder stays so replies still thread.
            let sql = format!(
                "DELETE FROM comment_recipients WHERE comment_id IN \
                 (SELECT comments.id FROM comments WHERE {free})"
            );
            bound(&sql, cutoff, after, upper).execute(&mut **tx).await?;
            let now_param = if upper.is_some() { "$6" } else { "$4" };
            let sql = format!(
                "UPDATE comments SET author_id = NULL, body = NULL, body_envelope = NULL, \
                 content_hash = NULL, hash_key_version = NULL, \
                 deleted_at = COALESCE(deleted_at, {now_param}), \
                 deletion_reason = COALESCE(deletion_reason, 'retention') WHERE {free}"
            );
            bound(&sql, cutoff, after, upper)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        }
        (table, _) => {
            let sql = format!("DELETE FROM {table} WHERE {free}");
            bound(&sql, cutoff, after, upper)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        }
    };
    let sql = format!("SELECT COUNT(*) FROM {} WHERE {range}", t.table);
    let held: i64 = bound(&sql, cutoff, after, upper)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok((done, u64::try_from(held).unwrap_or(0)))
}

/// `sql` with the cutoff, the cursor and (if given) the chunk's end bound as `$1` to `$5`.
fn bound<'q>(
    sql: &'q str,
    cutoff: i64,
    after: &Cursor,
    upper: Option<&Cursor>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql)
        .bind(cutoff)
        .bind(after.0)
        .bind(after.1.clone());
    if let Some(u) = upper {
        q = q.bind(u.0).bind(u.1.clone());
    }
    q
}

/// A stored policy row: (category, period days, action, enabled, updated at, updated by's
/// username).
pub(super) type PolicyRow = (String, i64, String, bool, i64, Option<String>);

pub(super) async fn policies(store: &Store) -> Result<Vec<PolicyRow>> {
    let rows = sqlx::query(
        "SELECT p.category, p.period_days, p.action, p.enabled, p.updated_at, u.username \
         FROM retention_policies p LEFT JOIN users u ON u.id = p.updated_by",
    )
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok((
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            crate::store::flag(r, 3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        ))
    })
}

pub(super) async fn upsert_policy(
    tx: &mut Tx,
    category: &str,
    period_days: i64,
    action: &str,
    enabled: bool,
    by: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO retention_policies (category, period_days, action, enabled, updated_at, \
         updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (category) DO UPDATE SET period_days = $2, action = $3, enabled = $4, \
         updated_at = $5, updated_by = $6",
    )
    .bind(category)
    .bind(period_days)
    .bind(action)
    .bind(enabled)
    .bind(now)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stored run row.
pub(super) struct RunRow {
    pub(super) id: String,
    pub(super) policy: Option<String>,
    pub(super) status: String,
    pub(super) started_by: Option<String>,
    pub(super) started_at: i64,
    pub(super) finished_at: Option<i64>,
    pub(super) cursor: Option<String>,
    pub(super) counts: String,
    pub(super) errors: Option<String>,
    pub(super) as_of: Option<i64>,
}

const RUN_COLUMNS: &str = "r.id, r.policy, r.status, u.username, r.started_at, r.finished_at, \
                           r.cursor, r.counts, r.errors, r.as_of";

fn run_row(r: &sqlx::any::AnyRow) -> std::result::Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: r.try_get(0)?,
        policy: r.try_get(1)?,
        status: r.try_get(2)?,
        started_by: r.try_get(3)?,
        started_at: r.try_get(4)?,
        finished_at: r.try_get(5)?,
        cursor: r.try_get(6)?,
        counts: r.try_get(7)?,
        errors: r.try_get(8)?,
        as_of: r.try_get(9)?,
    })
}

/// The run left `running` by a worker that stopped, if any (the oldest).
pub(super) async fn interrupted_run(store: &Store) -> Result<Option<RunRow>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM retention_runs r LEFT JOIN users u ON u.id = r.started_by \
         WHERE r.status = 'running' ORDER BY r.started_at LIMIT 1"
    );
    let row = sqlx::query(&sql).fetch_optional(store.pool()).await?;
    Ok(row.as_ref().map(run_row).transpose()?)
}

pub(super) async fn runs(store: &Store, limit: i64) -> Result<Vec<RunRow>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM retention_runs r LEFT JOIN users u ON u.id = r.started_by \
         ORDER BY r.started_at DESC LIMIT $1"
    );
    let rows = sqlx::query(&sql)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    map_rows(&rows, run_row)
}

/// When the last run that covered every policy started, if one completed.
pub(super) async fn last_full_run(store: &Store) -> Result<Option<i64>> {
    Ok(sqlx::query(
        "SELECT MAX(started_at) FROM retention_runs WHERE policy IS NULL AND status <> 'running'",
    )
    .fetch_one(store.pool())
    .await?
    .try_get(0)?)
}

pub(super) async fn insert_run(
    store: &Store,
    id: &str,
    policy: Option<&str>,
    started_by: &str,
    started_at: i64,
    as_of: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO retention_runs (id, policy, status, started_by, started_at, counts, as_of) \
         VALUES ($1, $2, 'running', $3, $4, '{}', $5)",
    )
    .bind(id)
    .bind(policy)
    .bind(started_by)
    .bind(started_at)
    .bind(as_of)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Records a run's progress (inside the chunk's transaction, so it commits with the chunk).
pub(super) async fn save_progress(tx: &mut Tx, id: &str, cursor: &str, counts: &str) -> Result<()> {
    sqlx::query("UPDATE retention_runs SET cursor = $2, counts = $3 WHERE id = $1")
        .bind(id)
        .bind(cursor)
        .bind(counts)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn finish_run(
    tx: &mut Tx,
    id: &str,
    status: &str,
    finished_at: i64,
    counts: &str,
    errors: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE retention_runs SET status = $2, finished_at = $3, counts = $4, errors = $5, \
         cursor = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(finished_at)
    .bind(counts)
    .bind(errors)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
