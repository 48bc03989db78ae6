//! Project Wycheproof test vectors run through Vigil's own crypto functions: AES-256-GCM
//! (`vigil::crypto::aead`) and RSA-OAEP with SHA-256 and MGF1-SHA-256
//! (`vigil::crypto::PrivateKey` / `PublicKey`).
//!
//! The vectors are vendored unchanged under `tests/vectors/` (source, commit and licence in
//! `tests/vectors/README.md`). Every case in every file is accounted for: it is either run
//! through Vigil, or shown to be something Vigil's API cannot express. The counts are pinned
//! below, so a filter that quietly skipped cases, or a swapped file, fails the test.

use serde::Deserialize;
use vigil::crypto::{aead, PrivateKey, RsaError, SymmetricKey};

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

/// A case's expected result, as Wycheproof writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    /// The implementation must accept the case and produce the given output.
    Valid,
    /// The implementation must refuse the case.
    Invalid,
    /// Either behaviour is allowed (weak but legal parameters, for example).
    Acceptable,
}

fn unhex(what: &str, tc_id: u32, s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("tcId {tc_id}: {what} is not hex: {e}"))
}

/// Panics listing every failed case (rather than stopping at the first one).
fn assert_no_failures(test: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{test}: {} case(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// AES-GCM
// ---------------------------------------------------------------------------------------------

const AES_GCM_JSON: &str = include_str!("vectors/aes_gcm_test.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadFile {
    algorithm: String,
    schema: String,
    number_of_tests: usize,
    test_groups: Vec<AeadGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadGroup {
    #[serde(rename = "type")]
    kind: String,
    key_size: usize,
    iv_size: usize,
    tag_size: usize,
    tests: Vec<AeadCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadCase {
    tc_id: u32,
    comment: String,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: Expect,
}

/// What happened to the cases of one AES-GCM file.
#[derive(Debug, Default, PartialEq, Eq)]
struct AeadCounts {
    /// Cases Vigil's API can express (256-bit key, 96-bit nonce, 128-bit tag), all run.
    run: usize,
    valid_opened: usize,
    invalid_refused: usize,
    /// "acceptable" cases run (either outcome allowed): how many Vigil opened / refused.
    acceptable_opened: usize,
    acceptable_refused: usize,
    /// Cases Vigil's API cannot take, by reason.
    na_key_size: usize,
    na_nonce_size: usize,
    na_tag_size: usize,
}

impl AeadCounts {
    fn not_applicable(&self) -> usize {
        self.na_key_size + self.na_nonce_size + self.na_tag_size
    }
}

#[test]
fn aes_gcm_wycheproof_vectors_through_vigil_aead() {
    let file: AeadFile = serde_json::from_str(AES_GCM_JSON).expect("aes_gcm_test.json parses");
    assert_eq!(file.algorithm, "AES-GCM", "wrong vector file");
    assert_eq!(
        file.schema, "aead_test_schema_v1.json",
        "wrong vector schema"
    );
    // Vigil's own parameters, which decide what is applicable below.
    assert_eq!(aead::NONCE_LEN, 12);
    assert_eq!(aead::TAG_LEN, 16);

    let mut c = AeadCounts::default();
    let mut failures = Vec::new();
    let mut total = 0;

    for g in &file.test_groups {
        assert_eq!(g.kind, "AeadTest", "unexpected test group type");
        for t in &g.tests {
            total += 1;
            let id = t.tc_id;
            let key = unhex("key", id, &t.key);
            let iv = unhex("iv", id, &t.iv);
            let aad = unhex("aad", id, &t.aad);
            let msg = unhex("msg", id, &t.msg);
            let ct = unhex("ct", id, &t.ct);
            let tag = unhex("tag", id, &t.tag);
            // The group's sizes must describe the case, or the classification below is wrong.
            assert_eq!(key.len() * 8, g.key_size, "tcId {id}: key size vs group");
            assert_eq!(iv.len() * 8, g.iv_size, "tcId {id}: iv size vs group");
            assert_eq!(tag.len() * 8, g.tag_size, "tcId {id}: tag size vs group");
            let what = format!("tcId {id} ({:?}, {:?})", t.result, t.comment);

            // Keys other than 256 bits: Vigil cannot even hold them.
            let Some(sk) = SymmetricKey::from_slice(&key) else {
                if g.key_size == 256 {
                    failures.push(format!("{what}: a 256-bit key was refused"));
                }
                c.na_key_size += 1;
                continue;
            };
            if g.key_size != 256 {
                failures.push(format!("{what}: a {}-bit key was accepted", g.key_size));
                continue;
            }

            // Nonces other than 96 bits: they do not fit Vigil's `[u8; 12]`.
            let Ok(nonce) = <[u8; aead::NONCE_LEN]>::try_from(iv.as_slice()) else {
                c.na_nonce_size += 1;
                continue;
            };

            let mut sealed = ct.clone();
            sealed.extend_from_slice(&tag);

            // Tags other than 128 bits: Vigil always appends and checks a full 16-byte tag,
            // so a ciphertext with a shortened tag (even a correct one) must be refused.
            if g.tag_size != 128 {
                if aead::open(&sk, &nonce, &aad, &sealed).is_ok() {
                    failures.push(format!("{what}: {}-bit tag was accepted", g.tag_size));
                }
                c.na_tag_size += 1;
                continue;
            }

            c.run += 1;
            let opened = aead::open(&sk, &nonce, &aad, &sealed);
            match t.result {
                Expect::Valid => {
                    match &opened {
                        Ok(pt) if pt.as_slice() == msg.as_slice() => c.valid_opened += 1,
                        Ok(_) => failures.push(format!("{what}: opened to the wrong plaintext")),
                        Err(_) => failures.push(format!("{what}: valid ciphertext refused")),
                    }
                    let resealed = aead::seal(&sk, &nonce, &aad, &msg);
                    if resealed != sealed {
                        failures.push(format!("{what}: seal does not give ct||tag"));
                    }
                }
                Expect::Invalid => match opened {
                    Err(aead::OpenFailed) => c.invalid_refused += 1,
                    Ok(_) => failures.push(format!("{what}: invalid ciphertext opened")),
                },
                // Either outcome is allowed; record which.
                Expect::Acceptable => match opened {
                    Ok(_) => c.acceptable_opened += 1,
                    Err(_) => c.acceptable_refused += 1,
                },
            }
        }
    }

    println!(
        "aes_gcm_test.json: {total} cases: run {} (valid opened {}, invalid refused {}, \
         acceptable opened/refused {}/{}), not applicable {} (key size {}, nonce size {}, \
         tag size {})",
        c.run,
        c.valid_opened,
        c.invalid_refused,
        c.acceptable_opened,
        c.acceptable_refused,
        c.not_applicable(),
        c.na_key_size,
        c.na_nonce_size,
        c.na_tag_size,
    );
    assert_no_failures("aes_gcm_test.json", &failures);

    // Nothing silently skipped: every case was run or shown not applicable ...
    assert_eq!(
        total, file.number_of_tests,
        "cases in groups vs numberOfTests"
    );
    assert_eq!(c.run + c.not_applicable(), file.number_of_tests);
    assert_eq!(
        c.run,
        c.valid_opened + c.invalid_refused + c.acceptable_opened + c.acceptable_refused
    );
    // ... and the split is the one of the vendored snapshot (update with the vectors).
    assert_eq!(
        c,
        AeadCounts {
            run: 66,
            valid_opened: 39,
            invalid_refused: 27,
            acceptable_opened: 0,
            acceptable_refused: 0,
            na_key_size: 211,
            na_nonce_size: 39,
            na_tag_size: 0,
        }
    );
}

// ---------------------------------------------------------------------------------------------
// RSA-OAEP, SHA-256, MGF1-SHA-256
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OaepFile {
    algorithm: String,
    schema: String,
    number_of_tests: usize,
    test_groups: Vec<OaepGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OaepGroup {
    #[serde(rename = "type")]
    kind: String,
    key_size: usize,
    sha: String,
    mgf: String,
    mgf_sha: String,
    private_key_pkcs8: String,
    tests: Vec<OaepCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OaepCase {
    tc_id: u32,
    comment: String,
    msg: String,
    ct: String,
    label: String,
    result: Expect,
}

/// What happened to the cases of one RSA-OAEP file.
#[derive(Debug, Default, PartialEq, Eq)]
struct OaepCounts {
    /// Cases run through Vigil's decrypt: all of them, whatever their label.
    run: usize,
    valid_decrypted: usize,
    invalid_refused: usize,
    acceptable_decrypted: usize,
    acceptable_refused: usize,
    /// Valid cases whose `PublicKey::encrypt` then `decrypt` round trip gave `msg` back.
    round_trips: usize,
    /// Of the cases run, those whose label is not UTF-8 (labels are bytes in RFC 8017).
    label_not_utf8: usize,
    /// Of the valid cases, those refused under another label (the empty one, or the label
    /// with one bit flipped): the label is bound, not ignored.
    other_label_refused: usize,
}

fn run_rsa_oaep_file(name: &str, json: &str, bits: usize, expected: OaepCounts) {
    let file: OaepFile =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    assert_eq!(file.algorithm, "RSAES-OAEP", "{name}: wrong algorithm");
    assert_eq!(
        file.schema, "rsaes_oaep_decrypt_schema_v1.json",
        "{name}: wrong schema"
    );

    let mut c = OaepCounts::default();
    let mut failures = Vec::new();
    let mut total = 0;

    for g in &file.test_groups {
        // Vigil's OAEP is SHA-256 with MGF1-SHA-256 only: make sure that is what the file tests.
        assert_eq!(g.kind, "RsaesOaepDecrypt", "{name}: group type");
        assert_eq!(g.sha, "SHA-256", "{name}: label hash");
        assert_eq!(g.mgf, "MGF1", "{name}: mask generation function");
        assert_eq!(g.mgf_sha, "SHA-256", "{name}: MGF1 hash");
        assert_eq!(g.key_size, bits, "{name}: key size");

        let der = hex::decode(&g.private_key_pkcs8).expect("privateKeyPkcs8 is hex");
        let sk = PrivateKey::from_pkcs8_der(&der)
            .unwrap_or_else(|e| panic!("{name}: Vigil refuses the group's PKCS#8 key: {e}"));
        let pk = sk.public_key();
        assert_eq!(pk.bits(), bits, "{name}: parsed key size");

        for t in &g.tests {
            total += 1;
            let id = t.tc_id;
            let msg = unhex("msg", id, &t.msg);
            let ct = unhex("ct", id, &t.ct);
            let label = unhex("label", id, &t.label);
            let what = format!("{name} tcId {id} ({:?}, {:?})", t.result, t.comment);
            if std::str::from_utf8(&label).is_err() {
                c.label_not_utf8 += 1;
            }

            c.run += 1;
            let decrypted = sk.decrypt(&label, &ct);
            match t.result {
                Expect::Valid => {
                    match &decrypted {
                        Ok(pt) if pt.as_slice() == msg.as_slice() => c.valid_decrypted += 1,
                        Ok(_) => failures.push(format!("{what}: decrypted to the wrong message")),
                        Err(e) => failures.push(format!("{what}: valid ciphertext refused: {e}")),
                    }
                    let mut flipped = label.clone();
                    match flipped.first_mut() {
                        Some(b) => *b ^= 1,
                        None => flipped.push(0),
                    }
                    let other: &[u8] = if label.is_empty() { &flipped } else { &[] };
                    if sk.decrypt(&flipped, &ct).is_ok() || sk.decrypt(other, &ct).is_ok() {
                        failures.push(format!("{what}: decrypts under another label"));
                    } else {
                        c.other_label_refused += 1;
                    }
                    // OAEP encryption is randomised, so check a round trip rather than bytes.
                    match pk.encrypt(&label, &msg) {
                        Ok(ct2) => match sk.decrypt(&label, &ct2) {
                            Ok(pt) if pt.as_slice() == msg.as_slice() => c.round_trips += 1,
                            _ => failures.push(format!("{what}: round trip lost the message")),
                        },
                        Err(e) => failures.push(format!("{what}: encrypt failed: {e}")),
                    }
                }
                // Every refusal must be the same error, whatever went wrong (no padding oracle
                // through the error value).
                Expect::Invalid => match decrypted {
                    Err(RsaError::DecryptFailed) => c.invalid_refused += 1,
                    Err(e) => failures.push(format!("{what}: refused with a distinct error {e:?}")),
                    Ok(_) => failures.push(format!("{what}: invalid ciphertext decrypted")),
                },
                Expect::Acceptable => match decrypted {
                    Ok(_) => c.acceptable_decrypted += 1,
                    Err(_) => c.acceptable_refused += 1,
                },
            }
        }
    }

    println!(
        "{name}: {total} cases: run {} (valid decrypted {}, invalid refused {}, acceptable \
         decrypted/refused {}/{}, round trips {}, labels not UTF-8 {}, refused under \
         another label {})",
        c.run,
        c.valid_decrypted,
        c.invalid_refused,
        c.acceptable_decrypted,
        c.acceptable_refused,
        c.round_trips,
        c.label_not_utf8,
        c.other_label_refused,
    );
    assert_no_failures(name, &failures);

    // Nothing silently skipped.
    assert_eq!(
        total, file.number_of_tests,
        "{name}: cases in groups vs numberOfTests"
    );
    // Every case went through Vigil's own decrypt.
    assert_eq!(c.run, file.number_of_tests, "{name}: accounting");
    assert_eq!(
        c.run,
        c.valid_decrypted + c.invalid_refused + c.acceptable_decrypted + c.acceptable_refused,
        "{name}: accounting of run cases"
    );
    assert_eq!(c.round_trips, c.valid_decrypted, "{name}");
    assert_eq!(c.other_label_refused, c.valid_decrypted, "{name}");
    // And the split is the one of the vendored snapshot (update with the vectors).
    assert_eq!(c, expected, "{name}: case counts");
}

/// The split every vendored RSA-OAEP SHA-256 file has: 37 cases, all run through Vigil's
/// decrypt: 18 valid (5 of them with non-UTF-8 labels, tcId 33..=37) and 19 invalid.
fn oaep_expected_counts() -> OaepCounts {
    OaepCounts {
        run: 37,
        valid_decrypted: 18,
        invalid_refused: 19,
        acceptable_decrypted: 0,
        acceptable_refused: 0,
        round_trips: 18,
        label_not_utf8: 5,
        other_label_refused: 18,
    }
}

#[test]
fn rsa_oaep_2048_sha256_wycheproof_vectors_through_vigil_rsa() {
    run_rsa_oaep_file(
        "rsa_oaep_2048_sha256_mgf1sha256_test.json",
        include_str!("vectors/rsa_oaep_2048_sha256_mgf1sha256_test.json"),
        2048,
        oaep_expected_counts(),
    );
}

#[test]
fn rsa_oaep_3072_sha256_wycheproof_vectors_through_vigil_rsa() {
    run_rsa_oaep_file(
        "rsa_oaep_3072_sha256_mgf1sha256_test.json",
        include_str!("vectors/rsa_oaep_3072_sha256_mgf1sha256_test.json"),
        3072,
        oaep_expected_counts(),
    );
}

#[test]
fn rsa_oaep_4096_sha256_wycheproof_vectors_through_vigil_rsa() {
    run_rsa_oaep_file(
        "rsa_oaep_4096_sha256_mgf1sha256_test.json",
        include_str!("vectors/rsa_oaep_4096_sha256_mgf1sha256_test.json"),
        4096,
        oaep_expected_counts(),
    );
}
