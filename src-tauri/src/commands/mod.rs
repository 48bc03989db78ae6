//! Tauri commands, one module per domain. Each is a few lines: take the state, parse the
//! request, call the core, map the error. Request and response types derive `TS`, and their
//! TypeScript twins are generated into `ui/src/lib/api/bindings/`.

pub mod app;
pub mod audit;
pub mod demo;
pub mod incidents;
pub mod keys;
pub mod mfa;
pub mod outbox;
pub mod privacy;
pub mod retention;
pub mod session;
pub mod settings;
pub mod setup;
pub mod users;

pub(crate) use crate::events::rfc3339;

/// The folder files are saved in unless the operator picks another: Downloads, else the home
/// folder.
pub(crate) fn default_export_dir() -> crate::CommandResult<std::path::PathBuf> {
    let dirs = directories::UserDirs::new()
        .ok_or_else(|| crate::CommandError::invalid("this account has no home folder"))?;
    Ok(dirs
        .download_dir()
        .filter(|d| d.is_dir())
        .unwrap_or(dirs.home_dir())
        .to_owned())
}

/// Creates `<dir>/<stem>.<ext>` (or `<stem>-2.<ext>`, ...) with owner-only permissions and
/// writes `bytes` to it: never over an existing file.
pub(crate) fn write_new_file(
    dir: &std::path::Path,
    stem: &str,
    ext: &str,
    bytes: &[u8],
) -> std::io::Result<std::path::PathBuf> {
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        match vigil::store::files::create_new(&path, bytes, vigil::store::files::PRIVATE_FILE) {
            Ok(()) => return Ok(path),
            Err(vigil::store::files::FileError::Exists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::other("too many files with this name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_files_are_private_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_new_file(dir.path(), "codes", "txt", b"one").unwrap();
        let b = write_new_file(dir.path(), "codes", "txt", b"two").unwrap();
        assert_ne!(a, b);
        assert!(b.ends_with("codes-2.txt"), "{}", b.display());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
