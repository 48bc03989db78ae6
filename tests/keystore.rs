//! The keystores: owner-only files, and the real OS keychain (Secret Service on Linux).

use std::os::unix::fs::PermissionsExt;

use vigil::keys::keystore::{
    FileKeystore, Keystore, KeystoreChoice, KeystoreError, OsKeychain, SecretName,
};

fn exercise(ks: &dyn Keystore) {
    let op = uuid::Uuid::new_v4();
    let name = SecretName::parse("private-key").unwrap();
    let other = SecretName::parse("refresh-token").unwrap();
    assert!(ks.get(op, &name).unwrap().is_none());
    ks.put(op, &name, b"first secret").unwrap();
    ks.put(op, &name, b"second secret").unwrap();
    assert_eq!(
        ks.get(op, &name).unwrap().unwrap().expose(),
        b"second secret"
    );
    // Names and operators do not collide.
    assert!(ks.get(op, &other).unwrap().is_none());
    assert!(ks.get(uuid::Uuid::new_v4(), &name).unwrap().is_none());
    // Binary secrets survive unchanged.
    let binary: Vec<u8> = (0..=255u8).collect();
    ks.put(op, &other, &binary).unwrap();
    assert_eq!(ks.get(op, &other).unwrap().unwrap().expose(), &binary[..]);
    assert!(ks.delete(op, &name).unwrap());
    assert!(ks.delete(op, &other).unwrap());
    assert!(!ks.delete(op, &name).unwrap());
    assert!(ks.get(op, &name).unwrap().is_none());
}

#[test]
fn file_keystore_round_trips_with_owner_only_files() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    let ks = FileKeystore::open(&dir).unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    exercise(&ks);
    let op = uuid::Uuid::new_v4();
    ks.put(op, &SecretName::parse("k").unwrap(), b"x").unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn file_keystore_refuses_a_folder_others_can_read() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    std::fs::create_dir(&dir).unwrap();
    for mode in [0o755, 0o750, 0o704, 0o701] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        match FileKeystore::open(&dir) {
            Err(KeystoreError::InsecurePermissions { mode: m, .. }) => assert_eq!(m, mode),
            Err(e) => panic!("{mode:o}: {e}"),
            Ok(_) => panic!("{mode:o}: a folder others can access was accepted"),
        }
    }
    // And one that becomes readable after opening is refused on use.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ks = FileKeystore::open(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = ks
        .put(uuid::Uuid::new_v4(), &SecretName::parse("k").unwrap(), b"x")
        .unwrap_err();
    assert!(err.to_string().contains("chmod 700"), "{err}");
}

#[test]
fn choosing_the_file_keystore_by_setting() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ks");
    let choice = KeystoreChoice::parse(&format!("file:{}", dir.display())).unwrap();
    let ks = choice.open().unwrap();
    assert!(ks.describe().contains("file keystore"));
    exercise(ks.as_ref());
}

/// Runs against the real Secret Service of the session bus (the test script starts a private
/// D-Bus session with an unlocked GNOME Keyring). Entries use fresh UUIDs and are deleted.
#[test]
fn os_keychain_round_trips_through_the_secret_service() {
    let ks = OsKeychain::open().unwrap_or_else(|e| {
        panic!("{e}\n(run the tests through scripts/test, which provides a Secret Service)")
    });
    exercise(&ks);
}
