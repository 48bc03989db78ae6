//! Job locks: a scheduled job (retention, the detectors) runs on one worker at a time, however
//! many consoles and headless workers share the database.
//!
//! On Postgres a job lock is a session advisory lock held on a connection of its own, taken
//! out of the pool: if the worker dies, the server closes that connection and the lock is free
//! for the next worker. On SQLite, whose workers share one machine, it is an exclusive lock on
//! a file next to the database, which the operating system releases when the process ends.

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use super::{Backend, Store, StoreError, Tx};

/// A job lock that is held until [`JobLock::release`] or drop.
#[derive(Debug)]
pub struct JobLock {
    job: String,
    held: Held,
}

#[derive(Debug)]
enum Held {
    Postgres {
        conn: Option<sqlx::AnyConnection>,
        key: i64,
    },
    File(#[allow(dead_code)] std::fs::File),
    /// An in-memory database has no file to lock; its workers are this process's tasks.
    Process,
}

/// Jobs locked by this process on in-memory databases.
static IN_PROCESS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The advisory lock key of a job: the first eight bytes of `SHA-256("vigil.job." + name)`.
fn advisory_key(job: &str) -> i64 {
    let digest = Sha256::digest(format!("vigil.job.{job}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

/// Holds the transaction lock `name` until `tx` ends, waiting while another transaction
/// holds it: transactions that take it run one at a time. On Postgres it is an advisory
/// transaction lock (key: the first eight bytes of `SHA-256("vigil.xact." + name)`); on SQLite
/// a write transaction holds the database's one write lock already, so there is nothing more
/// to take. Take it first in `tx`, before any row lock, so it cannot be part of a deadlock.
pub async fn serialize_transaction(tx: &mut Tx, name: &str) -> Result<(), StoreError> {
    if super::backend_of(tx) == Backend::Sqlite {
        return Ok(());
    }
    let digest = Sha256::digest(format!("vigil.xact.{name}").as_bytes());
    let key = i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Takes the lock of `job` if no worker holds it; `None` if one does.
    pub async fn try_job_lock(&self, job: &str) -> Result<Option<JobLock>, StoreError> {
        let held = match self.backend() {
            Backend::Postgres => {
                let mut conn = self.pool().acquire().await?.detach();
                let key = advisory_key(job);
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(key)
                    .fetch_one(&mut conn)
                    .await?
                    .try_get(0)?;
                if !got {
                    let _ = conn.close().await;
                    return Ok(None);
                }
                Held::Postgres {
                    conn: Some(conn),
                    key,
                }
            }
            Backend::Sqlite => match self.url().sqlite_path() {
                Some(db) => {
                    let mut name = db.as_os_str().to_owned();
                    // A job's name may have parts (`monitor/3`): one file beside the database.
                    name.push(format!(".{}.lock", job.replace('/', "-")));
                    let file = super::files::open_private(std::path::Path::new(&name)).map_err(
                        |source| StoreError::LockFile {
                            path: std::path::PathBuf::from(&name).display().to_string(),
                            source,
                        },
                    )?;
                    match file.try_lock() {
                        Ok(()) => Held::File(file),
                        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                        Err(std::fs::TryLockError::Error(source)) => {
                            return Err(StoreError::LockFile {
                                path: std::path::PathBuf::from(&name).display().to_string(),
                                source,
                            })
                        }
                    }
                }
                None => {
                    let mut set = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
                    if !set.get_or_insert_with(HashSet::new).insert(job.to_owned()) {
                        return Ok(None);
                    }
                    Held::Process
                }
            },
        };
        Ok(Some(JobLock {
            job: job.to_owned(),
            held,
        }))
    }
}

impl JobLock {
    /// The job this lock is for.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Releases the lock now (dropping it releases it too, by closing its connection or file).
    pub async fn release(mut self) {
        if let Held::Postgres { conn, key } = &mut self.held {
            if let Some(mut c) = conn.take() {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(*key)
                    .execute(&mut c)
                    .await;
                let _ = c.close().await;
            }
        }
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        match &mut self.held {
            Held::Process => {
                let mut set = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = set.as_mut() {
                    s.remove(&self.job);
                }
            }
            // Dropped without `release` (an error path, a cancelled task): unlock and close on
            // the runtime if there is one; otherwise the connection closes as it drops and the
            // server frees the lock once it sees the socket gone.
            Held::Postgres { conn, key } => {
                if let (Some(mut c), Ok(rt)) = (conn.take(), tokio::runtime::Handle::try_current())
                {
                    let key = *key;
                    rt.spawn(async move {
                        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                            .bind(key)
                            .execute(&mut c)
                            .await;
                        let _ = c.close().await;
                    });
                }
            }
            // The file closes as it drops, and its lock goes with it.
            Held::File(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_have_distinct_stable_keys() {
        assert_eq!(advisory_key("retention"), advisory_key("retention"));
        assert_ne!(advisory_key("retention"), advisory_key("monitor"));
    }
}
