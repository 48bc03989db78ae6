//! Storing named secrets per operator: in the OS keychain (the default) or, opt-in for
//! headless machines, in a folder of owner-only files.
//!
//! Vigil never falls back from one to the other silently: when the OS keychain is unusable it
//! says so and names the file keystore as the choice to make.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

/// Which keystore to use, from `VIGIL_KEYSTORE` / the config file: `os` or `file:/dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum KeystoreChoice {
    /// The OS keychain: Secret Service, macOS Keychain or Windows Credential Manager.
    Os,
    /// Owner-only files in this folder.
    File(PathBuf),
}

impl KeystoreChoice {
    /// Parses `os` or `file:/absolute/dir`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "os" | "keychain" => Ok(Self::Os),
            other => match other.strip_prefix("file:") {
                Some(p) if Path::new(p).is_absolute() => Ok(Self::File(PathBuf::from(p))),
                Some(_) => Err("the file keystore needs an absolute folder: file:/path/dir".into()),
                None => Err("expected \"os\" or \"file:/path/dir\"".into()),
            },
        }
    }

    /// Opens the chosen keystore.
    pub fn open(&self) -> Result<Box<dyn Keystore>, KeystoreError> {
        Ok(match self {
            Self::Os => Box::new(OsKeychain::open()?),
            Self::File(dir) => Box::new(FileKeystore::open(dir)?),
        })
    }
}

impl std::fmt::Display for KeystoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Os => f.write_str("os"),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// A secret read from a keystore: zeroed when dropped, never printed.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// A secret's name within an operator's entries: lowercase letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName(String);

impl SecretName {
    /// Parses a name, 1 to 64 characters.
    pub fn parse(s: &str) -> Result<Self, KeystoreError> {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeystoreError::InvalidName)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keystore failures. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No OS keychain can be used here (no Secret Service on the session bus, or it is
    /// locked). Vigil does not fall back on its own.
    #[error(
        "no usable OS keychain ({detail}). On a desktop, unlock your keyring (GNOME Keyring, \
         KWallet, macOS Keychain, Windows Credential Manager); on a headless machine choose the \
         file keystore with VIGIL_KEYSTORE=file:/path/to/private/dir"
    )]
    Unavailable {
        /// What the keychain said.
        detail: String,
    },
    /// The keychain refused or failed an operation.
    #[error("the OS keychain failed: {0}")]
    Keychain(String),
    /// The file keystore's folder is readable or writable by others.
    #[error("refusing to use the keystore folder {path}: its permissions are {mode:o}; it must be accessible only by its owner (chmod 700)")]
    InsecurePermissions {
        /// The folder.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A file operation failed.
    #[error("keystore file error at {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An operator or secret name that cannot be used.
    #[error("invalid keystore entry name")]
    InvalidName,
}

/// Named secrets per operator. Implementations must not log secrets.
pub trait Keystore: Send + Sync {
    /// Stores (or replaces) a secret.
    fn put(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
        secret: &[u8],
    ) -> Result<(), KeystoreError>;
    /// Reads a secret; `None` if there is none by that name.
    fn get(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
    ) -> Result<Option<SecretBytes>, KeystoreError>;
    /// Deletes a secret; false if there was none.
    fn delete(&self, operator: uuid::Uuid, name: &SecretName) -> Result<bool, KeystoreError>;
    /// A short description for people: which keystore, where.
    fn describe(&self) -> String;
}

/// The service name under which Vigil's keychain entries are filed.
const SERVICE: &str = "vigil";

fn entry_name(operator: uuid::Uuid, name: &SecretName) -> String {
    format!("{operator}/{}", name.as_str())
}

/// The OS keychain through the `keyring` crate.
pub struct OsKeychain(());

impl OsKeychain {
    /// Connects to the platform's keychain, or says plainly why it cannot.
    pub fn open() -> Result<Self, KeystoreError> {
        match keyring::Entry::store_status() {
            Ok(()) => Ok(Self(())),
            Err(e) => Err(KeystoreError::Unavailable {
                detail: describe_keyring_error(e),
            }),
        }
    }

    fn entry(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
    ) -> Result<keyring::Entry, KeystoreError> {
        keyring::Entry::new(SERVICE, &entry_name(operator, name)).map_err(map_keyring)
    }
}

fn describe_keyring_error(e: &keyring::Error) -> String {
    match e {
        keyring::Error::NoDefaultStore => "no Secret Service / keychain found".into(),
        keyring::Error::NoStorageAccess(_) => "the keychain is locked or refused access".into(),
        keyring::Error::PlatformFailure(_) => "the keychain service failed".into(),
        other => other.to_string(),
    }
}

fn map_keyring(e: keyring::Error) -> KeystoreError {
    match e {
        keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) => {
            KeystoreError::Unavailable {
                detail: describe_keyring_error(&e),
            }
        }
        other => KeystoreError::Keychain(describe_keyring_error(&other)),
    }
}

impl Keystore for OsKeychain {
    fn put(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
        secret: &[u8],
    ) -> Result<(), KeystoreError> {
        self.entry(operator, name)?
            .set_secret(secret)
            .map_err(map_keyring)
    }

    fn get(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
    ) -> Result<Option<SecretBytes>, KeystoreError> {
        match self.entry(operator, name)?.get_secret() {
            Ok(bytes) => Ok(Some(SecretBytes::new(bytes))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring(e)),
        }
    }

    fn delete(&self, operator: uuid::Uuid, name: &SecretName) -> Result<bool, KeystoreError> {
        match self.entry(operator, name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_keyring(e)),
        }
    }

    fn describe(&self) -> String {
        "OS keychain".into()
    }
}

/// Owner-only files (0600) in an owner-only folder (0700), written atomically.
pub struct FileKeystore {
    dir: PathBuf,
}

impl FileKeystore {
    /// Opens (creating with mode 0700 if missing) the folder; refuses one that others can
    /// read, write or enter.
    pub fn open(dir: &Path) -> Result<Self, KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: dir.to_owned(),
            source,
        };
        if !dir.exists() {
            create_private_dir(dir).map_err(io)?;
        }
        check_private(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, operator: uuid::Uuid, name: &SecretName) -> PathBuf {
        self.dir
            .join(format!("{operator}.{}.secret", name.as_str()))
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    crate::files::create_private_dir(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), KeystoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(dir).map_err(|source| KeystoreError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeystoreError::InsecurePermissions {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<(), KeystoreError> {
    Ok(())
}

/// Replaces the secret file atomically, owner-only, never through a symbolic link.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::files::replace_atomically(path, bytes, crate::files::PRIVATE_FILE).map_err(Into::into)
}

impl Keystore for FileKeystore {
    fn put(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
        secret: &[u8],
    ) -> Result<(), KeystoreError> {
        check_private(&self.dir)?;
        let path = self.path(operator, name);
        write_private(&path, secret).map_err(|source| KeystoreError::Io { path, source })
    }

    fn get(
        &self,
        operator: uuid::Uuid,
        name: &SecretName,
    ) -> Result<Option<SecretBytes>, KeystoreError> {
        check_private(&self.dir)?;
        let path = self.path(operator, name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(SecretBytes::new(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeystoreError::Io { path, source }),
        }
    }

    fn delete(&self, operator: uuid::Uuid, name: &SecretName) -> Result<bool, KeystoreError> {
        let path = self.path(operator, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(KeystoreError::Io { path, source }),
        }
    }

    fn describe(&self) -> String {
        format!("file keystore at {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!(KeystoreChoice::parse("os").unwrap(), KeystoreChoice::Os);
        assert_eq!(
            KeystoreChoice::parse("file:/srv/keys").unwrap(),
            KeystoreChoice::File("/srv/keys".into())
        );
        assert!(KeystoreChoice::parse("file:relative").is_err());
        assert!(KeystoreChoice::parse("vault").is_err());
    }

    #[test]
    fn secret_names() {
        assert!(SecretName::parse("private-key").is_ok());
        for bad in ["", "../x", "a/b", "A", &"x".repeat(65)] {
            assert!(SecretName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "SecretBytes(7 bytes)");
    }
}
