//! Every file Vigil writes goes through here: the SQLite database (its WAL and shared-memory
//! files take the database file's mode), the file keystore, the audit archive's segments and
//! manifest, exports, QR codes, charts, lock files and the config file. A folder Vigil creates
//! is `0700`; a file it creates is `0600`. A folder that already existed is left as it is (it
//! may be shared, such as `/tmp`). No writer follows a symbolic link at the final component
//! (`O_NOFOLLOW`, `O_EXCL`), and each refusal is a sentence naming the file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Owner read and write: every file Vigil writes.
pub const PRIVATE_FILE: u32 = 0o600;

/// Why a file was not written. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path is a symbolic link (perhaps planted in a shared folder): not followed.
    #[error("{} is a symbolic link: not followed, nothing written", .0.display())]
    SymbolicLink(PathBuf),
    /// The file exists and this writer only makes new files.
    #[error("{} already exists: not overwritten, nothing written; give a new file name", .0.display())]
    Exists(PathBuf),
    /// The system refused (no such folder, no permission, disk full).
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl From<FileError> for io::Error {
    fn from(e: FileError) -> Self {
        let kind = match &e {
            FileError::SymbolicLink(_) => io::ErrorKind::InvalidInput,
            FileError::Exists(_) => io::ErrorKind::AlreadyExists,
            FileError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Opens `path` as a new file with `mode` (`O_CREAT | O_EXCL | O_NOFOLLOW`): never an existing
/// file, never through a link.
fn open_new(path: &Path, mode: u32) -> Result<fs::File, FileError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode).custom_flags(libc_nofollow());
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path).map_err(|source| {
        if is_symlink(path) {
            FileError::SymbolicLink(path.to_owned())
        } else if source.kind() == io::ErrorKind::AlreadyExists {
            FileError::Exists(path.to_owned())
        } else {
            FileError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Writes `bytes` to a new file at `path` with `mode`, synced. Refuses an existing file or a
/// symbolic link (what `mfa enroll --qr-png` and exports use).
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let mut file = open_new(path, mode)?;
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = fs::remove_file(path);
        return Err(io(e));
    }
    Ok(())
}

/// Replaces (or creates) `path` with `bytes` atomically: a new temporary file in the same
/// folder (`O_EXCL | O_NOFOLLOW`, `mode`), synced, renamed over `path`, and the folder synced;
/// a reader sees the old content or the new, never part. Refuses when `path` is a symbolic
/// link (the keystore, the archive's manifest and segments, the config file, charts).
pub fn replace_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    if is_symlink(path) {
        return Err(FileError::SymbolicLink(path.to_owned()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.as_deref().unwrap_or("vigil"),
        uuid::Uuid::new_v4().simple()
    ));
    create_new(&tmp, bytes, mode)?;
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(FileError::Io {
            path: path.to_owned(),
            source,
        });
    }
    // The rename is durable once the folder is synced (not possible on every platform).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens (creating it `0600` if missing) a file that is kept open rather than written whole,
/// such as a lock file; never through a symbolic link.
pub fn open_private(path: &Path) -> io::Result<fs::File> {
    if is_symlink(path) {
        return Err(FileError::SymbolicLink(path.to_owned()).into());
    }
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc_nofollow());
    }
    let file = options.open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// Creates `dir` and any missing parents, each new one owner-only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Makes sure `path` exists as a regular file readable and writable by its owner only: creates
/// it `0600`, or narrows an existing file's mode to `0600`. Refuses a symbolic link.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    open_private(path).map(drop)
}

/// Creates `path` new (truncating a regular file left by an interrupted write), `0600`.
pub fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc_nofollow());
    }
    let file = options.open(path)?;
    restrict(&file)?;
    Ok(file)
}

fn restrict(file: &fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    let _ = file;
    Ok(())
}

/// `O_NOFOLLOW`: opening a symbolic link at the final component fails.
#[cfg(unix)]
fn libc_nofollow() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        0o400_000
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        0x0100
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_owner_only() {
        let base = tempfile::tempdir().unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&base.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(base.path()), 0o755, "an existing folder is left alone");
        let db = dir.join("vigil.db");
        ensure_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let loose = dir.join("loose");
        fs::write(&loose, b"x").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(
            fs::read(&loose).unwrap(),
            b"x",
            "narrowing keeps the content"
        );
        let made = dir.join("segment");
        create_private_file(&made).unwrap();
        assert_eq!(mode(&made), 0o600);
    }

    #[test]
    fn new_and_replaced_files_are_private_and_links_are_refused_by_name() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = base.path().join("dangling");
        std::os::unix::fs::symlink(base.path().join("nowhere"), &dangling).unwrap();
        for l in [&link, &dangling] {
            let e = create_new(l, b"x", PRIVATE_FILE).unwrap_err();
            assert!(matches!(e, FileError::SymbolicLink(_)), "{e}");
            assert!(
                e.to_string().contains("is a symbolic link: not followed"),
                "{e}"
            );
            let e = replace_atomically(l, b"x", PRIVATE_FILE).unwrap_err();
            assert!(matches!(e, FileError::SymbolicLink(_)), "{e}");
            assert!(open_private(l).is_err());
        }
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!base.path().join("nowhere").exists());

        let new = base.path().join("new");
        create_new(&new, b"one", PRIVATE_FILE).unwrap();
        assert_eq!(mode(&new), 0o600);
        let e = create_new(&new, b"two", PRIVATE_FILE).unwrap_err();
        assert!(matches!(e, FileError::Exists(_)), "{e}");
        assert_eq!(fs::read(&new).unwrap(), b"one");
        fs::set_permissions(&new, fs::Permissions::from_mode(0o644)).unwrap();
        replace_atomically(&new, b"three", PRIVATE_FILE).unwrap();
        assert_eq!(fs::read(&new).unwrap(), b"three");
        assert_eq!(mode(&new), 0o600, "the replacement has the new mode");
        let left: Vec<_> = fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "no temporary file left: {left:?}");
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(ensure_private_file(&link).is_err());
        assert!(create_private_file(&link).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
