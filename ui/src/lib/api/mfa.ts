import { call } from './ipc';
import type { BackupCodes, MfaEnrolment, SavedFile } from './types';

/** Starts enrolment of the signed-in operator's authenticator app. */
export function mfaBegin(): Promise<MfaEnrolment> {
  return call<MfaEnrolment>('mfa_begin');
}

/** Confirms enrolment with a code from the app; returns the one-time backup codes. */
export function mfaConfirm(req: { code: string }): Promise<BackupCodes> {
  return call<BackupCodes>('mfa_confirm', { req });
}

/** Writes the backup codes to a private text file; returns where. */
export function mfaSaveBackupCodes(req: { codes: string[] }): Promise<SavedFile> {
  return call<SavedFile>('mfa_save_backup_codes', { req });
}
