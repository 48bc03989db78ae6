//! Field encryption: one personal value in one column of one row.
//!
//! Format (version 1): `0x01 | key version (u32, big-endian) | nonce (12) | ciphertext | tag (16)`.
//! The associated data binds the value to its place: a domain tag, the table, the column, the
//! row id and the key version, each length-prefixed. A ciphertext copied to another row or
//! column, or relabelled with another key version, does not open.

use zeroize::Zeroizing;

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::{put_len_prefixed, KeyVersion, SymmetricKey};

/// The format's version byte.
pub const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Bytes a sealed field adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Where a value lives: it is sealed to exactly this place.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// The row's id.
    pub row: &'a str,
}

impl<'a> Place<'a> {
    /// A place.
    pub fn new(table: &'a str, column: &'a str, row: &'a str) -> Self {
        Self { table, column, row }
    }
}

/// Why a sealed field did not open. The message never includes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Too short or otherwise not a sealed field.
    #[error("not an encrypted field (malformed)")]
    Malformed,
    /// A format version this build does not know.
    #[error("encrypted field format {0} is not supported")]
    UnsupportedFormat(u8),
    /// It did not authenticate: altered, moved from elsewhere, or the wrong key.
    #[error("encrypted field does not authenticate here (altered, moved, or wrong key)")]
    Tampered,
}

fn aad(place: &Place<'_>, version: KeyVersion) -> Vec<u8> {
    let mut a = Vec::with_capacity(64 + place.row.len());
    put_len_prefixed(&mut a, b"vigil-field-v1");
    put_len_prefixed(&mut a, place.table.as_bytes());
    put_len_prefixed(&mut a, place.column.as_bytes());
    put_len_prefixed(&mut a, place.row.as_bytes());
    a.extend_from_slice(&version.0.to_be_bytes());
    a
}

/// Seals `plaintext` for `place` with data key `key` of version `version`.
pub fn seal(
    key: &SymmetricKey,
    version: KeyVersion,
    place: &Place<'_>,
    plaintext: &[u8],
) -> Vec<u8> {
    let nonce = aead::random_nonce();
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.0.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&aead::seal(key, &nonce, &aad(place, version), plaintext));
    out
}

/// The key version a sealed field names, to choose the key that opens it.
pub fn key_version(sealed: &[u8]) -> Result<KeyVersion, FieldError> {
    if sealed.len() < OVERHEAD {
        return Err(FieldError::Malformed);
    }
    if sealed[0] != FORMAT_V1 {
        return Err(FieldError::UnsupportedFormat(sealed[0]));
    }
    let v = u32::from_be_bytes(sealed[1..5].try_into().expect("4 bytes"));
    Ok(KeyVersion(v))
}

/// Opens a sealed field at `place` with `key`, which must be the version the field names.
pub fn open(
    key: &SymmetricKey,
    place: &Place<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let version = key_version(sealed)?;
    let nonce: [u8; NONCE_LEN] = sealed[5..HEADER_LEN].try_into().expect("12 bytes");
    aead::open(key, &nonce, &aad(place, version), &sealed[HEADER_LEN..])
        .map_err(|_| FieldError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: Place<'static> = Place {
        table: "users",
        column: "email_enc",
        row: "0190f2a4-0000-7000-8000-000000000001",
    };

    #[test]
    fn seals_and_opens() {
        let k = SymmetricKey::random();
        let s = seal(&k, KeyVersion(3), &PLACE, b"ada@example.org");
        assert_eq!(s.len(), OVERHEAD + 15);
        assert_eq!(key_version(&s), Ok(KeyVersion(3)));
        assert_eq!(open(&k, &PLACE, &s).unwrap().as_slice(), b"ada@example.org");
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let k = SymmetricKey::random();
        assert_ne!(
            seal(&k, KeyVersion(1), &PLACE, b"x"),
            seal(&k, KeyVersion(1), &PLACE, b"x")
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let k = SymmetricKey::random();
        let s = seal(&k, KeyVersion(1), &PLACE, b"+44 20 7946 0958");
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 0x01;
            let r = open(&k, &PLACE, &t);
            match i {
                0 => assert_eq!(r.unwrap_err(), FieldError::UnsupportedFormat(0)),
                _ => assert_eq!(r.unwrap_err(), FieldError::Tampered, "byte {i}"),
            }
        }
        assert_eq!(
            open(&k, &PLACE, &s[..OVERHEAD - 1]).unwrap_err(),
            FieldError::Malformed
        );
        assert_eq!(
            open(&k, &PLACE, &s[..s.len() - 1]).unwrap_err(),
            FieldError::Tampered
        );
    }

    #[test]
    fn another_place_or_key_is_refused() {
        let k = SymmetricKey::random();
        let s = seal(&k, KeyVersion(1), &PLACE, b"ada@example.org");
        let other_row = Place {
            row: "0190f2a4-0000-7000-8000-000000000002",
            ..PLACE
        };
        let other_col = Place {
            column: "phone_enc",
            ..PLACE
        };
        let other_table = Place {
            table: "activity_log",
            ..PLACE
        };
        for p in [other_row, other_col, other_table] {
            assert_eq!(open(&k, &p, &s).unwrap_err(), FieldError::Tampered);
        }
        assert_eq!(
            open(&SymmetricKey::random(), &PLACE, &s).unwrap_err(),
            FieldError::Tampered
        );
    }

    #[test]
    fn keys_do_not_print() {
        let k = SymmetricKey::random();
        assert_eq!(format!("{k:?}"), "SymmetricKey(..)");
    }
}
