//! Roles, permissions and data-key purposes: the two explicit tables (what each role may do,
//! which data keys it holds). Enforced by `rbac::require` and by the keys.

use serde::Serialize;

/// A role an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A platform user: no console rights.
    User,
    /// Reviews incidents and the users behind them.
    Moderator,
    /// Processes data-subject requests and retention.
    ComplianceOfficer,
    /// Manages operators, roles, keys and configuration.
    Admin,
    /// A headless worker's account: runs scheduled jobs only.
    Service,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 5] = [
        Role::User,
        Role::Moderator,
        Role::ComplianceOfficer,
        Role::Admin,
        Role::Service,
    ];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an operator may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the audit log.
    AuditRead,
    /// Verify the audit chain.
    AuditVerify,
    /// Fill the database with generated demonstration data.
    DemoSeed,
    /// See the effective configuration.
    ConfigRead,
    /// List and view accounts (no personal data beyond what the role may see).
    UsersRead,
    /// Create, suspend, unlock and reset accounts.
    UsersManage,
    /// Change an account's roles.
    RolesAssign,
    /// Grant, revoke and rotate keys.
    KeysManage,
    /// View data-subject requests.
    DsrRead,
    /// Create, verify, run and close data-subject requests.
    DsrManage,
    /// View incidents.
    IncidentsRead,
    /// Act on incidents: assign, confirm, dismiss, lift blocks.
    IncidentsAct,
    /// Feed platform activity into Vigil.
    ActivityIngest,
    /// Run the monitoring detectors.
    MonitorRun,
    /// View retention policies, plans and runs.
    RetentionRead,
    /// Change retention policies and run cleanups.
    RetentionManage,
    /// Place and release legal holds.
    LegalHoldManage,
    /// Read the security-event log (denials, token failures, refreshes, logouts, expiry).
    SecurityEventsRead,
    /// Change the configuration: move the console to another database.
    ConfigManage,
}

impl Permission {
    /// The permission's name, as serialised and as team mode's database functions know it.
    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            AuditRead => "audit_read",
            AuditVerify => "audit_verify",
            DemoSeed => "demo_seed",
            ConfigRead => "config_read",
            UsersRead => "users_read",
            UsersManage => "users_manage",
            RolesAssign => "roles_assign",
            KeysManage => "keys_manage",
            DsrRead => "dsr_read",
            DsrManage => "dsr_manage",
            IncidentsRead => "incidents_read",
            IncidentsAct => "incidents_act",
            ActivityIngest => "activity_ingest",
            MonitorRun => "monitor_run",
            RetentionRead => "retention_read",
            RetentionManage => "retention_manage",
            LegalHoldManage => "legal_hold_manage",
            SecurityEventsRead => "security_events_read",
            ConfigManage => "config_manage",
        }
    }

    /// Every permission.
    pub const ALL: [Permission; 19] = [
        Permission::AuditRead,
        Permission::AuditVerify,
        Permission::DemoSeed,
        Permission::ConfigRead,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::RolesAssign,
        Permission::KeysManage,
        Permission::DsrRead,
        Permission::DsrManage,
        Permission::IncidentsRead,
        Permission::IncidentsAct,
        Permission::ActivityIngest,
        Permission::MonitorRun,
        Permission::RetentionRead,
        Permission::RetentionManage,
        Permission::LegalHoldManage,
        Permission::SecurityEventsRead,
        Permission::ConfigManage,
    ];
}

/// The permission table: what each role may do. Nothing is implied by another role.
pub fn role_allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::User => false,
        Role::Moderator => matches!(
            permission,
            AuditRead
                | UsersRead
                | IncidentsRead
                | IncidentsAct
                | ActivityIngest
                | MonitorRun
                | SecurityEventsRead
        ),
        Role::ComplianceOfficer => matches!(
            permission,
            AuditRead
                | AuditVerify
                | UsersRead
                | DsrRead
                | DsrManage
                | IncidentsRead
                | RetentionRead
                | RetentionManage
                | LegalHoldManage
        ),
        Role::Admin => matches!(
            permission,
            AuditRead
                | AuditVerify
                | DemoSeed
                | ConfigRead
                | UsersRead
                | UsersManage
                | RolesAssign
                | KeysManage
                | DsrRead
                | IncidentsRead
                | ActivityIngest
                | MonitorRun
                | RetentionRead
                | RetentionManage
                | LegalHoldManage
                | SecurityEventsRead
                | ConfigManage
        ),
        Role::Service => matches!(
            permission,
            ActivityIngest | MonitorRun | RetentionRead | RetentionManage | AuditVerify
        ),
    }
}

/// What a data key is for. Each purpose has its own series of versions, and a role holds a
/// purpose only if [`role_holds`] says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Contact data at rest: a person's email address and phone number (and the working record
    /// of an erasure, which holds them).
    Contact,
    /// Connection data kept with a person: IP addresses (activity, incident sources).
    Network,
    /// Blind indexes for equality lookups (email, IP).
    BlindIndex,
    /// Keyed content hashes of comments.
    ContentHash,
    /// Retired: personal data of every kind, before it was split into [`Purpose::Contact`] and
    /// [`Purpose::Network`]. Only read, to re-seal what an older version wrote (`keys split-pii`).
    Pii,
}

impl Purpose {
    /// Every purpose in use (the retired `pii` is not one).
    pub const ALL: [Purpose; 4] = [
        Purpose::Contact,
        Purpose::Network,
        Purpose::BlindIndex,
        Purpose::ContentHash,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Contact => "contact",
            Purpose::Network => "network",
            Purpose::BlindIndex => "blind_index",
            Purpose::ContentHash => "content_hash",
            Purpose::Pii => "pii",
        }
    }

    /// Parses a stored or typed name (the retired `pii` included).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Purpose::Pii])
            .find(|p| p.as_str() == s)
    }

    /// Whether this purpose's keys open personal data (as opposed to deriving lookups from it).
    pub fn opens_personal_data(self) -> bool {
        matches!(self, Purpose::Contact | Purpose::Network | Purpose::Pii)
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The purpose table: which data keys each role holds. Nothing is implied by another role.
///
/// Administrators manage people and grants but open no personal data: they hold `blind_index`
/// (the directory's email search compares blind indexes, it opens nothing). The very first
/// administrator is the one exception: `vigil init` gives them every purpose, kept until a
/// compliance officer holds them too and they give the extra ones up (`keys relinquish`).
/// TOTP secrets and token-signing keys are not data keys: each operator's are their own.
pub fn role_holds(role: Role, purpose: Purpose) -> bool {
    use Purpose::*;
    match role {
        Role::User => false,
        Role::Moderator => matches!(purpose, Network | BlindIndex | ContentHash),
        Role::ComplianceOfficer => matches!(purpose, Contact | Network | BlindIndex),
        Role::Admin => matches!(purpose, BlindIndex),
        // The worker ingests activity (network, blind_index, content_hash), runs the detectors,
        // and delivers the outbox, opening each recipient's address (`contact`) at send time.
        Role::Service => matches!(purpose, Contact | Network | BlindIndex | ContentHash),
    }
}

/// The purposes any of `roles` holds, in [`Purpose::ALL`] order.
pub fn purposes_of(roles: &[Role]) -> Vec<Purpose> {
    Purpose::ALL
        .into_iter()
        .filter(|p| roles.iter().any(|r| role_holds(*r, *p)))
        .collect()
}
