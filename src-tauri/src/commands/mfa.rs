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
    let (db, session, actor) = state.authorised_for_enrolment().await?;
    let credential = session
        .credential()
        .ok_or(vigil::mfa::MfaError::NoCredentialKey)?;
    let e = vigil::mfa::enroll(&db.store, &credential, &actor).await?;
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
    let (db, session, actor) = state.authorised_for_enrolment().await?;
    let credential = session
        .credential()
        .ok_or(vigil::mfa::MfaError::NoCredentialKey)?;
    let codes = vigil::mfa::confirm(&db.store, &credential, &actor, &req.code).await?;
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
    let (_, _, actor) = state.authorised_for_enrolment().await?;
    if req.codes.is_empty() || req.codes.len() > 20 || req.codes.iter().any(|c| c.len() > 32) {
        return Err(CommandError::invalid(
            "expected the backup codes just shown",
        ));
    }
    let dir = super::default_export_dir()?;
    let text = format!(
        "Vigil backup codes for {}\nEach code works once. Keep this file somewhere safe.\n\n{}\n",
        actor.username(),
        req.codes.join("\n")
    );
    let path = super::write_new_file(
        &dir,
        &format!("vigil-backup-codes-{}", actor.username()),
        "txt",
        text.as_bytes(),
    )
    .map_err(|e| CommandError::new(ErrorCode::Internal, format!("cannot save the file: {e}")))?;
    Ok(SavedFile {
        path: path.display().to_string(),
    })
}
