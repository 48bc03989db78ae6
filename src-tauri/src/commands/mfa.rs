//! The signed-in operator's own MFA: enrol with the on-screen QR code, confirm, backup codes.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;

use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::state::AppState;

/// What the enrolment screen shows. The secret is the operator's own, shown once to be
/// scanned or typed; it is never logged and never stored outside the sealed column.
#[derive(Serialize, TS)]
#[ts(export)]
pub struct MfaEnrolment {
    /// The otpauth URI as an SVG QR code.
    pub qr_svg: String,
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    /// The issuer shown by authenticator apps.
    pub issuer: String,
    /// The account name shown by authenticator apps.
    pub account: String,
    /// Digits per code.
    pub digits: u32,
    /// Seconds per code.
    pub period: u32,
}

/// Starts MFA enrolment for the signed-in operator.
#[tauri::command]
pub async fn mfa_begin(state: State<'_, AppState>) -> CommandResult<MfaEnrolment> {
    let (db, session, actor) = state.authorised().await?;
    let ring = session
        .ring
        .as_ref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let e = vigil::mfa::enroll(&db.store, ring, &actor).await?;
    Ok(MfaEnrolment {
        qr_svg: e.qr_svg.clone(),
        secret: e.secret_base32.clone(),
        issuer: "Vigil".to_owned(),
        account: actor.username().to_string(),
        digits: 6,
        period: 30,
    })
}

/// The backup codes, shown once.
#[derive(Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BackupCodes {
    /// Ten single-use codes.
    pub codes: Vec<String>,
}

/// Confirms enrolment with a code from the authenticator; MFA is on from now.
#[tauri::command]
pub async fn mfa_confirm(
    state: State<'_, AppState>,
    req: super::session::CodeRequest,
) -> CommandResult<BackupCodes> {
    let (db, session, actor) = state.authorised().await?;
    let ring = session
        .ring
        .as_ref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let codes = vigil::mfa::confirm(&db.store, ring, &actor, &req.code).await?;
    Ok(BackupCodes { codes })
}

/// Where the codes were saved.
#[derive(Serialize, TS)]
#[ts(export)]
pub struct SavedFile {
    /// The file.
    pub path: String,
}

/// Saves backup codes to a file only the operator can read, in their Downloads folder (or
/// home), never over an existing file.
#[tauri::command]
pub async fn mfa_save_backup_codes(
    state: State<'_, AppState>,
    req: BackupCodes,
) -> CommandResult<SavedFile> {
    let (_, _, actor) = state.authorised().await?;
    if req.codes.is_empty() || req.codes.len() > 20 || req.codes.iter().any(|c| c.len() > 32) {
        return Err(CommandError::invalid(
            "expected the backup codes just shown",
        ));
    }
    let dirs = directories::UserDirs::new()
        .ok_or_else(|| CommandError::invalid("this machine has no home folder"))?;
    let dir = dirs
        .download_dir()
        .filter(|d| d.is_dir())
        .unwrap_or(dirs.home_dir())
        .to_owned();
    let text = format!(
        "Vigil backup codes for {}\nEach code works once. Keep this file somewhere safe.\n\n{}\n",
        actor.username(),
        req.codes.join("\n")
    );
    let path = write_private_file(
        &dir,
        &format!("vigil-backup-codes-{}", actor.username()),
        &text,
    )
    .map_err(|e| CommandError::new(ErrorCode::Internal, format!("cannot save the file: {e}")))?;
    Ok(SavedFile {
        path: path.display().to_string(),
    })
}

/// Creates `<dir>/<stem>.txt` (or `<stem>-2.txt`, ...) with owner-only permissions.
fn write_private_file(
    dir: &std::path::Path,
    stem: &str,
    text: &str,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.txt")
        } else {
            format!("{stem}-{n}.txt")
        };
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files with this name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_codes_are_private_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_private_file(dir.path(), "codes", "one").unwrap();
        let b = write_private_file(dir.path(), "codes", "two").unwrap();
        assert_ne!(a, b);
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
