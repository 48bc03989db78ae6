//! The error every fallible command returns to the UI: a stable `code` the UI switches on and
//! a `message` safe to show. Messages never carry secrets (passwords, codes, tokens, keys) or
//! personal data; the core's error texts are written to that rule and are passed through.

use std::fmt;

use serde::Serialize;
use ts_rs::TS;
use vigil::analytics::AnalyticsError;
use vigil::auth::tokens::TokenError;
use vigil::auth::users::DirectoryError;
use vigil::auth::{AuthError, BootstrapError, LoginError, PasswordChangeError};
use vigil::demo::DemoError;
use vigil::incidents::IncidentError;
use vigil::keys::KeyError;
use vigil::mfa::MfaError;
use vigil::monitor::screen::ScreenError;
use vigil::monitor::MonitorError;
use vigil::privacy::PrivacyError;
use vigil::retention::RetentionError;
use vigil::store::StoreError;

/// What kind of failure, for the UI to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// An argument is malformed or out of range; the message says which.
    InvalidInput,
    /// Nobody is signed in.
    NotSignedIn,
    /// The session was revoked, or the account changed, elsewhere.
    SessionEnded,
    /// The console locked itself after the idle timeout: the password and second factor
    /// again open it where it was.
    SessionLocked,
    /// The operator's roles do not allow this.
    Forbidden,
    /// Wrong username or password (which one is not said).
    InvalidCredentials,
    /// Too many attempts, or the account is locked for a while.
    Throttled,
    /// The account is suspended or deleted.
    NotActive,
    /// The second factor was wrong, replayed or not set up.
    MfaInvalid,
    /// The MFA step took too long; sign in again.
    ChallengeExpired,
    /// A new password does not meet the policy.
    PasswordRejected,
    /// The password must be changed before anything else.
    MustChangePassword,
    /// The operator's role requires MFA and it is not on: enrolment comes before anything else.
    MfaEnrolmentRequired,
    /// No such account, session or request.
    NotFound,
    /// The change conflicts with the current state (exists, last administrator, initialised).
    Conflict,
    /// This machine holds no usable key pair, or it lacks the grant needed.
    KeysUnavailable,
    /// A legal hold or an open incident blocks the erasure; the message lists them.
    Held,
    /// The data subject's identity is not verified yet: the request cannot run.
    NotVerified,
    /// The verification code (or token) was wrong; the message says how many tries are left.
    CodeInvalid,
    /// Too many wrong codes: a new code must be issued.
    VerificationLocked,
    /// The verification code expired: a new code must be issued.
    CodeExpired,
    /// The incident action does not apply to the incident as it is now (it is closed, or
    /// has no account suspended, no block or restriction in force); the message says why.
    NotApplicable,
    /// The run stopped where the operator asked (a request's run at its next step, a
    /// retention run after its chunk); running it again resumes it.
    Stopped,
    /// Another console or worker is running this job now (a retention run, the detectors);
    /// try again when it ends.
    Busy,
    /// The configuration cannot be used (a screening rule or blocklist, the archive folder);
    /// the message says which setting.
    ConfigInvalid,
    /// A file could not be read or written.
    Io,
    /// The database cannot be reached or failed.
    Database,
    /// Something unexpected; the message says what.
    Internal,
}

/// A serializable command error: `{ "code": "...", "message": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CommandError {
    /// Stable, machine-readable kind.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to show.
    pub message: String,
}

/// What every command returns.
pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    /// An error of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Bad input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// Nobody signed in.
    pub fn not_signed_in() -> Self {
        Self::new(ErrorCode::NotSignedIn, "sign in to continue")
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "database error");
        Self::new(ErrorCode::Database, e.to_string())
    }
}

impl From<vigil::rbac::Forbidden> for CommandError {
    fn from(e: vigil::rbac::Forbidden) -> Self {
        let code = if e.mfa_enrolment_required {
            ErrorCode::MfaEnrolmentRequired
        } else {
            ErrorCode::Forbidden
        };
        Self::new(code, e.to_string())
    }
}

impl From<KeyError> for CommandError {
    fn from(e: KeyError) -> Self {
        use KeyError as K;
        let code = match &e {
            K::Forbidden(_) => ErrorCode::Forbidden,
            K::Store(_) => ErrorCode::Database,
            K::UnknownOperator(_) => ErrorCode::NotFound,
            K::RevokeSelf
            | K::NoKeyPair(_)
            | K::RoleHolds(_)
            | K::LastHolder(_)
            | K::NotHeld(_)
            | K::Retired(_) => ErrorCode::Conflict,
            K::Field(_) | K::RotationStalled(_) => ErrorCode::Internal,
            K::Keystore(_)
            | K::NoKeyPairHere
            | K::KeyPairRetired
            | K::Unseal
            | K::KeyPairMismatch
            | K::NotGranted(..)
            | K::Unwrap(..)
            | K::NotProvisioned(_) => ErrorCode::KeysUnavailable,
        };
        let message = match &e {
            K::NoKeyPairHere | K::KeyPairRetired => {
                "this machine holds no usable key pair for you: sign out and in again to make \
                 one, then ask an administrator to grant it the data keys"
                    .to_owned()
            }
            K::NotGranted(purpose, _) => format!(
                "your key pair holds no {purpose} key: your role does not open this data, or an \
                 administrator has yet to grant it (Keys screen)"
            ),
            _ => e.to_string(),
        };
        Self::new(code, message)
    }
}

impl From<MfaError> for CommandError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::Forbidden(f) => f.into(),
            MfaError::Keys(k) => k.into(),
            MfaError::Store(s) => s.into(),
            MfaError::AlreadyEnabled => Self::new(ErrorCode::Conflict, e.to_string()),
            MfaError::UnknownOperator(_) => Self::new(ErrorCode::NotFound, e.to_string()),
            MfaError::NotEnrolled | MfaError::InvalidCode | MfaError::SecretUnavailable => {
                Self::new(ErrorCode::MfaInvalid, e.to_string())
            }
            MfaError::NoCredentialKey => Self::new(ErrorCode::SessionEnded, e.to_string()),
        }
    }
}

impl From<LoginError> for CommandError {
    fn from(e: LoginError) -> Self {
        let code = match &e {
            LoginError::InvalidCredentials => ErrorCode::InvalidCredentials,
            LoginError::Throttled { .. } => ErrorCode::Throttled,
            LoginError::NotActive(_) => ErrorCode::NotActive,
            LoginError::ChallengeInvalid => ErrorCode::ChallengeExpired,
            LoginError::Mfa(_) => ErrorCode::MfaInvalid,
            LoginError::Keys(_) => ErrorCode::KeysUnavailable,
            LoginError::Store(_) => ErrorCode::Database,
        };
        Self::new(code, e.to_string())
    }
}

impl From<AuthError> for CommandError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::NotActive(_) => Self::new(ErrorCode::SessionEnded, e.to_string()),
            AuthError::InvalidCredentials | AuthError::MfaRequired => Self::new(
                ErrorCode::SessionEnded,
                "your account changed; sign in again",
            ),
        }
    }
}

impl From<PasswordChangeError> for CommandError {
    fn from(e: PasswordChangeError) -> Self {
        use PasswordChangeError as P;
        match e {
            P::Forbidden(f) => f.into(),
            P::Keys(k) => k.into(),
            P::Store(s) => s.into(),
            P::WrongPassword => Self::new(ErrorCode::InvalidCredentials, e.to_string()),
            P::Rejected(_) => Self::new(ErrorCode::PasswordRejected, e.to_string()),
            P::UnknownOperator(_) | P::UnknownSession => {
                Self::new(ErrorCode::NotFound, e.to_string())
            }
            P::ResetSelf | P::Exists(_) | P::LastAdmin | P::NotTeamDatabase => {
                Self::new(ErrorCode::Conflict, e.to_string())
            }
        }
    }
}

impl From<vigil::settings::SettingsError> for CommandError {
    fn from(e: vigil::settings::SettingsError) -> Self {
        use vigil::settings::SettingsError as S;
        match e {
            S::Forbidden(f) => f.into(),
            S::Store(s) => s.into(),
            S::Invalid(_) | S::Unreachable { .. } | S::NotSetUp(_) => Self::invalid(e.to_string()),
            S::Config(_) => Self::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

impl From<DirectoryError> for CommandError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Forbidden(f) => f.into(),
            DirectoryError::Keys(k) => k.into(),
            DirectoryError::Store(s) => s.into(),
        }
    }
}

impl From<BootstrapError> for CommandError {
    fn from(e: BootstrapError) -> Self {
        match e {
            BootstrapError::AlreadyInitialised => Self::new(ErrorCode::Conflict, e.to_string()),
            BootstrapError::Password(_) => Self::new(ErrorCode::PasswordRejected, e.to_string()),
            BootstrapError::Store(s) => s.into(),
            BootstrapError::Keys(k) => k.into(),
        }
    }
}

impl From<TokenError> for CommandError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(s) => s.into(),
            other => Self::new(ErrorCode::SessionEnded, other.to_string()),
        }
    }
}

impl From<vigil::audit::AuditError> for CommandError {
    fn from(e: vigil::audit::AuditError) -> Self {
        match e {
            vigil::audit::AuditError::Forbidden(f) => f.into(),
            vigil::audit::AuditError::Store(s) => s.into(),
        }
    }
}

impl From<vigil::security_events::SecurityEventError> for CommandError {
    fn from(e: vigil::security_events::SecurityEventError) -> Self {
        match e {
            vigil::security_events::SecurityEventError::Forbidden(f) => f.into(),
            vigil::security_events::SecurityEventError::Store(s) => s.into(),
        }
    }
}

impl From<PrivacyError> for CommandError {
    fn from(e: PrivacyError) -> Self {
        use PrivacyError as P;
        let code = match &e {
            P::Keys(_) | P::Store(_) => {
                return match e {
                    P::Keys(k) => k.into(),
                    P::Store(s) => s.into(),
                    _ => Self::new(ErrorCode::Internal, e.to_string()),
                };
            }
            P::Forbidden(_) => ErrorCode::Forbidden,
            P::NotFound | P::SubjectNotFound => ErrorCode::NotFound,
            P::WrongState { .. } => ErrorCode::Conflict,
            P::Stopped { .. } => ErrorCode::Stopped,
            P::NotVerified => ErrorCode::NotVerified,
            P::WrongCode { .. } | P::TokenRefused(_) => ErrorCode::CodeInvalid,
            P::CodeExpired => ErrorCode::CodeExpired,
            P::VerificationLocked => ErrorCode::VerificationLocked,
            P::Invalid(_) => ErrorCode::InvalidInput,
            P::Held { .. } => ErrorCode::Held,
            P::Io(_) => ErrorCode::Io,
            P::NoAddress => ErrorCode::InvalidInput,
            P::SameOfficer => ErrorCode::Forbidden,
            P::Mail(_) => {
                return match e {
                    P::Mail(m) => m.into(),
                    _ => Self::new(ErrorCode::Internal, e.to_string()),
                };
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<vigil::mail::MailError> for CommandError {
    fn from(e: vigil::mail::MailError) -> Self {
        use vigil::mail::MailError as M;
        let code = match &e {
            M::Keys(_) | M::Store(_) | M::Forbidden(_) => {
                return match e {
                    M::Keys(k) => k.into(),
                    M::Store(s) => s.into(),
                    M::Forbidden(f) => f.into(),
                    _ => Self::new(ErrorCode::Internal, e.to_string()),
                };
            }
            M::NotConfigured(_) | M::Settings(_) => ErrorCode::ConfigInvalid,
            M::BadAddress => ErrorCode::InvalidInput,
            M::NotFound => ErrorCode::NotFound,
            M::WrongState { .. } => ErrorCode::Conflict,
            M::Smtp(_) | M::Keystore(_) | M::StoppedAfterSend => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl From<DemoError> for CommandError {
    fn from(e: DemoError) -> Self {
        match e {
            DemoError::Forbidden(f) => f.into(),
            DemoError::Keys(k) => k.into(),
            DemoError::Store(s) => s.into(),
            DemoError::Invalid(_) => Self::invalid(e.to_string()),
            DemoError::NotEmpty(_) => Self::new(ErrorCode::Conflict, e.to_string()),
        }
    }
}

impl From<IncidentError> for CommandError {
    fn from(e: IncidentError) -> Self {
        use IncidentError as I;
        match e {
            I::Forbidden(f) => f.into(),
            I::Store(s) => s.into(),
            I::NotFound(_) | I::BlockNotFound(_) => Self::new(ErrorCode::NotFound, e.to_string()),
            I::NotApplicable(_) => Self::new(ErrorCode::NotApplicable, e.to_string()),
            I::Invalid(_) => Self::invalid(e.to_string()),
        }
    }
}

impl From<MonitorError> for CommandError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::Forbidden(f) => f.into(),
            MonitorError::Store(s) => s.into(),
            MonitorError::Keys(k) => k.into(),
            MonitorError::Io(_) => Self::new(ErrorCode::Io, e.to_string()),
            MonitorError::Busy => Self::new(ErrorCode::Busy, e.to_string()),
        }
    }
}

impl From<RetentionError> for CommandError {
    fn from(e: RetentionError) -> Self {
        use RetentionError as R;
        match e {
            R::Forbidden(f) => f.into(),
            R::Store(s) => s.into(),
            R::Invalid(_) => Self::invalid(e.to_string()),
            R::Busy => Self::new(ErrorCode::Busy, e.to_string()),
            R::Stopped => Self::new(ErrorCode::Stopped, e.to_string()),
            R::NoArchiveDir => Self::new(ErrorCode::ConfigInvalid, e.to_string()),
            R::Archive(vigil::audit::archive::ArchiveError::Store(s)) => s.into(),
            R::Archive(_) => Self::new(ErrorCode::Io, e.to_string()),
        }
    }
}

impl From<ScreenError> for CommandError {
    fn from(e: ScreenError) -> Self {
        match e {
            ScreenError::Blocklist { .. } | ScreenError::Io(_) => {
                Self::new(ErrorCode::Io, e.to_string())
            }
            ScreenError::RuleName(_) | ScreenError::Pattern { .. } => Self::new(
                ErrorCode::ConfigInvalid,
                format!("the screening rules in the configuration ([monitor.rules]): {e}"),
            ),
        }
    }
}

impl From<AnalyticsError> for CommandError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::Forbidden(f) => f.into(),
            AnalyticsError::Store(s) => s.into(),
            AnalyticsError::Render(_) => Self::new(ErrorCode::Internal, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_snake_case_code_and_message() {
        let error = CommandError::new(ErrorCode::NotFound, "no such session");
        let json = serde_json::to_value(&error).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({ "code": "not_found", "message": "no such session" })
        );
    }

    #[test]
    fn sign_in_failures_keep_their_distinct_codes() {
        let cases = [
            (
                LoginError::InvalidCredentials,
                ErrorCode::InvalidCredentials,
            ),
            (
                LoginError::Throttled {
                    retry_after_seconds: 60,
                },
                ErrorCode::Throttled,
            ),
            (
                LoginError::NotActive("suspended".into()),
                ErrorCode::NotActive,
            ),
            (LoginError::ChallengeInvalid, ErrorCode::ChallengeExpired),
            (
                LoginError::Mfa(MfaError::InvalidCode),
                ErrorCode::MfaInvalid,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(CommandError::from(error).code, code);
        }
    }

    #[test]
    fn privacy_refusals_keep_their_distinct_codes() {
        let cases = [
            (PrivacyError::NotVerified, ErrorCode::NotVerified),
            (
                PrivacyError::WrongCode { attempts_left: 3 },
                ErrorCode::CodeInvalid,
            ),
            (PrivacyError::CodeExpired, ErrorCode::CodeExpired),
            (
                PrivacyError::VerificationLocked,
                ErrorCode::VerificationLocked,
            ),
            (
                PrivacyError::Held {
                    reasons: vec!["legal hold h1: litigation".into()],
                },
                ErrorCode::Held,
            ),
            (PrivacyError::Io("disk full".into()), ErrorCode::Io),
            (PrivacyError::SubjectNotFound, ErrorCode::NotFound),
            (
                PrivacyError::WrongState {
                    status: "completed",
                    action: "running",
                },
                ErrorCode::Conflict,
            ),
            (PrivacyError::Stopped { step: 3 }, ErrorCode::Stopped),
            (
                PrivacyError::Keys(KeyError::NoKeyPairHere),
                ErrorCode::KeysUnavailable,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(CommandError::from(error).code, code);
        }
        let wrong = CommandError::from(PrivacyError::WrongCode { attempts_left: 3 });
        assert!(
            wrong.message.contains("3 attempts left"),
            "{}",
            wrong.message
        );
    }

    #[test]
    fn incident_refusals_keep_their_distinct_codes() {
        let cases = [
            (
                IncidentError::NotApplicable("the incident is closed".into()),
                ErrorCode::NotApplicable,
            ),
            (IncidentError::NotFound("x".into()), ErrorCode::NotFound),
            (
                IncidentError::BlockNotFound("198.51.100.7".into()),
                ErrorCode::NotFound,
            ),
            (
                IncidentError::Invalid("not an IP address".into()),
                ErrorCode::InvalidInput,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(CommandError::from(error).code, code);
        }
        let closed = CommandError::from(IncidentError::NotApplicable(
            "the incident is closed".into(),
        ));
        assert_eq!(closed.message, "the incident is closed");
        assert_eq!(
            CommandError::from(MonitorError::Keys(KeyError::NoKeyPairHere)).code,
            ErrorCode::KeysUnavailable
        );
        assert_eq!(
            CommandError::from(ScreenError::RuleName("url".into())).code,
            ErrorCode::ConfigInvalid
        );
        assert_eq!(
            CommandError::from(AnalyticsError::Render("too small".into())).code,
            ErrorCode::Internal
        );
    }

    #[test]
    fn retention_refusals_keep_the_core_reason() {
        let invalid = CommandError::from(RetentionError::Invalid(
            "the audit period must be from 365 to 36500 days, not 10".into(),
        ));
        assert_eq!(invalid.code, ErrorCode::InvalidInput);
        assert_eq!(
            invalid.message,
            "the audit period must be from 365 to 36500 days, not 10"
        );
        let busy = CommandError::from(RetentionError::Busy);
        assert_eq!(busy.code, ErrorCode::Busy);
        assert!(busy.message.contains("another console"), "{}", busy.message);
        assert_eq!(
            CommandError::from(RetentionError::NoArchiveDir).code,
            ErrorCode::ConfigInvalid
        );
        assert_eq!(CommandError::from(MonitorError::Busy).code, ErrorCode::Busy);
    }
}
