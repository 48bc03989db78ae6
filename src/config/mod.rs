//! Vigil's configuration: a typed struct loaded once, layered as defaults, then a TOML file in
//! the OS config folder (or `VIGIL_CONFIG`), then `VIGIL_*` environment variables.

pub mod policy;
pub mod shards;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::KeyBits;
use crate::identity::Role;
use crate::keystore::KeystoreChoice;
use crate::store::{DatabaseUrl, StoreOptions};

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where the database is.
    pub database: DatabaseConfig,
    /// Where operators' secrets are kept.
    pub keystore: KeystoreChoice,
    /// Log filter for stderr (`tracing` env-filter syntax).
    pub log: String,
    /// Size of new operator RSA key pairs.
    pub rsa_bits: KeyBits,
    /// Content and URL screening: extra rules and blocklist files.
    pub monitor: MonitorConfig,
    /// Retention runs and the audit archive (`[retention]`).
    pub retention: RetentionConfig,
    /// Scheduled jobs (`[worker]`).
    pub worker: WorkerConfig,
    /// The platform's token keys (`[platform]`).
    pub platform: PlatformConfig,
    /// Sign-in and session policy (`[auth]`).
    pub auth: AuthConfig,
    /// Mail delivery of the outbox (`[mail]`).
    pub mail: MailConfig,
    /// The file the configuration was read from, if any.
    pub source_file: Option<PathBuf>,
}

/// Monitoring settings (`[monitor]` in the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Files of blocklisted hosts and URLs, one per line (`#` starts a comment).
    #[serde(default)]
    pub blocklist: Vec<PathBuf>,
    /// Screening rules beyond the four built-in ones: name = case-insensitive regex.
    #[serde(default)]
    pub rules: std::collections::BTreeMap<String, String>,
    /// Detector thresholds and automated responses (`[monitor.policy]`).
    #[serde(default)]
    pub policy: crate::config::policy::Policy,
    /// The longest line `activity ingest` and `monitor screen` take, in bytes (1,024 to
    /// 1,048,576; default 65,536). A longer line is skipped and reported by its number.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How many shards the detectors are split into, 1 to 64 (default 1): workers sharing a
    /// database each take the shards no other holds (see `monitor::shard`). Every
    /// worker and console on one database should have the same count; a run with another
    /// count changes it (exactly once for every record), and the others change it back.
    #[serde(default)]
    pub shards: shards::ShardCount,
}

/// The default of `[monitor] max_line_bytes`: 64 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// The range `[monitor] max_line_bytes` may be set in.
pub const MAX_LINE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=(1 << 20);

fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            blocklist: Vec::new(),
            rules: std::collections::BTreeMap::new(),
            policy: crate::config::policy::Policy::default(),
            max_line_bytes: default_max_line_bytes(),
            shards: shards::ShardCount::ONE,
        }
    }
}

/// Most records in one retention chunk (one transaction).
pub const MAX_CHUNK: u32 = 200_000;

/// Records per chunk unless configured. Each chunk of a table with several indexes in random
/// order (activity by account and by address) rewrites most of their pages, so on SQLite a
/// chunk costs a near-fixed amount of page writing on top of its rows: 50,000 rows (about half
/// a second of write lock) deletes about four times faster than 5,000.
pub const DEFAULT_CHUNK: u32 = 50_000;

/// Retention settings (`[retention]` in the file). The policies themselves live in the database,
/// so every console and worker sharing it applies the same ones.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Where archived audit segments go (`VIGIL_ARCHIVE_DIR`). Workers sharing one Postgres
    /// database should share this folder. Default: `audit-archive` in the OS data folder.
    pub archive_dir: Option<PathBuf>,
    /// Records per chunk (one transaction each), 1 to 200,000.
    #[serde(default = "default_chunk")]
    pub chunk: u32,
}

fn default_chunk() -> u32 {
    DEFAULT_CHUNK
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            archive_dir: None,
            chunk: default_chunk(),
        }
    }
}

impl RetentionConfig {
    /// The archive folder: the configured one, or `audit-archive` in the OS data folder.
    pub fn archive_dir(&self) -> Option<PathBuf> {
        self.archive_dir
            .clone()
            .or_else(|| project_dirs().map(|d| d.data_dir().join("audit-archive")))
    }
}

/// Scheduled-job settings (`[worker]` in the file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Seconds between runs of the detectors, 5 to 86,400.
    #[serde(default = "default_monitor_interval")]
    pub monitor_interval_secs: u64,
    /// Hours between retention runs, 1 to 720.
    #[serde(default = "default_retention_interval")]
    pub retention_interval_hours: u64,
}

fn default_monitor_interval() -> u64 {
    60
}

fn default_retention_interval() -> u64 {
    24
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            monitor_interval_secs: default_monitor_interval(),
            retention_interval_hours: default_retention_interval(),
        }
    }
}

/// The platform Vigil watches over (`[platform]` in the file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// A PEM (`PUBLIC KEY` or `RSA PUBLIC KEY` blocks) or JWKS file with the public keys the
    /// platform signs its users' access tokens with (RS256, ES256 or EdDSA). A data subject's
    /// token is verified with these; Vigil holds no secret that could sign one.
    pub token_keys: Option<PathBuf>,
    /// The `iss` of the platform's tokens.
    #[serde(default = "default_platform_issuer")]
    pub token_issuer: String,
    /// The `aud` of the platform's tokens.
    #[serde(default = "default_platform_audience")]
    pub token_audience: String,
    /// The longest lifetime (`exp - iat`) accepted, in seconds.
    #[serde(default = "default_platform_lifetime")]
    pub token_max_lifetime_secs: u64,
}

fn default_platform_issuer() -> String {
    "platform".into()
}

fn default_platform_audience() -> String {
    "platform".into()
}

fn default_platform_lifetime() -> u64 {
    3600
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            token_keys: None,
            token_issuer: default_platform_issuer(),
            token_audience: default_platform_audience(),
            token_max_lifetime_secs: default_platform_lifetime(),
        }
    }
}

/// Sign-in and session policy (`[auth]` in the file).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthConfig {
    /// Roles whose operators must have a second factor: without one they may only enrol.
    /// `VIGIL_REQUIRE_MFA` (a comma-separated list, or `none`) overrides the file.
    pub require_mfa: Vec<Role>,
    /// Where `require_mfa` came from: `default`, `config file` or `VIGIL_REQUIRE_MFA`.
    pub require_mfa_source: &'static str,
    /// Seconds without use after which an operator session ends (the desktop locks), 5 to
    /// 86,400 (`VIGIL_IDLE_TIMEOUT_SECS`).
    pub idle_timeout_secs: u64,
    /// Seconds after sign-in at which an operator session ends whatever its use; refresh stops
    /// there. 60 to 2,592,000 (`VIGIL_SESSION_LIFETIME_SECS`).
    pub absolute_lifetime_secs: u64,
}

/// The roles that must have MFA unless configured otherwise.
pub const DEFAULT_REQUIRE_MFA: [Role; 2] = [Role::Admin, Role::ComplianceOfficer];
/// The default idle timeout: 15 minutes.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 15 * 60;
/// The default absolute session lifetime: 12 hours.
pub const DEFAULT_ABSOLUTE_LIFETIME_SECS: u64 = 12 * 3600;

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            require_mfa: DEFAULT_REQUIRE_MFA.to_vec(),
            require_mfa_source: "default",
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            absolute_lifetime_secs: DEFAULT_ABSOLUTE_LIFETIME_SECS,
        }
    }
}

impl AuthConfig {
    /// Whether an operator holding `roles` must have a second factor.
    pub fn requires_mfa(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.require_mfa.contains(r))
    }

    /// The MFA policy sign-in applies.
    pub fn mfa_policy(&self) -> crate::identity::MfaPolicy {
        crate::identity::MfaPolicy::roles(&self.require_mfa)
    }

    /// The `require_mfa` list as text: role names joined by commas, or `none`.
    pub fn require_mfa_text(&self) -> String {
        if self.require_mfa.is_empty() {
            "none".into()
        } else {
            let names: Vec<&str> = self.require_mfa.iter().map(|r| r.as_str()).collect();
            names.join(",")
        }
    }
}

/// `[auth]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    require_mfa: Option<Vec<String>>,
    idle_timeout_secs: Option<u64>,
    absolute_lifetime_secs: Option<u64>,
}

/// Parses role names (`none` alone, or an empty list, means no role).
fn parse_roles<'a>(
    names: impl IntoIterator<Item = &'a str>,
    key: &str,
) -> Result<Vec<Role>, ConfigError> {
    let mut roles = Vec::new();
    let names: Vec<&str> = names
        .into_iter()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names == ["none"] {
        return Ok(roles);
    }
    for name in names {
        let role = Role::parse(name).ok_or_else(|| ConfigError::Invalid {
            key: key.into(),
            message: format!(
                "unknown role {name:?}; expected `none` or roles among {}",
                Role::ALL.map(|r| r.as_str()).join(", ")
            ),
        })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

fn load_auth(
    file: Option<FileAuth>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<AuthConfig, ConfigError> {
    let file = file.unwrap_or_default();
    let mut auth = AuthConfig::default();
    if let Some(list) = env("VIGIL_REQUIRE_MFA") {
        auth.require_mfa = parse_roles(list.split(','), "VIGIL_REQUIRE_MFA")?;
        auth.require_mfa_source = "VIGIL_REQUIRE_MFA";
    } else if let Some(list) = &file.require_mfa {
        auth.require_mfa = parse_roles(list.iter().map(String::as_str), "auth.require_mfa")?;
        auth.require_mfa_source = "config file";
    }
    let seconds = |env_key: &str,
                   file_key: &str,
                   file_value: Option<u64>,
                   range: std::ops::RangeInclusive<u64>,
                   default: u64| {
        let (value, key) = match env(env_key) {
            Some(v) => (v.trim().parse::<u64>().ok(), env_key),
            None => (Some(file_value.unwrap_or(default)), file_key),
        };
        value
            .filter(|v| range.contains(v))
            .ok_or_else(|| ConfigError::Invalid {
                key: key.into(),
                message: format!(
                    "expected a number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            })
    };
    auth.idle_timeout_secs = seconds(
        "VIGIL_IDLE_TIMEOUT_SECS",
        "auth.idle_timeout_secs",
        file.idle_timeout_secs,
        5..=86_400,
        DEFAULT_IDLE_TIMEOUT_SECS,
    )?;
    auth.absolute_lifetime_secs = seconds(
        "VIGIL_SESSION_LIFETIME_SECS",
        "auth.absolute_lifetime_secs",
        file.absolute_lifetime_secs,
        60..=30 * 86_400,
        DEFAULT_ABSOLUTE_LIFETIME_SECS,
    )?;
    Ok(auth)
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: only for a server on this machine (a loopback host).
    None,
}

impl MailSecurity {
    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailSecurity::Starttls => "starttls",
            MailSecurity::Tls => "tls",
            MailSecurity::None => "none",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "starttls" => Some(MailSecurity::Starttls),
            "tls" => Some(MailSecurity::Tls),
            "none" => Some(MailSecurity::None),
            _ => None,
        }
    }

    /// The port used when none is configured.
    pub fn default_port(self) -> u16 {
        match self {
            MailSecurity::Starttls => 587,
            MailSecurity::Tls => 465,
            MailSecurity::None => 25,
        }
    }
}

/// Mail settings (`[mail]` in the file, each overridden by its `VIGIL_MAIL_*` variable). The
/// password is never here: it is kept in the keystore (`vigil mail set-password`), or given to
/// a headless process as `VIGIL_MAIL_PASSWORD`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MailConfig {
    /// The SMTP server; without one, mail is not configured and the outbox waits.
    pub host: Option<String>,
    /// Its port (`security`'s default if unset).
    pub port: u16,
    /// `starttls`, `tls` or `none` (loopback hosts only).
    pub security: MailSecurity,
    /// The sender address (`Vigil <vigil@example.org>` or a bare address).
    pub from: Option<String>,
    /// Where replies go (a subject's reply carries their code to the officers).
    pub reply_to: Option<String>,
    /// The SMTP login, if the server wants one.
    pub username: Option<String>,
    /// An extra trusted root certificate (PEM) for a server with a private certificate
    /// authority; the public web roots are trusted as well.
    pub ca_file: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: MailSecurity::Starttls.default_port(),
            security: MailSecurity::Starttls,
            from: None,
            reply_to: None,
            username: None,
            ca_file: None,
        }
    }
}

/// Whether `host` names this machine: `localhost`, or a loopback IP address.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `[mail]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMail {
    host: Option<String>,
    port: Option<u16>,
    security: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    username: Option<String>,
    ca_file: Option<PathBuf>,
}

fn load_mail(
    file: Option<FileMail>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<MailConfig, ConfigError> {
    let file = file.unwrap_or_default();
    let pick = |env_key: &str, file_value: Option<String>| {
        env(env_key)
            .or(file_value)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let invalid = |key: &str, message: &str| ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    };
    let security = match env("VIGIL_MAIL_SECURITY") {
        Some(s) => MailSecurity::parse(&s)
            .ok_or_else(|| invalid("VIGIL_MAIL_SECURITY", "expected starttls, tls or none"))?,
        None => match file.security.as_deref() {
            Some(s) => MailSecurity::parse(s)
                .ok_or_else(|| invalid("mail.security", "expected starttls, tls or none"))?,
            None => MailSecurity::Starttls,
        },
    };
    let port = match env("VIGIL_MAIL_PORT") {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid("VIGIL_MAIL_PORT", "expected a port from 1 to 65535"))?,
        None => match file.port {
            Some(0) => return Err(invalid("mail.port", "expected a port from 1 to 65535")),
            Some(p) => p,
            None => security.default_port(),
        },
    };
    let host = pick("VIGIL_MAIL_HOST", file.host);
    if security == MailSecurity::None && !host.as_deref().is_some_and(is_loopback_host) {
        return Err(invalid(
            "mail.security",
            "`none` sends mail unencrypted and is allowed only for a server on this machine \
             (localhost, 127.0.0.1 or ::1); use starttls or tls",
        ));
    }
    let address = |key: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
        match value {
            Some(v) => {
                v.parse::<lettre::message::Mailbox>().map_err(|_| {
                    invalid(key, "expected an email address, optionally with a name")
                })?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    };
    let from = address("mail.from", pick("VIGIL_MAIL_FROM", file.from))?;
    let reply_to = address("mail.reply_to", pick("VIGIL_MAIL_REPLY_TO", file.reply_to))?;
    let ca_file = env("VIGIL_MAIL_CA_FILE")
        .map(PathBuf::from)
        .or(file.ca_file);
    if ca_file.as_deref().is_some_and(|p| !p.is_absolute()) {
        return Err(invalid("mail.ca_file", "expected an absolute path"));
    }
    Ok(MailConfig {
        host,
        port,
        security,
        from,
        reply_to,
        username: pick("VIGIL_MAIL_USERNAME", file.username),
        ca_file,
    })
}

/// Database settings.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseConfig {
    /// The database URL (shown with its password redacted).
    #[serde(serialize_with = "redacted_url")]
    pub url: DatabaseUrl,
    /// Most pooled connections.
    pub max_connections: u32,
    /// Whether the URL was chosen (`VIGIL_DATABASE_URL` or `database.url` in the file) rather
    /// than the default local file: first-run setup does not move a chosen database.
    #[serde(skip)]
    pub configured: bool,
}

impl DatabaseConfig {
    /// Store options from these settings.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_connections: self.max_connections,
            ..StoreOptions::default()
        }
    }
}

fn redacted_url<S: serde::Serializer>(u: &DatabaseUrl, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&u.redacted())
}

/// The file's shape: every key optional, unknown keys refused (a typo should not be ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database: Option<FileDatabase>,
    keystore: Option<String>,
    log: Option<String>,
    rsa_bits: Option<u32>,
    monitor: Option<MonitorConfig>,
    retention: Option<RetentionConfig>,
    worker: Option<WorkerConfig>,
    platform: Option<PlatformConfig>,
    auth: Option<FileAuth>,
    mail: Option<FileMail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for Vigil's settings.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A setting has an invalid value.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting's name (file key or environment variable).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No home folder to put the default database and config in.
    #[error("cannot find the OS data folder; set VIGIL_DATABASE_URL")]
    NoHome,
}

/// The OS folders Vigil uses by default.
fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Vigil", "vigil")
}

/// The default config file: `config.toml` in the OS config folder.
pub fn default_config_file() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

/// The default database: `vigil.db` in the OS data folder.
pub fn default_database_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.data_dir().join("vigil.db"))
}

impl Config {
    /// Loads from the process environment and the default (or `VIGIL_CONFIG`) file.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_with(|k| std::env::var(k).ok())
    }

    /// Loads with `env` standing for the environment (tests pass a map).
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let explicit = env("VIGIL_CONFIG").map(PathBuf::from);
        let file_path = explicit.clone().or_else(default_config_file);
        let (file, source_file) = match &file_path {
            Some(p) if explicit.is_some() || p.exists() => (read_file(p)?, Some(p.clone())),
            _ => (FileConfig::default(), None),
        };
        let fdb = file.database.unwrap_or_default();

        let (url_text, url_key) = match env("VIGIL_DATABASE_URL") {
            Some(u) => (Some(u), "VIGIL_DATABASE_URL"),
            None => (fdb.url, "database.url"),
        };
        let configured = url_text.is_some();
        let url = match url_text {
            Some(u) => DatabaseUrl::parse(&u).map_err(|e| ConfigError::Invalid {
                key: url_key.into(),
                message: e.to_string(),
            })?,
            None => DatabaseUrl::sqlite_file(&default_database_path().ok_or(ConfigError::NoHome)?),
        };

        let max_connections = match env("VIGIL_DB_MAX_CONNECTIONS") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(ConfigError::Invalid {
                    key: "VIGIL_DB_MAX_CONNECTIONS".into(),
                    message: "expected a number from 1 to 256".into(),
                })?,
            // The file's value gets the same range check as the environment's.
            None => match fdb.max_connections {
                Some(n) if !(1..=256).contains(&n) => {
                    return Err(ConfigError::Invalid {
                        key: "database.max_connections".into(),
                        message: "expected a number from 1 to 256".into(),
                    })
                }
                n => n.unwrap_or(8),
            },
        };

        let (ks_text, ks_key) = match env("VIGIL_KEYSTORE") {
            Some(k) => (Some(k), "VIGIL_KEYSTORE"),
            None => (file.keystore, "keystore"),
        };
        let keystore = match ks_text {
            Some(k) => KeystoreChoice::parse(&k).map_err(|message| ConfigError::Invalid {
                key: ks_key.into(),
                message,
            })?,
            None => KeystoreChoice::Os,
        };

        let log = env("VIGIL_LOG")
            .or(file.log)
            .unwrap_or_else(|| "warn".to_owned());

        let (bits, bits_key) = match env("VIGIL_RSA_BITS") {
            Some(b) => (
                b.parse::<u32>().map_err(|_| ConfigError::Invalid {
                    key: "VIGIL_RSA_BITS".into(),
                    message: "expected 2048, 3072 or 4096".into(),
                })?,
                "VIGIL_RSA_BITS",
            ),
            None => (file.rsa_bits.unwrap_or(2048), "rsa_bits"),
        };
        let rsa_bits = KeyBits::try_from(bits).map_err(|message| ConfigError::Invalid {
            key: bits_key.into(),
            message,
        })?;

        Ok(Self {
            database: DatabaseConfig {
                url,
                max_connections,
                configured,
            },
            keystore,
            log,
            rsa_bits,
            monitor: {
                let m = file.monitor.unwrap_or_default();
                m.policy
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        key: "monitor.policy".into(),
                        message,
                    })?;
                if !MAX_LINE_BYTES_RANGE.contains(&m.max_line_bytes) {
                    return Err(ConfigError::Invalid {
                        key: "monitor.max_line_bytes".into(),
                        message: "expected a number of bytes from 1,024 to 1,048,576".into(),
                    });
                }
                m
            },
            retention: {
                let mut r = file.retention.unwrap_or_default();
                if let Some(dir) = env("VIGIL_ARCHIVE_DIR") {
                    r.archive_dir = Some(PathBuf::from(dir));
                }
                if !(1..=MAX_CHUNK).contains(&r.chunk) {
                    return Err(ConfigError::Invalid {
                        key: "retention.chunk".into(),
                        message: "expected a number from 1 to 200,000".into(),
                    });
                }
                r
            },
            worker: {
                let w = file.worker.unwrap_or_default();
                if !(5..=86_400).contains(&w.monitor_interval_secs) {
                    return Err(ConfigError::Invalid {
                        key: "worker.monitor_interval_secs".into(),
                        message: "expected a number of seconds from 5 to 86,400".into(),
                    });
                }
                if !(1..=720).contains(&w.retention_interval_hours) {
                    return Err(ConfigError::Invalid {
                        key: "worker.retention_interval_hours".into(),
                        message: "expected a number of hours from 1 to 720".into(),
                    });
                }
                w
            },
            platform: {
                let p = file.platform.unwrap_or_default();
                if !(60..=30 * 86_400).contains(&p.token_max_lifetime_secs) {
                    return Err(ConfigError::Invalid {
                        key: "platform.token_max_lifetime_secs".into(),
                        message: "expected a number of seconds from 60 to 2,592,000".into(),
                    });
                }
                if p.token_keys.as_deref().is_some_and(|k| !k.is_absolute()) {
                    return Err(ConfigError::Invalid {
                        key: "platform.token_keys".into(),
                        message: "expected an absolute path".into(),
                    });
                }
                p
            },
            auth: load_auth(file.auth, &env)?,
            mail: load_mail(file.mail, &env)?,
            source_file,
        })
    }
}

/// Records the database URL in the config file at `path`, keeping every other setting in it
/// (the file is created if missing, written to a temporary file and renamed into place, and
/// readable by its owner only: a Postgres URL may carry a password). The URL is checked by
/// loading the result before it replaces the old file.
pub fn save_database_url(path: &Path, url: &DatabaseUrl) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "database.url".into(),
        message,
    };
    let mut doc: toml::Table = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?
    } else {
        toml::Table::new()
    };
    let database = doc
        .entry("database")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| invalid("[database] in the config file is not a table".into()))?;
    database.insert("url".into(), toml::Value::String(url.to_config_string()));
    let text = toml::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
    let checked: FileConfig = toml::from_str(&text).map_err(|e| invalid(e.message().to_owned()))?;
    drop(checked);
    let write = |e: std::io::Error| ConfigError::Read {
        path: path.to_owned(),
        source: e,
    };
    use crate::files;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    files::create_private_dir(dir).map_err(write)?;
    files::replace_atomically(path, text.as_bytes(), files::PRIVATE_FILE)
        .map_err(|e| write(e.into()))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::Backend;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with(|k| map.get(k).cloned())
    }

    #[test]
    fn the_detector_shard_count_is_1_by_default_and_1_to_64_when_set() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        let with = |text: &str| {
            std::fs::write(&f, text).unwrap();
            load(&[("VIGIL_CONFIG", f.to_str().unwrap())])
        };
        assert_eq!(with("").unwrap().monitor.shards.get(), 1);
        assert_eq!(
            with("[monitor]\nshards = 64\n")
                .unwrap()
                .monitor
                .shards
                .get(),
            64
        );
        for bad in [0, 65] {
            let e = with(&format!("[monitor]\nshards = {bad}\n")).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
            let shown = e.to_string();
            assert!(
                shown.contains("from 1 to 64") && shown.contains("[monitor] shards"),
                "{shown}"
            );
        }
        assert!(with("[monitor]\nshards = -1\n").is_err());
        assert!(with("[monitor]\nshards = \"four\"\n").is_err());
    }

    #[test]
    fn defaults_to_a_local_sqlite_file_and_the_os_keychain() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        // An explicit but missing file is an error; no file at all means defaults.
        assert!(load(&[("VIGIL_CONFIG", missing.to_str().unwrap())]).is_err());
        let c = load(&[]).unwrap();
        assert_eq!(c.database.url.backend(), Backend::Sqlite);
        assert!(c.database.url.sqlite_path().unwrap().ends_with("vigil.db"));
        assert_eq!(c.keystore, KeystoreChoice::Os);
    }

    #[test]
    fn saving_the_database_url_keeps_the_other_settings_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub").join("config.toml");
        let url = DatabaseUrl::parse("postgres://v:secret@db:5432/vigil").unwrap();
        save_database_url(&f, &url).unwrap();
        let c = load(&[("VIGIL_CONFIG", f.to_str().unwrap())]).unwrap();
        assert!(c.database.url == url);
        std::fs::write(&f, "log = \"info\"\n[database]\nmax_connections = 3\n").unwrap();
        let local = DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap();
        save_database_url(&f, &local).unwrap();
        let c = load(&[("VIGIL_CONFIG", f.to_str().unwrap())]).unwrap();
        assert!(c.database.url == local);
        assert_eq!((c.log.as_str(), c.database.max_connections), ("info", 3));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "config file readable by others: {mode:o}");
        }
        // A file that is not Vigil's TOML is refused and left as it was.
        std::fs::write(&f, "database = 5\n").unwrap();
        assert!(save_database_url(&f, &url).is_err());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "database = 5\n");
        // A symbolic link in the config file's place is refused by name, its target unchanged.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let sub = f.parent().unwrap();
            let mode = std::fs::metadata(sub).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "the folder made for it is owner-only");
            let target = dir.path().join("elsewhere.toml");
            std::fs::write(&target, "log = \"warn\"\n").unwrap();
            let link = dir.path().join("link.toml");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let e = save_database_url(&link, &url).unwrap_err();
            assert!(
                e.to_string().contains("is a symbolic link: not followed"),
                "{e}"
            );
            assert_eq!(
                std::fs::read_to_string(&target).unwrap(),
                "log = \"warn\"\n"
            );
        }
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(
            &f,
            "log = \"info\"\nkeystore = \"file:/var/lib/vigil/keys\"\n[database]\nurl = \"postgres://v:pw@db/vigil\"\nmax_connections = 4\n",
        )
        .unwrap();
        let path = f.to_str().unwrap();
        let c = load(&[("VIGIL_CONFIG", path)]).unwrap();
        assert_eq!(c.database.url.backend(), Backend::Postgres);
        assert_eq!(c.database.max_connections, 4);
        assert_eq!(c.log, "info");
        assert_eq!(
            c.keystore,
            KeystoreChoice::File(PathBuf::from("/var/lib/vigil/keys"))
        );
        let c = load(&[
            ("VIGIL_CONFIG", path),
            ("VIGIL_DATABASE_URL", "sqlite:///tmp/other.db"),
            ("VIGIL_LOG", "debug"),
        ])
        .unwrap();
        assert_eq!(c.database.url.backend(), Backend::Sqlite);
        assert_eq!(c.log, "debug");
        // The password never appears in the serialized (shown) config.
        let shown = serde_json::to_string(&load(&[("VIGIL_CONFIG", path)]).unwrap()).unwrap();
        assert!(!shown.contains(":pw@"), "{shown}");
    }

    #[test]
    fn the_platform_token_keys_are_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        let path = f.to_str().unwrap();
        assert_eq!(load(&[]).unwrap().platform, PlatformConfig::default());
        std::fs::write(
            &f,
            "[platform]\ntoken_keys = \"/etc/vigil/platform.jwks\"\ntoken_issuer = \"https://id.example\"\n",
        )
        .unwrap();
        let c = load(&[("VIGIL_CONFIG", path)]).unwrap().platform;
        assert_eq!(
            c.token_keys.as_deref(),
            Some(Path::new("/etc/vigil/platform.jwks"))
        );
        assert_eq!(c.token_issuer, "https://id.example");
        assert_eq!(c.token_audience, "platform");
        std::fs::write(&f, "[platform]\ntoken_keys = \"relative.pem\"\n").unwrap();
        let e = load(&[("VIGIL_CONFIG", path)]).unwrap_err();
        assert!(e.to_string().contains("platform.token_keys"), "{e}");
        std::fs::write(&f, "[platform]\ntoken_secret = \"x\"\n").unwrap();
        assert!(load(&[("VIGIL_CONFIG", path)]).is_err());
    }

    #[test]
    fn the_mfa_policy_and_session_limits_come_from_auth() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        let path = f.to_str().unwrap();
        let c = load(&[]).unwrap().auth;
        assert_eq!(c.require_mfa, vec![Role::Admin, Role::ComplianceOfficer]);
        assert_eq!(c.require_mfa_source, "default");
        assert_eq!(
            (c.idle_timeout_secs, c.absolute_lifetime_secs),
            (900, 43_200)
        );
        assert!(c.requires_mfa(&[Role::Moderator, Role::Admin]));
        assert!(!c.requires_mfa(&[Role::Moderator]));
        std::fs::write(
            &f,
            "[auth]\nrequire_mfa = [\"moderator\"]\nidle_timeout_secs = 60\nabsolute_lifetime_secs = 3600\n",
        )
        .unwrap();
        let c = load(&[("VIGIL_CONFIG", path)]).unwrap().auth;
        assert_eq!(
            (c.require_mfa.as_slice(), c.require_mfa_source),
            (&[Role::Moderator][..], "config file")
        );
        assert_eq!((c.idle_timeout_secs, c.absolute_lifetime_secs), (60, 3600));
        // The environment overrides the file; `none` turns the policy off.
        let c = load(&[("VIGIL_CONFIG", path), ("VIGIL_REQUIRE_MFA", "none")])
            .unwrap()
            .auth;
        assert!(c.require_mfa.is_empty());
        assert_eq!(
            (c.require_mfa_source, c.require_mfa_text().as_str()),
            ("VIGIL_REQUIRE_MFA", "none")
        );
        let c = load(&[
            ("VIGIL_REQUIRE_MFA", "admin, moderator,admin"),
            ("VIGIL_IDLE_TIMEOUT_SECS", "5"),
        ])
        .unwrap()
        .auth;
        assert_eq!(c.require_mfa, vec![Role::Admin, Role::Moderator]);
        assert_eq!(c.idle_timeout_secs, 5);
        // Bad values name the setting.
        for (k, v) in [
            ("VIGIL_REQUIRE_MFA", "root"),
            ("VIGIL_IDLE_TIMEOUT_SECS", "4"),
            ("VIGIL_IDLE_TIMEOUT_SECS", "soon"),
            ("VIGIL_SESSION_LIFETIME_SECS", "59"),
        ] {
            let e = load(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
        std::fs::write(&f, "[auth]\nrequire_mfa = [\"admin\", \"wizard\"]\n").unwrap();
        let e = load(&[("VIGIL_CONFIG", path)]).unwrap_err();
        assert!(e.to_string().contains("auth.require_mfa"), "{e}");
        std::fs::write(&f, "[auth]\nidle_timeout = 60\n").unwrap();
        assert!(load(&[("VIGIL_CONFIG", path)]).is_err());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "[database]\nurll = \"x\"\n").unwrap();
        let e = load(&[("VIGIL_CONFIG", f.to_str().unwrap())]).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = load(&[("VIGIL_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(e.to_string().contains("VIGIL_DATABASE_URL"), "{e}");
        let e = load(&[("VIGIL_KEYSTORE", "vault")]).unwrap_err();
        assert!(e.to_string().contains("VIGIL_KEYSTORE"), "{e}");
        let e = load(&[("VIGIL_DB_MAX_CONNECTIONS", "0")]).unwrap_err();
        assert!(e.to_string().contains("VIGIL_DB_MAX_CONNECTIONS"), "{e}");
    }

    #[test]
    fn mail_settings_layer_and_refuse_plain_smtp_off_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(
            &f,
            "[mail]\nhost = \"smtp.example.org\"\nsecurity = \"tls\"\n\
             from = \"Vigil <vigil@example.org>\"\nusername = \"vigil\"\n",
        )
        .unwrap();
        let path = f.to_str().unwrap();
        let m = load(&[("VIGIL_CONFIG", path)]).unwrap().mail;
        assert_eq!(m.host.as_deref(), Some("smtp.example.org"));
        assert_eq!((m.security, m.port), (MailSecurity::Tls, 465));
        let m = load(&[
            ("VIGIL_CONFIG", path),
            ("VIGIL_MAIL_HOST", "127.0.0.1"),
            ("VIGIL_MAIL_SECURITY", "none"),
            ("VIGIL_MAIL_PORT", "2525"),
        ])
        .unwrap()
        .mail;
        assert_eq!((m.security, m.port), (MailSecurity::None, 2525));
        assert_eq!(load(&[]).unwrap().mail, MailConfig::default());
        for bad in [
            vec![("VIGIL_MAIL_SECURITY", "none")],
            vec![
                ("VIGIL_MAIL_SECURITY", "none"),
                ("VIGIL_MAIL_HOST", "10.0.0.1"),
            ],
            vec![("VIGIL_MAIL_SECURITY", "ssl")],
            vec![("VIGIL_MAIL_PORT", "0")],
            vec![("VIGIL_MAIL_FROM", "not an address")],
            vec![("VIGIL_MAIL_CA_FILE", "relative.pem")],
        ] {
            assert!(load(&bad).is_err(), "{bad:?}");
        }
        // The password has no place in the file.
        std::fs::write(&f, "[mail]\nhost = \"h\"\npassword = \"secret\"\n").unwrap();
        assert!(load(&[("VIGIL_CONFIG", path)]).is_err());
        assert!(is_loopback_host("localhost") && is_loopback_host("::1"));
        assert!(!is_loopback_host("localhost.example.org"));
    }
}
