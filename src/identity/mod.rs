//! Who acts: the operator ([`Actor`]), account ids and usernames, roles, permissions and
//! data-key purposes. The bottom floor of the core: it uses no other module of it, and
//! `store`, `security_events`, `rbac`, `audit`, `keys` and `auth` all build on it.

mod roles;
mod types;

use zeroize::Zeroizing;

pub use roles::{purposes_of, role_allows, role_holds, Permission, Purpose, Role};
pub use types::{InvalidUsername, UserId, Username};

/// An authenticated operator: who is acting, and with which roles.
#[derive(Debug, Clone)]
pub struct Actor {
    user_id: UserId,
    username: Username,
    roles: Vec<Role>,
    session_id: Option<String>,
    /// Signed in under a policy that requires MFA for these roles, without MFA: the actor may
    /// enrol a second factor and nothing else ([`crate::rbac::require`] refuses every
    /// permission) until MFA is on.
    must_enrol_mfa: bool,
}

/// Which roles must have MFA on before they may do anything but enrol it (`[auth]
/// require_mfa`, `VIGIL_REQUIRE_MFA`). Sign-in takes it as a parameter, so every caller says
/// which policy it signs in under; [`MfaPolicy::none`] is for throwaway and demo databases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaPolicy {
    roles: Vec<Role>,
}

impl MfaPolicy {
    /// No role requires MFA.
    pub fn none() -> Self {
        Self { roles: Vec::new() }
    }

    /// These roles require MFA.
    pub fn roles(roles: &[Role]) -> Self {
        Self {
            roles: roles.to_vec(),
        }
    }

    /// Whether an operator holding `roles` must have MFA on.
    pub fn requires(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }
}

impl Actor {
    /// The same operator acting in session `session_id` (set where a token pair is issued or
    /// verified), so security events and audit entries name the session.
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// The session the operator acts in, if one is known.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The operator's account id.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The operator's username.
    pub fn username(&self) -> &Username {
        &self.username
    }

    /// The roles the operator held when authenticated.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether this operator must enrol MFA before anything else: their roles require it and it
    /// is not on. Such an actor passes no [`crate::rbac::require`]; it may enrol and confirm
    /// MFA, change its password, see who it is and sign out.
    pub fn must_enrol_mfa(&self) -> bool {
        self.must_enrol_mfa
    }
}

impl Actor {
    /// The operator `auth` has just authenticated (or re-read): only sign-in and the session
    /// checks in `auth` make one, so holding an `Actor` proves the operator authenticated.
    pub(crate) fn signed_in(
        user_id: UserId,
        username: Username,
        roles: Vec<Role>,
        session_id: Option<String>,
        must_enrol_mfa: bool,
    ) -> Self {
        Self {
            user_id,
            username,
            roles,
            session_id,
            must_enrol_mfa,
        }
    }
}

/// `secret` in Unicode Normalization Form C, in a buffer wiped when dropped. The buffer is sized
/// for the longest NFC can make (three times the input, Unicode Standard Annex #15 §9), so it is
/// never reallocated and no unwiped copy is left behind. Both the password hash (`auth`) and the
/// key that seals a private key (`keys`) are derived from this form.
pub fn normalize_password(secret: &str) -> Zeroizing<String> {
    use unicode_normalization::UnicodeNormalization;
    let mut out = Zeroizing::new(String::with_capacity(secret.len().saturating_mul(3)));
    out.extend(secret.nfc());
    out
}
