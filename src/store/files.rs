//! Owner-only files and folders for what Vigil keeps on disk about people: the SQLite database
//! (its WAL and shared-memory files take the database file's mode) and the audit archive. A
//! folder Vigil creates is `0700`; a file it creates or opens for this is `0600`. A folder that
//! already existed is left as it is (it may be shared, such as `/tmp`).

use std::fs;
use std::io;
use std::path::Path;

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
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link; refusing to use it", path.display()),
            ));
        }
    }
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc_nofollow());
    }
    let file = options.open(path)?;
    restrict(&file)
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
