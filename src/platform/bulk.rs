//! Bulk writing of ingested activity on Postgres: each batch sealed and encoded in `COPY`'s
//! text format ([`CopyBatch`]), then written by a [`BulkWriter`] in one transaction that also
//! counts the records written into the dashboard's daily counts.
//!
//! A batch is copied straight into `comments` and `activity_log` after one query finds which of
//! its ids are stored already (those rows, and repeats within the batch, are left out): that
//! keeps re-ingesting a file idempotent, which `COPY` alone cannot (it stops at the first
//! stored key). A row of the same id that another ingestion commits in between makes the copy
//! fail on its key; the batch is then written again through session-private staging tables and
//! merged (`ON CONFLICT (id) DO NOTHING` for comments; for activity, a row whose id is stored at
//! any time skipped: on Postgres its key is `(id, occurred_at)`, as its monthly partitions
//! need).
//!
//! The writer owns a Postgres connection of its own (not one of the pool's `Any`
//! connections, which cannot `COPY`), so a batch can be written on a task of its own while
//! the next one is parsed and sealed.

use std::fmt::Write as _;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row as _};

use super::NewActivity;
use crate::crypto::field::Place;
use crate::crypto::mac::BlindKind;
use crate::keys::WriteKeys;
use crate::store::{Backend, Store, StoreError, Timestamp};

/// A public comment written with its submission.
#[derive(Debug, Clone)]
pub struct PublicComment {
    /// Comment id.
    pub id: uuid::Uuid,
    /// The event it was posted under.
    pub event_id: uuid::Uuid,
    /// Its author.
    pub author_id: uuid::Uuid,
    /// Its text.
    pub text: String,
    /// When it was posted.
    pub created_at: Timestamp,
}

/// One batch of comments and activity, sealed, hashed and encoded for `COPY`, ready to write.
#[derive(Debug, Default)]
pub struct CopyBatch {
    comments: Rows,
    /// Activity rows without their ingestion stamp, which the writer appends (the last column
    /// of [`ACTIVITY_COPY_COLUMNS`]) once it holds the ingestion fence.
    activity: Rows,
    /// Each activity row's time and kind, for the daily counts.
    activity_counts: Vec<(i64, &'static str)>,
    /// The month starts the activity falls in (their partitions are made before the copy).
    months: Vec<i64>,
}

/// Encoded rows with their ids, each row's text ending at its entry of `ends` (without a line
/// end).
#[derive(Debug, Default)]
struct Rows {
    text: String,
    ends: Vec<usize>,
    ids: Vec<String>,
}

impl Rows {
    fn with_capacity(rows: usize, bytes_per_row: usize) -> Self {
        Rows {
            text: String::with_capacity(rows * bytes_per_row),
            ends: Vec::with_capacity(rows),
            ids: Vec::with_capacity(rows),
        }
    }

    fn row(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The positions of the rows to write, in id order: those whose id is not in `stored`, and
    /// of a repeated id the first. Writers copying in id order take shared keys in one order,
    /// so one waits for another rather than deadlocking.
    fn new_rows(&self, stored: &std::collections::HashSet<String>) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.ids.len())
            .filter(|i| !stored.contains(&self.ids[*i]))
            .collect();
        rows.sort_by(|a, b| self.ids[*a].cmp(&self.ids[*b]).then(a.cmp(b)));
        rows.dedup_by(|b, a| self.ids[*a] == self.ids[*b]);
        rows
    }

    /// `COPY` input of the rows at `positions`, each followed by `suffix` (already escaped).
    fn copy_text(&self, positions: impl IntoIterator<Item = usize>, suffix: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + self.ends.len() * (suffix.len() + 1));
        for i in positions {
            out.push_str(self.row(i));
            out.push_str(suffix);
            out.push('\n');
        }
        out
    }
}

const ACTIVITY_COLUMNS: &str = "id, user_id, kind, outcome, reason, occurred_at, ingested_at, \
     user_agent, country, ref_id, ip_enc, ip_bidx, network_key_version, bidx_key_version, details";
/// The columns of an encoded activity row: the stamp last, appended when the batch is written.
const ACTIVITY_COPY_COLUMNS: &str = "id, user_id, kind, outcome, reason, occurred_at, \
     user_agent, country, ref_id, ip_enc, ip_bidx, network_key_version, bidx_key_version, \
     details, ingested_at";
const COMMENT_COLUMNS: &str =
    "id, event_id, author_id, is_private, body, content_hash, hash_key_version, created_at";

impl CopyBatch {
    /// Seals the source addresses, computes the blind indexes and the comments' keyed content
    /// hashes, and encodes the rows.
    pub fn new(keys: &WriteKeys, comments: &[PublicComment], activity: &[NewActivity]) -> Self {
        let mut out = CopyBatch {
            comments: Rows::with_capacity(comments.len(), 220),
            activity: Rows::with_capacity(activity.len(), 400),
            activity_counts: activity
                .iter()
                .map(|a| (a.occurred_at.micros(), a.kind))
                .collect(),
            months: crate::store::partitions::months_of(
                activity.iter().map(|a| a.occurred_at.micros()),
            ),
        };
        let hash_version = i64::from(keys.content_version().0);
        for c in comments {
            let id = c.id.to_string();
            let mut row = Row::start(&mut out.comments.text);
            row.text(&id);
            row.text(&c.event_id.to_string());
            row.text(&c.author_id.to_string());
            row.raw("f");
            row.text(&c.text);
            row.bytes(Some(&keys.content_hash(c.text.as_bytes())));
            row.int(Some(hash_version));
            row.int(Some(c.created_at.micros()));
            out.comments.ends.push(out.comments.text.len());
            out.comments.ids.push(id);
        }
        let (network_version, bidx_version) = (
            i64::from(keys.network_version().0),
            i64::from(keys.blind_version().0),
        );
        for a in activity {
            let id = a.id.to_string();
            let ip_enc = a.ip.as_ref().map(|ip| {
                keys.seal_network(&Place::new("activity_log", "ip_enc", &id), ip.as_bytes())
            });
            let ip_bidx = a.ip.as_ref().map(|ip| keys.blind_index(BlindKind::Ip, ip));
            let mut row = Row::start(&mut out.activity.text);
            row.text(&id);
            row.opt_text(a.user_id.map(|u| u.to_string()).as_deref());
            row.text(a.kind);
            row.text(a.outcome);
            row.opt_text(a.reason);
            row.int(Some(a.occurred_at.micros()));
            row.text(&a.user_agent);
            row.text(&a.country);
            row.opt_text(a.ref_id.map(|r| r.to_string()).as_deref());
            row.bytes(ip_enc.as_deref());
            row.bytes(ip_bidx.as_ref().map(|b| b.as_slice()));
            row.int(a.ip.is_some().then_some(network_version));
            row.int(a.ip.is_some().then_some(bidx_version));
            match a.target {
                Some(t) => row.raw(&format!("{{\"target\":\"{}\"}}", hex::encode(t))),
                None => row.raw("{}"),
            }
            out.activity.ends.push(out.activity.text.len());
            out.activity.ids.push(id);
        }
        out
    }

    /// Activity records in the batch.
    pub fn activity_rows(&self) -> u64 {
        self.activity.ids.len() as u64
    }
}

/// One row of `COPY ... (FORMAT text)`: tab-separated, `\N` for NULL, backslash escapes.
struct Row<'a>(&'a mut String, bool);

impl<'a> Row<'a> {
    fn start(buf: &'a mut String) -> Self {
        Row(buf, true)
    }

    fn sep(&mut self) {
        if !std::mem::take(&mut self.1) {
            self.0.push('\t');
        }
    }

    /// A value known to need no escaping.
    fn raw(&mut self, v: &str) {
        self.sep();
        self.0.push_str(v);
    }

    fn text(&mut self, v: &str) {
        self.sep();
        for ch in v.chars() {
            match ch {
                '\\' => self.0.push_str("\\\\"),
                '\t' => self.0.push_str("\\t"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                c => self.0.push(c),
            }
        }
    }

    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.raw("\\N"),
        }
    }

    fn int(&mut self, v: Option<i64>) {
        self.sep();
        match v {
            Some(v) => {
                let _ = write!(self.0, "{v}");
            }
            None => self.0.push_str("\\N"),
        }
    }

    /// `bytea` in hex form; its backslash is escaped for COPY's text format.
    fn bytes(&mut self, v: Option<&[u8]>) {
        self.sep();
        match v {
            Some(b) => {
                self.0.push_str("\\\\x");
                self.0.push_str(&hex::encode(b));
            }
            None => self.0.push_str("\\N"),
        }
    }
}

/// Writes [`CopyBatch`]es on a Postgres connection of its own.
#[derive(Debug)]
pub struct BulkWriter {
    conn: PgConnection,
    /// Months whose partition this writer made sure of.
    months: std::collections::BTreeSet<i64>,
}

/// What a batch added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Comments written (not already stored).
    pub comments: u64,
    /// Activity records written (not already stored).
    pub activity: u64,
}

impl BulkWriter {
    /// Opens the writer's connection, with its staging tables. `None` on SQLite, which keeps
    /// its prepared-statement path.
    pub async fn connect(store: &Store) -> Result<Option<Self>, StoreError> {
        if store.backend() != Backend::Postgres {
            return Ok(None);
        }
        let url = store.url();
        let options = PgConnectOptions::from_str(url.connect_string())
            .map_err(|source| StoreError::Connect {
                url: url.redacted(),
                source,
            })?
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::Connect {
                url: url.redacted(),
                source,
            })?;
        // Session-private, emptied by every commit: what a batch copied never outlives it.
        sqlx::raw_sql(
            "CREATE TEMP TABLE vigil_comments_stage (LIKE comments INCLUDING DEFAULTS) \
                 ON COMMIT DELETE ROWS; \
             CREATE TEMP TABLE vigil_activity_stage (LIKE activity_log INCLUDING DEFAULTS) \
                 ON COMMIT DELETE ROWS;",
        )
        .execute(&mut conn)
        .await?;
        Ok(Some(Self {
            conn,
            months: Default::default(),
        }))
    }

    /// Writes `batch`, skipping rows whose ids are already stored, in one transaction: copied
    /// straight into the tables, or (if another ingestion wrote one of its ids meanwhile)
    /// through the staging tables.
    pub async fn write(&mut self, batch: &CopyBatch) -> Result<Written, StoreError> {
        // The batch's month partitions, once per month per writer, outside the batch's
        // transaction: making one locks the default partition until it commits.
        for m in &batch.months {
            if !self.months.contains(m) {
                sqlx::query("SELECT vigil_activity_partition_ensure($1)")
                    .bind(*m)
                    .execute(&mut self.conn)
                    .await?;
                self.months.insert(*m);
            }
        }
        match self.copy_direct(batch).await {
            Err(e) if is_unique_violation(&e) => self.copy_staged(batch).await,
            r => r,
        }
    }

    async fn copy_direct(&mut self, batch: &CopyBatch) -> Result<Written, StoreError> {
        let mut tx = self.conn.begin().await?;
        let mut written = Written::default();
        if !batch.comments.ids.is_empty() {
            let stored = stored_ids(&mut tx, "comments", &batch.comments.ids).await?;
            let rows = batch.comments.new_rows(&stored);
            if !rows.is_empty() {
                let data = batch.comments.copy_text(rows.iter().copied(), "");
                copy(
                    &mut tx,
                    &format!("COPY comments ({COMMENT_COLUMNS}) FROM STDIN"),
                    &data,
                )
                .await?;
            }
            written.comments = rows.len() as u64;
        }
        if !batch.activity.ids.is_empty() {
            let stored = stored_ids(&mut tx, "activity_log", &batch.activity.ids).await?;
            let rows = batch.activity.new_rows(&stored);
            if !rows.is_empty() {
                let stamp = ingestion_stamp(&mut tx).await?;
                let data = batch
                    .activity
                    .copy_text(rows.iter().copied(), &format!("\t{stamp}"));
                copy(
                    &mut tx,
                    &format!("COPY activity_log ({ACTIVITY_COPY_COLUMNS}) FROM STDIN"),
                    &data,
                )
                .await?;
                count_activity(&mut tx, rows.iter().map(|i| batch.activity_counts[*i])).await?;
            }
            written.activity = rows.len() as u64;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn copy_staged(&mut self, batch: &CopyBatch) -> Result<Written, StoreError> {
        let mut tx = self.conn.begin().await?;
        let mut written = Written::default();
        if !batch.comments.ids.is_empty() {
            let data = batch
                .comments
                .copy_text(batch.comments.new_rows(&Default::default()), "");
            copy(
                &mut tx,
                &format!("COPY vigil_comments_stage ({COMMENT_COLUMNS}) FROM STDIN"),
                &data,
            )
            .await?;
            written.comments = sqlx::query(&format!(
                "INSERT INTO comments ({COMMENT_COLUMNS}) \
                 SELECT {COMMENT_COLUMNS} FROM vigil_comments_stage ON CONFLICT (id) DO NOTHING"
            ))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if !batch.activity.ids.is_empty() {
            let stamp = ingestion_stamp(&mut tx).await?;
            let data = batch.activity.copy_text(
                batch.activity.new_rows(&Default::default()),
                &format!("\t{stamp}"),
            );
            copy(
                &mut tx,
                &format!("COPY vigil_activity_stage ({ACTIVITY_COPY_COLUMNS}) FROM STDIN"),
                &data,
            )
            .await?;
            let inserted = sqlx::query(&format!(
                "INSERT INTO activity_log ({ACTIVITY_COLUMNS}) \
                 SELECT {ACTIVITY_COLUMNS} FROM vigil_activity_stage s WHERE NOT EXISTS \
                   (SELECT 1 FROM activity_log a WHERE a.id = s.id) \
                 ON CONFLICT DO NOTHING RETURNING kind, occurred_at"
            ))
            .fetch_all(&mut *tx)
            .await?;
            let mut counted = Vec::with_capacity(inserted.len());
            for r in &inserted {
                let kind: String = r.try_get(0)?;
                counted.push((r.try_get::<i64, _>(1)?, kind));
            }
            count_activity(&mut tx, counted.iter().map(|(at, k)| (*at, k.as_str()))).await?;
            written.activity = inserted.len() as u64;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Updates the planner's statistics of the tables written (Postgres skips, with a
    /// warning, a table this login does not own).
    pub async fn analyze(&mut self) -> Result<(), StoreError> {
        sqlx::raw_sql("ANALYZE activity_log, comments")
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Which of `ids` are stored in `table` (at any time, for activity).
async fn stored_ids(
    conn: &mut PgConnection,
    table: &str,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows = sqlx::query(&format!("SELECT id FROM {table} WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
        .collect()
}

/// Takes the ingestion fence (shared) for the rest of the transaction and returns the stamp
/// of what it writes, by the database's clock (see `store::ingestion_stamp`).
async fn ingestion_stamp(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(crate::store::ingestion_fence_key())
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query(crate::store::POSTGRES_NOW_MICROS)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?)
}

/// Counts activity records written, each `(occurred_at, kind)`, into the dashboard's daily
/// counts (`store::daily_counts`, metric `activity`), in this session's slot like
/// `CountChanges::write`.
async fn count_activity<'a>(
    conn: &mut PgConnection,
    rows: impl Iterator<Item = (i64, &'a str)>,
) -> Result<(), StoreError> {
    use crate::store::daily_counts::Day;
    let mut per_day: std::collections::BTreeMap<(i64, &str), i64> = Default::default();
    for (at, kind) in rows {
        *per_day
            .entry((Day::of_micros(at).number(), kind))
            .or_default() += 1;
    }
    if per_day.is_empty() {
        return Ok(());
    }
    let (mut days, mut kinds, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for ((day, kind), n) in per_day {
        days.push(day);
        kinds.push(kind.to_owned());
        counts.push(n);
    }
    sqlx::query(
        "INSERT INTO daily_counts (metric, day, key, slot, n) \
         SELECT 'activity', d, k, pg_backend_pid(), n \
         FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) AS t(d, k, n) \
         ON CONFLICT (metric, day, key, slot) DO UPDATE SET n = daily_counts.n + EXCLUDED.n",
    )
    .bind(days)
    .bind(kinds)
    .bind(counts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether `e` is a key violation (another writer stored one of the batch's ids first).
fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Query(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505"))
}

async fn copy(conn: &mut PgConnection, statement: &str, data: &str) -> Result<(), StoreError> {
    let mut sink = conn.copy_in_raw(statement).await?;
    // Sent in slices so the driver never holds a second copy of a whole batch.
    for chunk in data.as_bytes().chunks(1 << 20) {
        sink.send(chunk).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// A bare `COPY` by `psql`, from files, of the rows an ingestion wrote: the floor the bulk
/// writer is measured against (`vigil bench --monitor`).
#[derive(Debug, Clone, Copy)]
pub struct CopyFloor {
    /// Activity records copied (with their comments).
    pub rows: u64,
    /// Seconds `psql` took.
    pub seconds: f64,
}

/// Exports the activity ingested since `since` (and its comments) to files in `dir`, then
/// times `psql` copying them into fresh tables shaped like `activity_log` and `comments`
/// (same columns, keys and indexes), which it drops afterwards. `None` on SQLite.
pub async fn copy_floor(
    store: &Store,
    since: Timestamp,
    dir: &std::path::Path,
) -> Result<Option<CopyFloor>, StoreError> {
    let Some(mut writer) = BulkWriter::connect(store).await? else {
        return Ok(None);
    };
    let conn = &mut writer.conn;
    let since = since.micros();
    let activity = dir.join("activity.tsv");
    let comments = dir.join("comments.tsv");
    let rows = export(
        conn,
        &format!(
            "COPY (SELECT {ACTIVITY_COLUMNS} FROM activity_log WHERE ingested_at >= {since}) \
             TO STDOUT"
        ),
        &activity,
    )
    .await?;
    export(
        conn,
        &format!(
            "COPY (SELECT {COMMENT_COLUMNS} FROM comments WHERE id IN (SELECT ref_id \
             FROM activity_log WHERE kind = 'comment' AND ingested_at >= {since})) TO STDOUT"
        ),
        &comments,
    )
    .await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS vigil_floor_activity, vigil_floor_comments; \
         CREATE TABLE vigil_floor_activity (LIKE activity_log INCLUDING ALL); \
         CREATE TABLE vigil_floor_comments (LIKE comments INCLUDING ALL);",
    )
    .execute(&mut *conn)
    .await?;
    // psql gets the URL without its password, and the password in its environment, so it
    // never shows in a process listing.
    let io = |e: std::io::Error| StoreError::Query(sqlx::Error::Io(e));
    let mut url = url::Url::parse(store.url().connect_string())
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let password = url.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| p.to_owned())
    });
    let _ = url.set_password(None);
    let mut psql = std::process::Command::new("psql");
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url.as_str()])
        .arg("-c")
        .arg(format!(
            "\\copy vigil_floor_comments ({COMMENT_COLUMNS}) FROM '{}'",
            comments.display()
        ))
        .arg("-c")
        .arg(format!(
            "\\copy vigil_floor_activity ({ACTIVITY_COLUMNS}) FROM '{}'",
            activity.display()
        ));
    if let Some(p) = password {
        psql.env("PGPASSWORD", p);
    }
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || psql.status())
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::raw_sql("DROP TABLE vigil_floor_activity, vigil_floor_comments")
        .execute(&mut *conn)
        .await?;
    writer.close().await;
    if !status.success() {
        return Err(io(std::io::Error::other(format!("psql failed: {status}"))));
    }
    Ok(Some(CopyFloor { rows, seconds }))
}

/// Writes the output of a `COPY ... TO STDOUT` to `path`; returns the rows.
async fn export(
    conn: &mut PgConnection,
    statement: &str,
    path: &std::path::Path,
) -> Result<u64, StoreError> {
    use futures_util::TryStreamExt;
    use std::io::Write;
    let io = |e: std::io::Error| StoreError::Query(sqlx::Error::Io(e));
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut stream = conn.copy_out_raw(statement).await?;
    let mut rows = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        file.write_all(&chunk).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(rows)
}
