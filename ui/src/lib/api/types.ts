// Types of the Vigil IPC contract (Tauri commands and events).
//
// Part 1 re-exports the TypeScript twins of the Rust command payloads, which ts-rs generates
// into `./bindings/` from `src-tauri/src/commands` (never edit those by hand; the shell's tests
// regenerate them and CI fails if the committed copies differ). The rest of the UI imports
// these names from here only. Part 2 derives the smaller aliases the UI uses.
//
// =====================  Part 1: generated from the Rust types  =====================

export type { ErrorCode } from './bindings/ErrorCode';
export type { CommandError } from './bindings/CommandError';
export type { AppStatus } from './bindings/AppStatus';
export type { SetupRequest } from './bindings/SetupRequest';
export type { SetupResult } from './bindings/SetupResult';
export type { DatabaseChoice } from './bindings/DatabaseChoice';
export type { Me } from './bindings/Me';
export type { KeysState } from './bindings/KeysState';
export type { LoginRequest } from './bindings/LoginRequest';
export type { LoginResult } from './bindings/LoginResult';
export type { MfaEnrolment } from './bindings/MfaEnrolment';
export type { BackupCodes } from './bindings/BackupCodes';
export type { SavedFile } from './bindings/SavedFile';
export type { UserQuery } from './bindings/UserQuery';
export type { UserRow } from './bindings/UserRow';
export type { UserPage } from './bindings/UserPage';
export type { SessionView } from './bindings/SessionView';
export type { UserDetail } from './bindings/UserDetail';
export type { TemporaryPassword } from './bindings/TemporaryPassword';
export type { KeyVersionView } from './bindings/KeyVersionView';
export type { RotationView } from './bindings/RotationView';
export type { PurposeView } from './bindings/PurposeView';
export type { KeyHolderView } from './bindings/KeyHolderView';
export type { KeysView } from './bindings/KeysView';
export type { RotationProgressEvent } from './bindings/RotationProgressEvent';
export type { AuditQuery } from './bindings/AuditQuery';
export type { AuditRow } from './bindings/AuditRow';
export type { AuditPage } from './bindings/AuditPage';
export type { ChainReport } from './bindings/ChainReport';
export type { PolicyView } from './bindings/PolicyView';
export type { SettingsView } from './bindings/SettingsView';
import type { KeysState } from './bindings/KeysState';
import type { PurposeView } from './bindings/PurposeView';
import type { RotationProgressEvent } from './bindings/RotationProgressEvent';
import type { UserRow } from './bindings/UserRow';

/** Payload of the `rotation-progress` event. */
export type RotationProgress = RotationProgressEvent;

// =====================  Part 2: derived aliases (UI-side)  =====================

export type UserKind = UserRow['kind'];
export type UserStatus = UserRow['status'];
export type KeyPurpose = PurposeView['purpose'];
export type KeyStatus = KeysState;

/** The values `UserDetail.actions` may hold. */
export type UserAction =
  | 'suspend'
  | 'unsuspend'
  | 'unlock'
  | 'reset_password'
  | 'reset_mfa'
  | 'set_roles'
  | 'revoke_session'
  | 'grant_keys';
