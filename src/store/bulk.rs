//! Bulk work on SQLite: secondary indexes built once after the load (or the mass delete)
//! instead of row by row.
//!
//! Inserting a million rows into a table whose indexes are keyed by random values (author,
//! user) costs a random B-tree descent per row and index; building the index afterwards is one
//! sort. Deleting most of a table in chunks taken in time order rewrites nearly every page of
//! such an index once per chunk. [`Store::defer_indexes`] (every non-unique secondary index of
//! the given tables) and [`Store::defer_named_indexes`] record the definitions in `app_meta`
//! and drop the indexes, in one transaction;
//! [`Store::rebuild_deferred_indexes`] recreates them and clears the record, in one
//! transaction. If the process dies in between, the next [`Store::open`] rebuilds them, so a
//! crash never leaves the schema short of an index. Unique indexes stay: they guard data.
//! Postgres needs none of this; these calls are no-ops there.

use sqlx::Row;

use super::{Backend, Store, StoreError, Timestamp};

const META_KEY: &str = "deferred_indexes";

impl Store {
    /// Drops the non-unique secondary indexes of `tables` until
    /// [`Store::rebuild_deferred_indexes`] (or the next open) rebuilds them. SQLite only.
    pub async fn defer_indexes(&self, tables: &[&str]) -> Result<(), StoreError> {
        self.defer(tables, None).await.map(|_| ())
    }

    /// Drops the named non-unique indexes of `table` the same way: recorded, and rebuilt by
    /// [`Store::rebuild_deferred_indexes`] or the next open. For a bulk delete that would
    /// otherwise rewrite most of an index's pages once per chunk. Returns how many were
    /// dropped (none that are already deferred or are unique). SQLite only.
    pub async fn defer_named_indexes(
        &self,
        table: &str,
        names: &[&str],
    ) -> Result<usize, StoreError> {
        if names.is_empty() {
            return Ok(0);
        }
        self.defer(&[table], Some(names)).await
    }

    async fn defer(&self, tables: &[&str], names: Option<&[&str]>) -> Result<usize, StoreError> {
        if self.backend() != Backend::Sqlite || tables.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let pending: Option<String> = sqlx::query("SELECT value FROM app_meta WHERE key = ?")
            .bind(META_KEY)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let mut defs: Vec<(String, String)> = match pending {
            Some(json) => serde_json::from_str(&json).map_err(|_| StoreError::Corrupt(META_KEY))?,
            None => Vec::new(),
        };
        let marks = vec!["?"; tables.len()].join(", ");
        let named = match names {
            Some(n) => format!(" AND name IN ({})", vec!["?"; n.len()].join(", ")),
            None => String::new(),
        };
        let sql = format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({marks}){named} ORDER BY name"
        );
        let mut q = sqlx::query(&sql);
        for t in tables.iter().chain(names.unwrap_or_default()) {
            q = q.bind(*t);
        }
        let found = q.fetch_all(&mut *tx).await?;
        for row in &found {
            let name: String = row.try_get(0)?;
            let ddl: String = row.try_get(1)?;
            sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
                .execute(&mut *tx)
                .await?;
            defs.push((name, ddl));
        }
        let json = serde_json::to_string(&defs).map_err(|_| StoreError::Corrupt(META_KEY))?;
        sqlx::query(
            "INSERT INTO app_meta (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(META_KEY)
        .bind(json)
        .bind(Timestamp::now().micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.len())
    }

    /// Rebuilds every index [`Store::defer_indexes`] dropped, and updates the planner's
    /// statistics. Returns how many were rebuilt. No-op when none are pending.
    pub async fn rebuild_deferred_indexes(&self) -> Result<usize, StoreError> {
        if self.backend() != Backend::Sqlite {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let pending: Option<String> = sqlx::query("SELECT value FROM app_meta WHERE key = ?")
            .bind(META_KEY)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(json) = pending else {
            return Ok(0);
        };
        let defs: Vec<(String, String)> =
            serde_json::from_str(&json).map_err(|_| StoreError::Corrupt(META_KEY))?;
        for (_, ddl) in &defs {
            sqlx::query(ddl).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM app_meta WHERE key = ?")
            .bind(META_KEY)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        sqlx::query("PRAGMA optimize").execute(self.pool()).await?;
        Ok(defs.len())
    }
}
