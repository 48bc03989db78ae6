//! Database URLs: which backend, where, and how to show one without its password.

use std::path::{Path, PathBuf};

/// The two databases Vigil runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A local SQLite file (the default).
    Sqlite,
    /// A Postgres server shared by several consoles and workers.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A database URL that was checked to name a backend Vigil supports.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the driver connects with.
    connect: String,
    /// For SQLite, the file.
    path: Option<PathBuf>,
}

/// The URL is neither `sqlite://...` nor `postgres://...`.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported database URL {shown:?}: use sqlite:///path/to/vigil.db or postgres://user@host/db"
)]
pub struct InvalidDatabaseUrl {
    shown: String,
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, `postgres://...` or `postgresql://...`.
    pub fn parse(s: &str) -> Result<Self, InvalidDatabaseUrl> {
        let s = s.trim();
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            let file = rest.split('?').next().unwrap_or_default();
            if file.is_empty() || file == ":memory:" {
                return Err(InvalidDatabaseUrl { shown: redact(s) });
            }
            return Ok(Self::sqlite_file(Path::new(file)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                connect: s.to_owned(),
                path: None,
            });
        }
        Err(InvalidDatabaseUrl { shown: redact(s) })
    }

    /// A SQLite database in `path`, created if missing.
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            backend: Backend::Sqlite,
            connect: format!("sqlite://{}?mode=rwc", path.display()),
            path: Some(path.to_owned()),
        }
    }

    /// Which backend the URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For SQLite, the database file.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The URL as written in a config file (with its password, if it has one).
    pub fn to_config_string(&self) -> String {
        match &self.path {
            Some(p) => format!("sqlite://{}", p.display()),
            None => self.connect.clone(),
        }
    }

    /// For Postgres, the database user the URL names, if any.
    pub fn postgres_user(&self) -> Option<String> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let u = url::Url::parse(&self.connect).ok()?;
        let user = u.username();
        (!user.is_empty()).then(|| percent_decode(user))
    }

    /// Whether the URL carries a password (in its user part or as a `password=` parameter).
    pub fn has_password(&self) -> bool {
        url::Url::parse(&self.connect)
            .is_ok_and(|u| u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password"))
    }

    /// Server, port and database of a Postgres URL (`host:port/db`), without user or password:
    /// what a remembered database password is filed under.
    pub fn postgres_target(&self) -> Option<String> {
        let u = url::Url::parse(&self.connect).ok()?;
        Some(format!(
            "{}:{}{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            u.path()
        ))
    }

    /// This Postgres URL with `password` for its user (a team-mode operator's database
    /// password, kept in their keystore rather than in the config file).
    pub fn with_password(&self, password: &str) -> Option<DatabaseUrl> {
        let mut u = url::Url::parse(&self.connect).ok()?;
        u.set_password(Some(password)).ok()?;
        Some(Self {
            backend: self.backend,
            connect: u.to_string(),
            path: None,
        })
    }

    /// This Postgres URL as `user`, without any password in its user part: what a team-mode
    /// operator's config file holds (their password is in their keystore).
    pub fn with_user_only(&self, user: &str) -> Option<DatabaseUrl> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let mut u = url::Url::parse(&self.connect).ok()?;
        u.set_username(user).ok()?;
        u.set_password(None).ok()?;
        Some(Self {
            backend: self.backend,
            connect: u.to_string(),
            path: None,
        })
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match &self.path {
            Some(p) => format!("sqlite://{}", p.display()),
            None => redact(&self.connect),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// Replaces the password in `scheme://user:password@host...` and any `password=` parameter.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let rest = &out[auth_start..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let cleaned: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", cleaned.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends() {
        let s = DatabaseUrl::parse("sqlite:///tmp/x/vigil.db").unwrap();
        assert_eq!(s.backend(), Backend::Sqlite);
        assert_eq!(s.sqlite_path(), Some(Path::new("/tmp/x/vigil.db")));
        let p = DatabaseUrl::parse("postgresql://v@localhost:5432/vigil").unwrap();
        assert_eq!(p.backend(), Backend::Postgres);
    }

    #[test]
    fn refuses_other_schemes_and_memory() {
        assert!(DatabaseUrl::parse("mysql://root@localhost/x").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }

    #[test]
    fn never_shows_a_password() {
        let p = DatabaseUrl::parse("postgres://vigil:hunter2@db:5432/v?sslmode=require&password=x")
            .unwrap();
        let shown = format!("{p} {p:?} {}", p.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("vigil:***@db:5432/v"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
        let err = DatabaseUrl::parse("mysql://u:secret@h/d")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
