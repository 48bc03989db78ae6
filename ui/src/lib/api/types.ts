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
export type { NoticeView } from './bindings/NoticeView';
export type { KeysState } from './bindings/KeysState';
export type { SessionState } from './bindings/SessionState';
export type { SessionStatus } from './bindings/SessionStatus';
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
export type { SecurityEventsQuery } from './bindings/SecurityEventsQuery';
export type { SecurityEventRow } from './bindings/SecurityEventRow';
export type { PolicyView } from './bindings/PolicyView';
export type { SettingsView } from './bindings/SettingsView';
export type { DatabaseChangeView } from './bindings/DatabaseChangeView';
export type { OutboxMessageView } from './bindings/OutboxMessageView';
export type { OutboxListQuery } from './bindings/OutboxListQuery';
export type { OutboxRef } from './bindings/OutboxRef';
export type { DeliveryReportView } from './bindings/DeliveryReportView';
export type { MailSettingsView } from './bindings/MailSettingsView';
export type { MailTestRequest } from './bindings/MailTestRequest';
export type { MailTestReply } from './bindings/MailTestReply';
export type { DsrListQuery } from './bindings/DsrListQuery';
export type { DsrView } from './bindings/DsrView';
export type { DsrCreateRequest } from './bindings/DsrCreateRequest';
export type { DsrCreated } from './bindings/DsrCreated';
export type { DsrCode } from './bindings/DsrCode';
export type { DsrRef } from './bindings/DsrRef';
export type { DsrVerifyCode } from './bindings/DsrVerifyCode';
export type { DsrExtend } from './bindings/DsrExtend';
export type { DsrClose } from './bindings/DsrClose';
export type { DsrStepView } from './bindings/DsrStepView';
export type { DsrArtifactView } from './bindings/DsrArtifactView';
export type { DsrTimelineEntry } from './bindings/DsrTimelineEntry';
export type { DsrDetailView } from './bindings/DsrDetailView';
export type { ScanHitView } from './bindings/ScanHitView';
export type { ScanReportView } from './bindings/ScanReportView';
export type { ReceiptStepView } from './bindings/ReceiptStepView';
export type { ErasureReceiptView } from './bindings/ErasureReceiptView';
export type { CorrectionInput } from './bindings/CorrectionInput';
export type { DsrRunRequest } from './bindings/DsrRunRequest';
export type { DsrRunResult } from './bindings/DsrRunResult';
export type { DsrProgressEvent } from './bindings/DsrProgressEvent';
export type { ExportedFileView } from './bindings/ExportedFileView';
export type { HoldView } from './bindings/HoldView';
export type { HoldsQuery } from './bindings/HoldsQuery';
export type { HoldPlace } from './bindings/HoldPlace';
export type { HoldRef } from './bindings/HoldRef';
export type { DemoSeedRequest } from './bindings/DemoSeedRequest';
export type { DemoSeedReport } from './bindings/DemoSeedReport';
export type { IncidentView } from './bindings/IncidentView';
export type { IncidentListQuery } from './bindings/IncidentListQuery';
export type { IncidentRef } from './bindings/IncidentRef';
export type { IncidentAct } from './bindings/IncidentAct';
export type { IncidentDetailView } from './bindings/IncidentDetailView';
export type { IncidentTimelineView } from './bindings/IncidentTimelineView';
export type { RuleCountView } from './bindings/RuleCountView';
export type { EvidenceView } from './bindings/EvidenceView';
export type { ActivityView } from './bindings/ActivityView';
export type { CommentView } from './bindings/CommentView';
export type { BlockView } from './bindings/BlockView';
export type { RestrictionView } from './bindings/RestrictionView';
export type { BlocksQuery } from './bindings/BlocksQuery';
export type { BlockAdd } from './bindings/BlockAdd';
export type { BlockRemove } from './bindings/BlockRemove';
export type { MonitorRunView } from './bindings/MonitorRunView';
export type { IncidentsChangedEvent } from './bindings/IncidentsChangedEvent';
export type { ChartRequest } from './bindings/ChartRequest';
export type { ChartView } from './bindings/ChartView';
export type { ChartTableView } from './bindings/ChartTableView';
export type { ChartExport } from './bindings/ChartExport';
export type { RetentionPolicyView } from './bindings/RetentionPolicyView';
export type { RetentionPolicyChange } from './bindings/RetentionPolicyChange';
export type { RetentionHeldView } from './bindings/RetentionHeldView';
export type { RetentionPlanItemView } from './bindings/RetentionPlanItemView';
export type { RetentionCountView } from './bindings/RetentionCountView';
export type { RetentionFaultView } from './bindings/RetentionFaultView';
export type { RetentionRunView } from './bindings/RetentionRunView';
export type { RetentionRunRequest } from './bindings/RetentionRunRequest';
export type { RetentionRunsQuery } from './bindings/RetentionRunsQuery';
export type { RetentionProgressEvent } from './bindings/RetentionProgressEvent';
import type { KeysState } from './bindings/KeysState';
import type { PurposeView } from './bindings/PurposeView';
import type { RotationProgressEvent } from './bindings/RotationProgressEvent';
import type { UserRow } from './bindings/UserRow';
import type { DsrView } from './bindings/DsrView';
import type { IncidentView } from './bindings/IncidentView';
import type { ChartView } from './bindings/ChartView';
import type { RetentionPolicyView } from './bindings/RetentionPolicyView';
import type { RetentionRunView } from './bindings/RetentionRunView';

/** Payload of the `rotation-progress` event. */
export type RotationProgress = RotationProgressEvent;

// =====================  Part 2: derived aliases (UI-side)  =====================

export type UserKind = UserRow['kind'];
export type UserStatus = UserRow['status'];
export type KeyPurpose = PurposeView['purpose'];
export type KeyStatus = KeysState;
export type DsrKind = DsrView['kind'];
export type DsrStatus = DsrView['status'];
export type IncidentKind = IncidentView['kind'];
export type Severity = IncidentView['severity'];
export type IncidentStatus = IncidentView['status'];
export type ChartKind = ChartView['kind'];
export type RetentionCategory = RetentionPolicyView['category'];
export type RetentionAction = RetentionPolicyView['action'];
export type RetentionRunStatus = RetentionRunView['status'];

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
