//! Roles, permissions, the data-key purposes each role holds, and the one check every core
//! operation passes.
//!
//! Both tables are explicit: each role lists what it may do and which data keys it holds, and
//! `admin` is granted permissions one by one like every other role, never as a wildcard. The
//! permission table is enforced by [`require`]; the purpose table by the keys themselves (a key
//! pair is wrapped exactly the purposes of its owner's roles, see `keys::grant`).

use serde::Serialize;

use crate::auth::Actor;

pub mod privileges;

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
        }
    }

    /// Every permission.
    pub const ALL: [Permission; 18] = [
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

/// Proof that an actor passed [`require`] for one permission. Only `require` makes one, so a
/// guarded function that takes a `Permit` cannot be called without the check.
#[derive(Debug)]
pub struct Permit {
    permission: Permission,
}

impl Permit {
    /// The permission this permit proves.
    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// The actor lacks a permission, or may do nothing until they enrol MFA.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{}", forbidden_message(*.permission, *.mfa_enrolment_required))]
pub struct Forbidden {
    /// The permission that was missing (or asked for, while MFA enrolment is owed).
    pub permission: Permission,
    /// The actor's roles require MFA and it is not on: nothing is allowed until it is.
    pub mfa_enrolment_required: bool,
}

fn forbidden_message(permission: Permission, mfa_enrolment_required: bool) -> String {
    if mfa_enrolment_required {
        "MFA enrolment required: your role requires a second factor; enrol one (`vigil mfa \
         enroll`, then `vigil mfa confirm`) before anything else"
            .to_owned()
    } else {
        format!("permission denied: this operation needs the {permission:?} permission")
    }
}

/// Whether `actor` holds `permission` through one of its roles: for deciding what to *show*
/// (menus, optional extras). It records nothing and makes no [`Permit`]; an operation checks
/// with [`require`]. An actor held at MFA enrolment holds nothing.
pub fn allows(actor: &Actor, permission: Permission) -> bool {
    !actor.must_enrol_mfa() && actor.roles().iter().any(|r| role_allows(*r, permission))
}

/// Checks that `actor` holds `permission` through one of its roles. An actor held at MFA
/// enrolment ([`Actor::must_enrol_mfa`]) holds none. A refusal is recorded in the
/// security-event log (`authorization_denied`, with the actor, the permission, the outcome and
/// the session) before it is returned: this is the only way to make a [`Permit`], so no guarded
/// operation can be refused without the record. The record is written in its own transaction
/// (the refused operation has none to roll back), so call this before opening one.
pub async fn require(
    store: &crate::store::Store,
    actor: &Actor,
    permission: Permission,
) -> Result<Permit, Forbidden> {
    if allows(actor, permission) {
        return Ok(Permit { permission });
    }
    use crate::security_events::{self as events, NewSecurityEvent, Outcome, SecurityEventKind};
    events::record(
        store,
        NewSecurityEvent::new(
            SecurityEventKind::AuthorizationDenied,
            permission.as_str(),
            Outcome::Denied,
        )
        .by(actor),
    )
    .await;
    Err(Forbidden {
        permission,
        mfa_enrolment_required: actor.must_enrol_mfa(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_are_the_serialised_names() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn platform_users_may_do_nothing_in_the_console() {
        for p in Permission::ALL {
            assert!(!role_allows(Role::User, p), "{p:?}");
        }
    }

    /// Every (role, permission) pair against the specification below, written out by hand:
    /// a change to the table must change this too.
    #[test]
    fn every_role_and_permission_pair_matches_the_specification() {
        // Columns: AuditRead AuditVerify DemoSeed ConfigRead UsersRead UsersManage RolesAssign
        // KeysManage DsrRead DsrManage IncidentsRead IncidentsAct ActivityIngest MonitorRun
        // RetentionRead RetentionManage LegalHoldManage SecurityEventsRead
        let spec: [(Role, &str); 5] = [
            (Role::User, ".................."),
            (Role::Moderator, "X...X.....XXXX...X"),
            (Role::ComplianceOfficer, "XX..X...XXX...XXX."),
            (Role::Admin, "XXXXXXXXX.X.XXXXXX"),
            (Role::Service, ".X..........XXXX.."),
        ];
        let mut checked = 0;
        for (role, row) in spec {
            for (p, cell) in Permission::ALL.iter().zip(row.chars()) {
                assert_eq!(role_allows(role, *p), cell == 'X', "{role} {p:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, Role::ALL.len() * Permission::ALL.len());
    }

    #[test]
    fn the_table_is_explicit_for_the_foundation_permissions() {
        use Permission::*;
        let expect = [
            (Role::Admin, DemoSeed, true),
            (Role::Admin, AuditVerify, true),
            (Role::Admin, DsrManage, false),
            (Role::ComplianceOfficer, DsrManage, true),
            (Role::ComplianceOfficer, DemoSeed, false),
            (Role::Moderator, AuditVerify, false),
            (Role::Moderator, IncidentsAct, true),
            (Role::Service, UsersManage, false),
        ];
        for (role, perm, allowed) in expect {
            assert_eq!(role_allows(role, perm), allowed, "{role} {perm:?}");
        }
    }

    /// Every (role, purpose) pair against the specification below, written out by hand, as
    /// the permission table is: a change to the table must change this too.
    #[test]
    fn every_role_and_purpose_pair_matches_the_specification() {
        // Columns: contact network blind_index content_hash
        let spec: [(Role, &str); 5] = [
            (Role::User, "...."),
            (Role::Moderator, ".XXX"),
            (Role::ComplianceOfficer, "XXX."),
            (Role::Admin, "..X."),
            (Role::Service, "XXXX"),
        ];
        let mut checked = 0;
        for (role, row) in spec {
            for (p, cell) in Purpose::ALL.iter().zip(row.chars()) {
                assert_eq!(role_holds(role, *p), cell == 'X', "{role} {p}");
                checked += 1;
            }
        }
        assert_eq!(checked, Role::ALL.len() * Purpose::ALL.len());
    }

    #[test]
    fn no_role_holds_the_retired_purpose_and_only_officers_and_the_mailer_open_contact_data() {
        for r in Role::ALL {
            assert!(!role_holds(r, Purpose::Pii), "{r}");
            // The service account opens an address only to send the outbox's mail to it.
            assert_eq!(
                role_holds(r, Purpose::Contact),
                r == Role::ComplianceOfficer || r == Role::Service,
                "{r}"
            );
            if r == Role::Admin || r == Role::User {
                assert!(
                    !Purpose::ALL
                        .iter()
                        .any(|p| p.opens_personal_data() && role_holds(r, *p)),
                    "{r} opens personal data"
                );
            }
        }
        assert_eq!(
            purposes_of(&[Role::Moderator, Role::ComplianceOfficer]),
            Purpose::ALL.to_vec()
        );
        for p in Purpose::ALL.into_iter().chain([Purpose::Pii]) {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::parse("everything"), None);
    }
}
