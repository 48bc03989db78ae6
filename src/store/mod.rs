//! The database: one [`Store`] over a local SQLite file or a shared Postgres server.
//!
//! The rest of the core writes each query once, with `$1, $2` placeholders, and runs it on
//! either backend through sqlx's `Any` driver. `Any` carries only booleans, integers, floats,
//! text and bytes, so this module owns the conversions: identifiers travel as UUID text and
//! times as UTC microseconds ([`Timestamp`]).

mod bulk;
pub mod daily_counts;
mod fence;
/// Files Vigil writes (a floor below the store; kept reachable as `store::files`).
pub use crate::files;
mod lock;
pub mod partitions;
pub mod privileges;
pub mod team;
mod url;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, ConnectOptions, Executor};

pub use self::fence::ingestion_stamp;
pub(crate) use self::fence::{ingestion_fence_key, POSTGRES_NOW_MICROS};
pub use self::lock::{serialize_transaction, JobLock};
pub use self::url::{Backend, DatabaseUrl, InvalidDatabaseUrl};

/// A transaction on either backend. Commit it or it rolls back on drop.
pub type Tx = sqlx::Transaction<'static, Any>;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// What can go wrong opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        /// The database URL with any password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed to apply; the schema was left as it was before that migration.
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The local database file's folder could not be created.
    #[error("cannot prepare {path} for the database (an owner-only folder and file): {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A job's lock file next to the SQLite database could not be opened or locked.
    #[error("cannot use the job lock file {path}: {source}")]
    LockFile {
        /// The lock file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An operator's own database login found migrations missing; only the database's owner
    /// can apply them.
    #[error(
        "the database schema is behind this version of Vigil (migrations {missing:?} are not \
         applied): the database administrator must run `vigil migrate` with the owner's URL"
    )]
    SchemaBehind {
        /// The versions not applied.
        missing: Vec<i64>,
    },
    /// A bookkeeping record in `app_meta` could not be read.
    #[error("the database's `{0}` record is unreadable")]
    Corrupt(&'static str),
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections the pool keeps open.
    pub max_connections: u32,
    /// How long a writer waits for SQLite's write lock before giving up.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(15),
        }
    }
}

/// The database Vigil works on. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    url: DatabaseUrl,
    operator_login: bool,
}

impl Store {
    /// Opens (creating a SQLite file and its folder if needed) and migrates the database.
    ///
    /// SQLite connections run in WAL mode with foreign keys enforced and `secure_delete` on, so
    /// erased rows are overwritten rather than left in free pages.
    pub async fn open(url: &DatabaseUrl, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        if let Some(path) = url.sqlite_path() {
            // Owner-only: the database holds usernames, comments and the audit log. Its WAL and
            // shared-memory files take the database file's mode.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                files::create_private_dir(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            files::ensure_private_file(path).map_err(|source| StoreError::CreateDir {
                path: path.display().to_string(),
                source,
            })?;
        }
        let connect_err = |source| StoreError::Connect {
            url: url.redacted(),
            source,
        };
        let connect = AnyConnectOptions::from_str(url.connect_string())
            .map_err(connect_err)?
            .disable_statement_logging();
        let backend = url.backend();
        let busy_ms = options.busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            // A SQLite connection is a local file handle: pinging it before every use only
            // doubles each query's round trip to the driver's worker thread. Postgres
            // connections can drop, so they are still checked.
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // journal_mode must run outside a transaction; all are per connection. A 64 MiB page
                        // cache keeps bulk inserts and chain walks out of the OS page cache.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
                             PRAGMA busy_timeout = {busy_ms}; PRAGMA cache_size = -65536; \
                             PRAGMA temp_store = MEMORY;"
                        );
                        conn.execute(sqlx::raw_sql(&pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(connect_err)?;
        // An operator's own login (team mode) may not change the schema: it checks the owner
        // has migrated, and leaves migrating and granting to the owner.
        let operator_login = backend == Backend::Postgres && team::is_operator_login(&pool).await?;
        let store = Self {
            pool,
            url: url.clone(),
            operator_login,
        };
        if operator_login {
            let missing = team::missing_migrations(&store.pool, &POSTGRES_MIGRATIONS).await?;
            if !missing.is_empty() {
                return Err(StoreError::SchemaBehind { missing });
            }
            return Ok(store);
        }
        store.migrate().await?;
        if backend == Backend::Postgres {
            team::apply(&store.pool).await?;
        }
        let rebuilt = store.rebuild_deferred_indexes().await?;
        if rebuilt > 0 {
            tracing::warn!(
                rebuilt,
                "rebuilt indexes an interrupted bulk load had dropped"
            );
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Whether this store is connected as an operator's own database login (team mode) rather
    /// than as the database's owner.
    pub fn is_operator_login(&self) -> bool {
        self.operator_login
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The database URL with any password removed, for display.
    pub fn describe(&self) -> String {
        self.url.redacted()
    }

    /// The connection pool, for the domain modules' `repo` parts.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction.
    ///
    /// On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`), so two writers queue on
    /// the busy timeout instead of one failing when it upgrades a read to a write.
    ///
    /// The URL this store was opened with.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A transaction dropped unfinished (its task cancelled mid-statement) is rolled back by the
    /// SQLite driver's worker shortly after; until then its connection still counts as inside
    /// a transaction and refuses `BEGIN IMMEDIATE` with `InvalidSavePointStatement`. That
    /// window is waited out here rather than surfaced as an error.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        if self.backend() == Backend::Postgres {
            return Ok(self.pool.begin().await?);
        }
        let mut attempts = 0;
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Err(sqlx::Error::InvalidSavePointStatement) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Flushes SQLite's write-ahead log into the main file and truncates it, so the file on
    /// disk holds the current state and nothing erased lingers in the log. No-op on Postgres.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend() == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The SQLite settings a connection of this store runs with (`None` on Postgres).
    pub async fn sqlite_settings(&self) -> Result<Option<SqliteSettings>, StoreError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        use sqlx::Row;
        let mut conn = self.pool.acquire().await?;
        let journal_mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let secure_delete: i64 = sqlx::query("PRAGMA secure_delete")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok(Some(SqliteSettings {
            journal_mode,
            foreign_keys: foreign_keys != 0,
            secure_delete: secure_delete != 0,
        }))
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How a SQLite connection is set up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SqliteSettings {
    /// `wal` expected.
    pub journal_mode: String,
    /// Foreign keys enforced.
    pub foreign_keys: bool,
    /// Deleted content overwritten.
    pub secure_delete: bool,
}

/// A UTC instant as the store keeps it: microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// From microseconds since the epoch, as stored.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch, for storing.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// As a `chrono` time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// RFC 3339 with microseconds, `Z` suffix.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t.timestamp_micros())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Reads a flag column: `BOOLEAN` on Postgres, `INTEGER` 0/1 on SQLite (sqlx's `Any` driver
/// cannot map SQLite's boolean type, so the SQLite schema declares flags as integers).
pub(crate) fn flag(row: &sqlx::any::AnyRow, index: usize) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<bool, _>(index) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(index)? != 0),
    }
}

/// Maps every row with `f`: the one place a query's rows become values.
pub(crate) fn map_rows<T>(
    rows: &[sqlx::any::AnyRow],
    f: impl Fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(f)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// The backend a transaction runs on.
pub(crate) fn backend_of(tx: &mut Tx) -> Backend {
    use sqlx::AnyConnection;
    let conn: &mut AnyConnection = tx;
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// Bound parameters per statement: below SQLite's 32,766 and Postgres' 65,535.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// Builds `(p, p, ...), (p, ...)` for a multi-row insert of `rows` rows of `cols` values.
///
/// Postgres gets `$1, $2, ...`. SQLite gets anonymous `?`: it looks named parameters such as
/// `$7` up by a linear search, which makes a statement with thousands of them quadratic.
pub(crate) fn values_placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(
            values_placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(values_placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn timestamps_round_trip_through_micros() {
        let t = Timestamp::now();
        assert_eq!(Timestamp::from_micros(t.micros()), t);
        assert_eq!(Timestamp::from(t.to_datetime()), t);
        assert_eq!(
            Timestamp::from_micros(0).to_rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
    }
}
