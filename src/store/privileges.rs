//! What each permission needs from the database: the tables (and columns) a holder may read or
//! write. In team mode (Postgres) `vigil migrate` grants each role's group exactly the union of
//! these over the permissions [`crate::identity::role_allows`] gives the role and over the data-key
//! purposes [`crate::identity::role_holds`] gives it, plus [`EVERY_OPERATOR`]; tests/team.rs reads the
//! catalogue back and compares.
//!
//! What is not here is refused by Postgres itself: no group may UPDATE or DELETE `audit_log`
//! or write `audit_head` (entries are appended by the `vigil_audit_append` definer function),
//! nor SELECT `credentials.password_hash` or write `credentials` (sign-in reads one's own hash
//! and credential key through `vigil_password_hash` and `vigil_credential_key`;
//! `vigil_set_password` and `vigil_set_credential_key` write), nor write `operator_logins`, nor
//! INSERT into `key_grants` (a key is wrapped through `vigil_insert_grant`, which checks that
//! the caller and the key pair's owner both hold the purpose).

use std::collections::BTreeSet;

use crate::identity::{role_allows, role_holds, Permission, Purpose, Role};

/// A table privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// `SELECT`
    Select,
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
}

impl Privilege {
    /// The SQL keyword.
    pub fn as_sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// Privileges on one table, or only on some of its columns.
#[derive(Debug, Clone, Copy)]
pub struct TableGrant {
    /// The table.
    pub table: &'static str,
    /// What may be done.
    pub privileges: &'static [Privilege],
    /// Only these columns (empty: the whole table).
    pub columns: &'static [&'static str],
}

use Privilege::{Delete as D, Insert as I, Select as S, Update as U};

const fn t(table: &'static str, privileges: &'static [Privilege]) -> TableGrant {
    TableGrant {
        table,
        privileges,
        columns: &[],
    }
}

const fn c(
    table: &'static str,
    privileges: &'static [Privilege],
    columns: &'static [&'static str],
) -> TableGrant {
    TableGrant {
        table,
        privileges,
        columns,
    }
}

/// What every console operator's login needs whatever their roles: checking the schema, signing
/// in (throttling, lockout bookkeeping, sessions and refresh tokens), enrolling their own key
/// pair and second factor, and reading the data keys wrapped for them.
pub const EVERY_OPERATOR: &[TableGrant] = &[
    t("_sqlx_migrations", &[S]),
    t("app_meta", &[S, I]),
    t("auth_epoch", &[S]),
    t("users", &[S]),
    c(
        "users",
        &[U],
        &[
            "failed_logins",
            "locked_until",
            "last_login_at",
            "mfa_enabled",
            "updated_at",
        ],
    ),
    t("user_roles", &[S]),
    c("credentials", &[S], &["user_id", "changed_at"]),
    t("operator_logins", &[S]),
    t("mfa_secrets", &[S, I, U, D]),
    t("backup_codes", &[S, I, U, D]),
    t("login_challenges", &[S, I, U]),
    t("sessions", &[S, I, U]),
    t("refresh_tokens", &[S, I, U]),
    t("revoked_tokens", &[S, I]),
    t("rate_limit_hits", &[S, I, D]),
    c("activity_log", &[I], &[]),
    t("user_restrictions", &[S]),
    t("user_keys", &[S, I]),
    // The token-signing key of one's own key pair, made at enrolment or the next sign-in
    // (row-level security keeps it to one's own).
    c("user_keys", &[U], &["signing_public_key"]),
    t("data_keys", &[S]),
    t("key_grants", &[S]),
    t("key_rotations", &[S]),
    t("pending_grants", &[S]),
    t("rotation_requests", &[S]),
    t("audit_head", &[S]),
    // One's own notices (row-level security), dismissed by oneself; they are added through
    // `vigil_notice_add`.
    t("operator_notices", &[S]),
    c("operator_notices", &[U], &["dismissed_at"]),
    // The dashboard's daily counts (aggregates, no personal data), changed in the transaction
    // of whatever they count (a sign-in attempt's activity record among them), and folded
    // (`store::daily_counts::fold`) or recounted.
    t("daily_counts", &[S, I, U, D]),
];

/// A `'static` slice of grants (const-fn calls are not promoted to statics on their own).
macro_rules! grants {
    ($($g:expr),* $(,)?) => {{
        const G: &[TableGrant] = &[$($g),*];
        G
    }};
}

/// The tables and columns one permission needs.
pub fn grants_for(permission: Permission) -> &'static [TableGrant] {
    use Permission::*;
    match permission {
        AuditRead | AuditVerify => grants![t("audit_log", &[S])],
        ConfigRead | ConfigManage => grants![],
        DemoSeed => grants![
            t("users", &[I, U]),
            t("events", &[S, I]),
            t("comments", &[S, I]),
            t("comment_recipients", &[S, I]),
            t("reactions", &[S, I]),
            t("activity_log", &[S]),
            t("incidents", &[S, I, U]),
            t("incident_evidence", &[S, I]),
            t("incident_actions", &[S, I]),
            t("dsr_requests", &[S, I]),
            t("dsr_steps", &[S, I]),
            t("legal_holds", &[S, I]),
            t("monitor_checkpoints", &[S, I, U]),
        ],
        UsersRead => grants![],
        UsersManage => grants![
            t("users", &[I]),
            c(
                "users",
                &[U],
                &[
                    "status",
                    "display_name",
                    "must_change_password",
                    "deleted_at"
                ],
            ),
            t("user_keys", &[U]),
            // A suspension deletes the account's wraps and rotates the purposes they held.
            t("key_grants", &[D]),
            t("pending_grants", &[D]),
            t("data_keys", &[I, U]),
            t("key_rotations", &[I, U]),
            t("rotation_requests", &[I, D]),
        ],
        // A removed role deletes the wraps of purposes no longer held and rotates them.
        RolesAssign => grants![
            t("user_roles", &[I, D]),
            t("key_grants", &[D]),
            t("pending_grants", &[D]),
            t("data_keys", &[I, U]),
            t("key_rotations", &[I, U]),
            t("rotation_requests", &[I, D]),
        ],
        KeysManage => grants![
            // Data keys and rotations of purposes the administrator does not hold are checked
            // by row-level security; wraps are written through `vigil_insert_grant`.
            t("data_keys", &[I, U]),
            t("key_grants", &[D]),
            t("pending_grants", &[I, D]),
            t("user_keys", &[U]),
            t("key_rotations", &[I, U]),
            t("rotation_requests", &[I, D]),
            // The split of the retired `pii` purpose re-seals what it sealed.
            c(
                "users",
                &[U],
                &[
                    "email_enc",
                    "phone_enc",
                    "pii_key_version",
                    "contact_key_version"
                ],
            ),
            t("activity_log", &[S]),
            c(
                "activity_log",
                &[U],
                &["ip_enc", "pii_key_version", "network_key_version"],
            ),
            t("incidents", &[S]),
            c(
                "incidents",
                &[U],
                &[
                    "source_ip_enc",
                    "network_key_version",
                    "source_ip_bidx",
                    "bidx_key_version"
                ],
            ),
            t("dsr_requests", &[S]),
            c(
                "dsr_requests",
                &[U],
                &["subject_sealed", "contact_key_version"],
            ),
        ],
        DsrRead => grants![
            t("dsr_requests", &[S]),
            t("dsr_steps", &[S]),
            t("dsr_artifacts", &[S]),
            t("legal_holds", &[S]),
        ],
        DsrManage => grants![
            // Intake, verification, export and erasure of a data subject's records.
            t("dsr_requests", &[S, I, U]),
            t("dsr_steps", &[S, I, U, D]),
            t("dsr_artifacts", &[S, I]),
            t("legal_holds", &[S]),
            t("users", &[I, U, D]),
            t("user_roles", &[D]),
            c("credentials", &[D], &[]),
            t("events", &[S]),
            t("comments", &[S, U]),
            t("comment_recipients", &[S, D]),
            t("reactions", &[S, D]),
            t("activity_log", &[S, D]),
            t("incidents", &[S, U]),
            t("incident_evidence", &[S]),
            t("incident_actions", &[S]),
            // Delivery of the outbox (the code a request sends, the notices) updates its state.
            t("notifications", &[S, I, U, D]),
            t("user_restrictions", &[D]),
            t("sessions", &[D]),
            t("refresh_tokens", &[D]),
            t("revoked_tokens", &[D]),
            t("login_challenges", &[S, D]),
            t("user_keys", &[D]),
            t("ip_blocks", &[S]),
        ],
        IncidentsRead => grants![
            t("incidents", &[S]),
            t("incident_evidence", &[S]),
            t("incident_actions", &[S]),
            t("ip_blocks", &[S]),
            t("activity_log", &[S]),
            t("comments", &[S]),
            t("events", &[S]),
        ],
        IncidentsAct => grants![
            t("incidents", &[U]),
            t("incident_actions", &[I, U]),
            t("ip_blocks", &[I, U]),
            t("user_restrictions", &[I, U]),
            t("notifications", &[I]),
            c("users", &[U], &["status", "updated_at"]),
            c(
                "comments",
                &[U],
                &["deleted_at", "deleted_by", "deletion_reason"],
            ),
        ],
        ActivityIngest => grants![
            t("activity_log", &[S, I]),
            t("users", &[I]),
            c("users", &[U], &["display_name", "country", "status"]),
            t("events", &[S, I]),
            t("comments", &[S, I]),
            t("comment_recipients", &[S, I]),
            t("reactions", &[S, I]),
        ],
        MonitorRun => grants![
            t("activity_log", &[S]),
            t("comments", &[S]),
            t("events", &[S, I]),
            // Changing the shard count replaces the detectors' checkpoints.
            t("monitor_checkpoints", &[S, I, U, D]),
            t("incidents", &[S, I, U]),
            t("incident_evidence", &[S, I]),
            t("incident_actions", &[S, I, U]),
            t("ip_blocks", &[S, I, U]),
            t("user_restrictions", &[I, U]),
            t("notifications", &[I]),
            c("users", &[U], &["status", "updated_at"]),
        ],
        RetentionRead => grants![
            t("retention_policies", &[S]),
            t("retention_runs", &[S]),
            t("legal_holds", &[S]),
            t("activity_log", &[S]),
            t("comments", &[S]),
            t("comment_recipients", &[S]),
            t("incidents", &[S]),
            t("incident_evidence", &[S]),
            t("dsr_requests", &[S]),
            t("audit_log", &[S]),
        ],
        RetentionManage => grants![
            t("retention_policies", &[I, U]),
            t("retention_runs", &[I, U]),
            c("comments", &[U], &["author_id"]),
            t("comment_recipients", &[D]),
            t("activity_log", &[D]),
            t("sessions", &[D]),
            t("refresh_tokens", &[D]),
            t("revoked_tokens", &[D]),
            t("login_challenges", &[D]),
            t("users", &[D]),
        ],
        LegalHoldManage => grants![t("legal_holds", &[S, I, U])],
        // Read only: events are appended through `vigil_security_event_append`, and no group
        // may change or delete one.
        SecurityEventsRead => grants![t("security_events", &[S])],
    }
}

/// The tables and columns holding a data-key purpose needs: rotating it (which re-seals every
/// value its keys made, see `keys::rotation`), making its new versions and settling pending
/// grants of it. Row-level security keeps each to the purposes the caller holds.
pub fn grants_for_purpose(purpose: Purpose) -> &'static [TableGrant] {
    const KEYS: [TableGrant; 4] = [
        t("data_keys", &[I, U]),
        t("key_rotations", &[I, U]),
        t("pending_grants", &[D]),
        t("rotation_requests", &[I, D]),
    ];
    match purpose {
        Purpose::Contact => grants![
            KEYS[0],
            KEYS[1],
            KEYS[2],
            KEYS[3],
            c(
                "users",
                &[U],
                &["email_enc", "phone_enc", "contact_key_version"]
            ),
            t("dsr_requests", &[S]),
            c(
                "dsr_requests",
                &[U],
                &["subject_sealed", "contact_key_version"]
            ),
            // Delivering the outbox: a message's address is opened with `contact`, and a
            // request's code travels sealed with it; delivery claims a message and records its
            // outcome (the worker's `mail` job, over the service account's own login).
            t("notifications", &[S, U]),
        ],
        Purpose::Network => grants![
            KEYS[0],
            KEYS[1],
            KEYS[2],
            KEYS[3],
            t("activity_log", &[S]),
            c("activity_log", &[U], &["ip_enc", "network_key_version"]),
            t("incidents", &[S]),
            c("incidents", &[U], &["source_ip_enc", "network_key_version"]),
        ],
        Purpose::BlindIndex => grants![
            KEYS[0],
            KEYS[1],
            KEYS[2],
            KEYS[3],
            c("users", &[U], &["email_bidx", "bidx_key_version"]),
            t("activity_log", &[S]),
            c("activity_log", &[U], &["ip_bidx", "bidx_key_version"]),
            t("incidents", &[S]),
            c("incidents", &[U], &["source_ip_bidx", "bidx_key_version"]),
        ],
        Purpose::ContentHash => grants![
            KEYS[0],
            KEYS[1],
            KEYS[2],
            KEYS[3],
            t("comments", &[S]),
            c("comments", &[U], &["content_hash", "hash_key_version"]),
        ],
        Purpose::Pii => grants![],
    }
}

/// One granted privilege: on a whole table (`column` is `None`) or on one column.
pub type Grant = (&'static str, Privilege, Option<&'static str>);

/// Everything a role's group is granted: [`EVERY_OPERATOR`] and the grants of each permission
/// the role holds, with column grants dropped where the whole table is granted. `user` has no
/// group and gets nothing.
pub fn role_grants(role: Role) -> BTreeSet<Grant> {
    let mut all = BTreeSet::new();
    if role == Role::User {
        return all;
    }
    let sources = EVERY_OPERATOR
        .iter()
        .chain(
            Permission::ALL
                .into_iter()
                .filter(|p| role_allows(role, *p))
                .flat_map(|p| grants_for(p).iter()),
        )
        .chain(
            Purpose::ALL
                .into_iter()
                .filter(|p| role_holds(role, *p))
                .flat_map(|p| grants_for_purpose(p).iter()),
        );
    for g in sources {
        for p in g.privileges {
            if g.columns.is_empty() {
                all.insert((g.table, *p, None));
            } else {
                for col in g.columns {
                    all.insert((g.table, *p, Some(*col)));
                }
            }
        }
    }
    let whole: BTreeSet<(&str, Privilege)> = all
        .iter()
        .filter(|(_, _, c)| c.is_none())
        .map(|(t, p, _)| (*t, *p))
        .collect();
    all.retain(|(t, p, c)| c.is_none() || !whole.contains(&(*t, *p)));
    all
}

/// The roles that have a group role in team mode.
pub const GROUP_ROLES: [Role; 4] = [
    Role::Moderator,
    Role::ComplianceOfficer,
    Role::Admin,
    Role::Service,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_group_may_rewrite_the_audit_log_or_read_password_hashes() {
        for role in GROUP_ROLES {
            let g = role_grants(role);
            for p in [Privilege::Update, Privilege::Delete, Privilege::Insert] {
                assert!(!g.contains(&("audit_log", p, None)), "{role} {p:?}");
                assert!(!g.contains(&("audit_head", p, None)), "{role} {p:?}");
            }
            assert!(
                !g.contains(&("credentials", Privilege::Select, None)),
                "{role}"
            );
            assert!(
                !g.contains(&("credentials", Privilege::Select, Some("password_hash"))),
                "{role}"
            );
            assert!(!g.iter().any(|(t, p, _)| *t == "credentials"
                && matches!(p, Privilege::Insert | Privilege::Update)));
            assert!(!g
                .iter()
                .any(|(t, p, _)| *t == "operator_logins" && *p != Privilege::Select));
        }
    }

    #[test]
    fn holding_a_purpose_grants_what_rotating_it_writes() {
        for purpose in Purpose::ALL {
            let role = GROUP_ROLES
                .into_iter()
                .find(|r| role_holds(*r, purpose))
                .expect("every purpose has a holding role");
            let g = role_grants(role);
            for spec in crate::keys::rotation::specs(purpose) {
                let may = |col: &'static str| {
                    g.contains(&(spec.table, Privilege::Update, Some(col)))
                        || g.contains(&(spec.table, Privilege::Update, None))
                };
                assert!(may(spec.version_col), "{role} {purpose} {}", spec.table);
                for col in spec.write_cols() {
                    assert!(may(col), "{role} {purpose} {}.{col}", spec.table);
                }
            }
        }
    }

    #[test]
    fn only_role_assigners_write_roles_and_nobody_inserts_key_grants() {
        for role in GROUP_ROLES {
            let g = role_grants(role);
            let writes_roles = g.contains(&("user_roles", Privilege::Insert, None));
            assert_eq!(
                writes_roles,
                role_allows(role, Permission::RolesAssign),
                "{role}"
            );
            assert!(
                !g.contains(&("key_grants", Privilege::Insert, None))
                    && !g.contains(&("key_grants", Privilege::Update, None)),
                "{role}"
            );
            let deletes_grants = g.contains(&("key_grants", Privilege::Delete, None));
            assert_eq!(
                deletes_grants,
                role_allows(role, Permission::KeysManage)
                    || role_allows(role, Permission::UsersManage)
                    || role_allows(role, Permission::RolesAssign),
                "{role}"
            );
            assert!(
                !g.contains(&("user_roles", Privilege::Update, None)),
                "{role}"
            );
        }
    }
}
