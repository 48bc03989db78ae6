//! Roles, permissions, the data-key purposes each role holds, and the one check every core
//! operation passes.
//!
//! Both tables are explicit: each role lists what it may do and which data keys it holds, and
//! `admin` is granted permissions one by one like every other role, never as a wildcard. The
//! permission table is enforced by [`require`]; the purpose table by the keys themselves (a key
//! pair is wrapped exactly the purposes of its owner's roles, see `keys::grant`).

use crate::identity::Actor;
pub use crate::identity::{purposes_of, role_allows, role_holds, Permission, Purpose, Role};

mod repo;
/// The Postgres table privileges each role's group gets (team mode), kept by the store.
pub use crate::store::privileges;
pub(crate) use repo::roles_of;

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
    use crate::security_log::{self as events, NewSecurityEvent, Outcome, SecurityEventKind};
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
        // RetentionRead RetentionManage LegalHoldManage SecurityEventsRead ConfigManage
        let spec: [(Role, &str); 5] = [
            (Role::User, "..................."),
            (Role::Moderator, "X...X.....XXXX...X."),
            (Role::ComplianceOfficer, "XX..X...XXX...XXX.."),
            (Role::Admin, "XXXXXXXXX.X.XXXXXXX"),
            (Role::Service, ".X..........XXXX..."),
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
