//! The command line's session, in the manner of `bw unlock` / `op signin`.
//!
//! `vigil login` signs in once (password, second factor), opens a session with the configured
//! limits, and keeps a **sealed session record** in the operator's keystore: the unlocked key
//! pair and token-signing key, the credential key, the database password (team mode, when the
//! configured URL holds none), and the session's access and refresh tokens. It prints a
//! [`SessionKey`] (`VIGIL_SESSION`): the account id, the session id and 256 random bits. The
//! record is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from those bits, bound
//! to the account and session ids; the bits are never stored, so the record opens only for a
//! shell that holds the variable.
//!
//! Every later command with `VIGIL_SESSION` opens the record and has the core check the
//! session ([`OpenRecord::resume`]): the access token is verified (idle timeout, absolute
//! lifetime, revocation, account status and roles, the use recorded), or, once it expired or
//! the roles changed, refreshed (which re-reads the account); then the account is read again,
//! so a suspension or a role change applies to the next command. No argon2id runs. A session
//! that has ended takes its record with it; `vigil logout` revokes the session and deletes the
//! record.

use base64::Engine;
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::credential::CredentialKey;
use super::tokens::{self, TokenError, TokenPair};
use super::{AuthError, Session, UserId};
use crate::crypto::{aead, SymmetricKey};
use crate::keys::{self, KeyError};
use crate::keystore::{Keystore, KeystoreError, SecretName};
use crate::store::{Store, Timestamp};

const PREFIX: &str = "vs1.";
const CONTEXT: &[u8] = b"vigil-cli-session-v1";
const FORMAT: u8 = 1;

/// Why a command-line session did not open. None of the messages carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CliSessionError {
    /// `VIGIL_SESSION` is not a session key at all.
    #[error("VIGIL_SESSION is not a Vigil session key; sign in with `vigil login`")]
    Malformed,
    /// No record opens with this key here: ended, logged out, altered, or from another machine.
    #[error(
        "VIGIL_SESSION opens no session on this machine (it ended, or was never made here); \
         sign in with `vigil login`"
    )]
    NotFound,
    /// The session ended in the database (idle, past its lifetime, revoked, or the account
    /// changed); the record was deleted.
    #[error("the session has ended ({0}); sign in with `vigil login`")]
    Ended(TokenError),
    /// The account may no longer act.
    #[error(transparent)]
    Account(#[from] AuthError),
    /// The session was opened without this machine's keys.
    #[error("the session holds no key pair; sign in on a machine that has yours")]
    NoKeys,
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The keys failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Token(TokenError),
}

/// The value of `VIGIL_SESSION`: which record, and the secret that opens it. Never printed by
/// `Debug`; [`SessionKey::reveal`] is the only way out.
pub struct SessionKey {
    user: uuid::Uuid,
    session: uuid::Uuid,
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    /// Parses `vs1.` + base64url(account id, session id, 32 random bytes).
    pub fn parse(s: &str) -> Result<Self, CliSessionError> {
        let raw = s
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
            })
            .map(Zeroizing::new)
            .filter(|b| b.len() == 64)
            .ok_or(CliSessionError::Malformed)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&raw[32..]);
        Ok(Self {
            user: uuid::Uuid::from_slice(&raw[..16]).map_err(|_| CliSessionError::Malformed)?,
            session: uuid::Uuid::from_slice(&raw[16..32])
                .map_err(|_| CliSessionError::Malformed)?,
            secret,
        })
    }

    /// The text to put in `VIGIL_SESSION`.
    pub fn reveal(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(64));
        raw.extend_from_slice(self.user.as_bytes());
        raw.extend_from_slice(self.session.as_bytes());
        raw.extend_from_slice(self.secret.as_ref());
        Zeroizing::new(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice())
        ))
    }

    /// The session's id.
    pub fn session_id(&self) -> String {
        self.session.to_string()
    }

    fn entry(&self) -> SecretName {
        SecretName::parse(&format!("cli-session-{}", self.session.simple()))
            .expect("a valid keystore name")
    }

    fn aad(&self) -> Vec<u8> {
        let mut a = CONTEXT.to_vec();
        a.extend_from_slice(self.user.as_bytes());
        a.extend_from_slice(self.session.as_bytes());
        a
    }

    fn key(&self) -> SymmetricKey {
        let mut okm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(CONTEXT), self.secret.as_ref())
            .expand(&self.aad(), okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        SymmetricKey::from_slice(okm.as_ref()).expect("32 bytes")
    }
}

/// What the record holds, open in memory (wiped on drop).
struct Record {
    expires_at: i64,
    access_token: Zeroizing<String>,
    refresh_token: Zeroizing<String>,
    key_material: Zeroizing<Vec<u8>>,
    credential: Option<Zeroizing<Vec<u8>>>,
    database_password: Option<Zeroizing<String>>,
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
    out.extend_from_slice(part);
}

fn take_part(b: &mut &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let part = Zeroizing::new(b.get(4..4 + len)?.to_vec());
    *b = &b[4 + len..];
    Some(part)
}

fn text(part: Zeroizing<Vec<u8>>) -> Option<Zeroizing<String>> {
    String::from_utf8(part.to_vec()).ok().map(Zeroizing::new)
}

impl Record {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![FORMAT]);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        put_part(&mut out, self.access_token.as_bytes());
        put_part(&mut out, self.refresh_token.as_bytes());
        put_part(&mut out, &self.key_material);
        put_part(&mut out, self.credential.as_deref().map_or(&[], |c| c));
        out.push(u8::from(self.database_password.is_some()));
        put_part(
            &mut out,
            self.database_password
                .as_deref()
                .map_or(&[], |p| p.as_bytes()),
        );
        out
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.first() != Some(&FORMAT) {
            return None;
        }
        let expires_at = i64::from_be_bytes(b.get(1..9)?.try_into().ok()?);
        let mut rest = &b[9..];
        let access_token = text(take_part(&mut rest)?)?;
        let refresh_token = text(take_part(&mut rest)?)?;
        let key_material = take_part(&mut rest)?;
        let credential = Some(take_part(&mut rest)?).filter(|c| !c.is_empty());
        let has_password = *rest.first()? == 1;
        rest = &rest[1..];
        let password = text(take_part(&mut rest)?)?;
        if !rest.is_empty() {
            return None;
        }
        Some(Self {
            expires_at,
            access_token,
            refresh_token,
            key_material,
            credential,
            database_password: has_password.then_some(password),
        })
    }

    fn seal(&self, key: &SessionKey) -> Zeroizing<Vec<u8>> {
        let nonce = aead::random_nonce();
        let mut out = Zeroizing::new(nonce.to_vec());
        out.extend_from_slice(&aead::seal(&key.key(), &nonce, &key.aad(), &self.encode()));
        out
    }

    fn open(sealed: &[u8], key: &SessionKey) -> Option<Self> {
        let nonce: [u8; aead::NONCE_LEN] = sealed.get(..aead::NONCE_LEN)?.try_into().ok()?;
        let plain = aead::open(&key.key(), &nonce, &key.aad(), &sealed[aead::NONCE_LEN..]).ok()?;
        Self::decode(&plain)
    }
}

/// Keeps a new sealed record for the session `pair` opened for `session` (which must hold this
/// machine's keys), with the database password if given, and returns the key that opens it.
pub fn begin(
    keystore: &dyn Keystore,
    session: &Session,
    pair: &TokenPair,
    session_expires_at: Timestamp,
    database_password: Option<&str>,
) -> Result<SessionKey, CliSessionError> {
    let ring = session.keys.as_ref().ok_or(CliSessionError::NoKeys)?;
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(secret.as_mut());
    let key = SessionKey {
        user: session.actor.user_id().as_uuid(),
        session: uuid::Uuid::parse_str(&pair.session_id)
            .map_err(|_| CliSessionError::Token(TokenError::Malformed))?,
        secret,
    };
    let record = Record {
        expires_at: session_expires_at.micros(),
        access_token: Zeroizing::new(pair.access_token.clone()),
        refresh_token: pair.refresh_token.clone(),
        key_material: keys::session_material(ring),
        credential: session
            .credential
            .as_ref()
            .map(|c| Zeroizing::new(c.secret().to_vec())),
        database_password: database_password.map(|p| Zeroizing::new(p.to_owned())),
    };
    keystore.put(key.user, &key.entry(), &record.seal(&key))?;
    Ok(key)
}

/// A record opened with its key: not yet checked against the database.
pub struct OpenRecord {
    key: SessionKey,
    record: Record,
}

impl std::fmt::Debug for OpenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRecord")
            .field("session", &self.key.session)
            .finish_non_exhaustive()
    }
}

/// Opens the record `key` names in `keystore`. A record past its session's absolute end is
/// deleted and refused without asking the database.
pub fn open(keystore: &dyn Keystore, key: SessionKey) -> Result<OpenRecord, CliSessionError> {
    let sealed = keystore
        .get(key.user, &key.entry())?
        .ok_or(CliSessionError::NotFound)?;
    let record = Record::open(sealed.expose(), &key).ok_or(CliSessionError::NotFound)?;
    if record.expires_at <= Timestamp::now().micros() {
        let _ = keystore.delete(key.user, &key.entry());
        return Err(CliSessionError::Ended(TokenError::SessionExpired));
    }
    Ok(OpenRecord { key, record })
}

impl OpenRecord {
    /// The database password the record keeps, if any (team mode).
    pub fn database_password(&self) -> Option<&str> {
        self.record.database_password.as_deref().map(|p| p.as_str())
    }

    /// The session's id.
    pub fn session_id(&self) -> String {
        self.key.session_id()
    }

    /// The session's current access token (after [`OpenRecord::resume`], a verified or fresh
    /// one).
    pub fn access_token(&self) -> &str {
        &self.record.access_token
    }

    /// Checks the session with the core and returns it, with the account read again: the
    /// access token verified (recording the use), or refreshed once it expired or the roles it
    /// names changed (the record is then re-sealed with the new pair). A session that has
    /// ended is refused and its record deleted.
    pub async fn resume(
        &mut self,
        store: &Store,
        keystore: &dyn Keystore,
    ) -> Result<Session, CliSessionError> {
        let user = UserId::from_uuid(self.key.user);
        let verified = match tokens::verify_access_token(store, &self.record.access_token).await {
            Ok(claims) if claims.sub == user.to_string() && claims.sid == self.session_id() => true,
            Ok(_) => return Err(self.ended(keystore, TokenError::WrongSigner)),
            Err(TokenError::Expired | TokenError::AccountChanged) => false,
            Err(TokenError::Store(e)) => return Err(CliSessionError::Token(TokenError::Store(e))),
            Err(e) => return Err(self.ended(keystore, e)),
        };
        let ring = match keys::resume(store, user, &self.record.key_material).await {
            Ok(r) => r,
            Err(KeyError::Store(e)) => return Err(KeyError::Store(e).into()),
            Err(_) => return Err(self.ended(keystore, TokenError::KeyRetired)),
        };
        if !verified {
            let pair = match tokens::refresh(store, &ring, &self.record.refresh_token).await {
                Ok(p) => p,
                Err(TokenError::Store(e)) => {
                    return Err(CliSessionError::Token(TokenError::Store(e)))
                }
                Err(e) => return Err(self.ended(keystore, e)),
            };
            self.record.access_token = Zeroizing::new(pair.access_token.clone());
            self.record.refresh_token = pair.refresh_token.clone();
            keystore.put(
                self.key.user,
                &self.key.entry(),
                &self.record.seal(&self.key),
            )?;
        }
        let actor = super::actor_of(store, user)
            .await?
            .with_session_id(self.session_id());
        let credential = self
            .record
            .credential
            .as_ref()
            .and_then(|c| CredentialKey::from_secret(user, c));
        Ok(Session {
            actor,
            keys: Some(ring),
            credential,
            // An administrator's reset ends every session, so a live one never owes a change.
            must_change_password: false,
        })
    }

    /// Ends the session: revoked in the database, the record deleted. Returns whether the
    /// database still knew it.
    pub async fn end(
        self,
        store: &Store,
        keystore: &dyn Keystore,
    ) -> Result<bool, CliSessionError> {
        let known = tokens::logout_refresh(store, &self.record.refresh_token)
            .await
            .map_err(CliSessionError::Token)?;
        keystore.delete(self.key.user, &self.key.entry())?;
        Ok(known)
    }

    fn ended(&self, keystore: &dyn Keystore, why: TokenError) -> CliSessionError {
        let _ = keystore.delete(self.key.user, &self.key.entry());
        CliSessionError::Ended(why)
    }
}
