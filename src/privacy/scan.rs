//! The residual-PII scan: looks for a subject's identifiers (username, display name, email,
//! phone) in every text and byte column of every table, opening sealed columns to compare and
//! comparing blind indexes, and on SQLite in the database file's own bytes after a checkpoint.
//!
//! Matching: email and phone anywhere, case-insensitively; username and display name as whole
//! words (a username is not found inside a longer one). A display name or phone number equal to
//! *another* account's own is that person's record, not the subject's: it is reported as
//! `shared`, and does not fail the scan. The file scan looks for the username and email only,
//! the identifiers that are unique to the subject.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{repo, PrivacyError};
use crate::crypto::field::{self, Place};
use crate::crypto::mac::{self, BlindKind};
use crate::crypto::SymmetricKey;
use crate::keys::rotation::{specs, SpecKind};
use crate::keys::{KeyRing, Purpose};
use crate::store::Store;

/// What identifies a subject. Never logged: `Debug` shows only which are present.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Identifiers {
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
}

impl std::fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identifiers")
            .field("email", &self.email.is_some())
            .field("phone", &self.phone.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Username,
    DisplayName,
    Email,
    Phone,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Username => "username",
            Kind::DisplayName => "display_name",
            Kind::Email => "email",
            Kind::Phone => "phone",
        }
    }

    /// Whole-word matching, so `anna.smith1` is not found in `anna.smith12`.
    fn whole_word(self) -> bool {
        matches!(self, Kind::Username | Kind::DisplayName)
    }
}

/// Where an identifier was found, and in how many rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanHit {
    /// `table.column`, or `file:<name>` for the SQLite file's bytes.
    pub place: String,
    /// Which identifier: `username`, `display_name`, `email` or `phone`.
    pub identifier: String,
    /// Rows (or, in a file, occurrences).
    pub count: u64,
}

/// What a scan looked at and found. Never holds the identifiers themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanReport {
    /// Tables scanned.
    pub tables: u64,
    /// Text and byte columns scanned.
    pub columns: u64,
    /// Sealed values opened to compare.
    pub values_opened: u64,
    /// Bytes of the SQLite database file (and its log) scanned, if SQLite.
    pub file_bytes: Option<u64>,
    /// The identifiers searched for.
    pub identifiers: Vec<String>,
    /// The subject's identifiers found: any hit fails the erasure.
    pub hits: Vec<ScanHit>,
    /// Display names or phone numbers found as another account's own (not the subject's).
    pub shared: Vec<ScanHit>,
}

impl ScanReport {
    /// Nothing of the subject was found.
    pub fn is_clean(&self) -> bool {
        self.hits.is_empty()
    }
}

/// The identifiers of account `user`, with its sealed fields opened.
pub(super) async fn identifiers(
    store: &Store,
    ring: &KeyRing,
    user: uuid::Uuid,
) -> Result<Option<Identifiers>, PrivacyError> {
    let id = user.to_string();
    let Some(p) = repo::profile(store, &id).await? else {
        return Ok(None);
    };
    Ok(Some(Identifiers {
        email: open_user_field(store, ring, &id, "email_enc", p.email_enc.as_deref())
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        phone: open_user_field(store, ring, &id, "phone_enc", p.phone_enc.as_deref())
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        username: p.username.clone(),
        display_name: p.display_name.clone(),
    }))
}

/// Opens a sealed personal field of account `user`, if it is set.
pub(super) async fn open_user_field(
    store: &Store,
    ring: &KeyRing,
    user: &str,
    col: &str,
    sealed: Option<&[u8]>,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, PrivacyError> {
    match sealed {
        None => Ok(None),
        Some(s) => Ok(Some(
            ring.open_field(store, Purpose::Contact, &Place::new("users", col, user), s)
                .await?,
        )),
    }
}

/// Columns never scanned as such: ids (UUIDs the core writes), and the request's own sealed
/// working copy of the identifiers, wiped when the erasure completes.
fn skipped(table: &str, column: &str) -> bool {
    column == "id"
        || column.ends_with("_id")
        || (table == "dsr_requests" && column == "subject_sealed")
}

/// Scans the database for `ids`. `subject` (if the account still exists) is the subject's own
/// row, whose shared-looking values are not counted as shared.
pub(super) async fn scan(
    store: &Store,
    ring: &KeyRing,
    ids: &Identifiers,
    subject: Option<uuid::Uuid>,
) -> Result<ScanReport, PrivacyError> {
    let mut needles: Vec<(Kind, String)> = vec![
        (Kind::Username, ids.username.to_lowercase()),
        (Kind::DisplayName, ids.display_name.to_lowercase()),
    ];
    if let Some(e) = &ids.email {
        needles.push((Kind::Email, e.trim().to_lowercase()));
    }
    if let Some(p) = &ids.phone {
        needles.push((Kind::Phone, p.trim().to_lowercase()));
    }
    needles.retain(|(_, n)| n.chars().count() >= 3);
    let mut report = ScanReport {
        identifiers: needles.iter().map(|(k, _)| k.as_str().to_owned()).collect(),
        ..ScanReport::default()
    };
    let mut hits: BTreeMap<(String, Kind), u64> = BTreeMap::new();
    let mut shared: BTreeMap<(String, Kind), u64> = BTreeMap::new();

    // Sealed columns are opened and compared below; their raw bytes are not scanned.
    let mut sealed_cols: HashSet<(&str, &str)> = HashSet::new();
    for s in SEALED_PURPOSES.iter().flat_map(|p| specs(*p)) {
        if let SpecKind::Sealed(cols) = &s.kind {
            for c in *cols {
                sealed_cols.insert((s.table, c));
            }
        }
    }

    // 1. Every text and byte column, one pass per table.
    let mut by_table: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (table, column, bytes) in repo::scannable_columns(store).await? {
        if skipped(&table, &column) || sealed_cols.contains(&(table.as_str(), column.as_str())) {
            continue;
        }
        let entry = by_table.entry(table).or_default();
        if bytes {
            entry.1.push(column);
        } else {
            entry.0.push(column);
        }
    }
    let patterns: Vec<String> = needles
        .iter()
        .map(|(_, n)| format!("%{}%", like_escape(n)))
        .collect();
    let mut byte_needles: Vec<Vec<u8>> = Vec::new();
    for (_, n) in &needles {
        byte_needles.push(n.as_bytes().to_vec());
    }
    for original in [
        Some(&ids.username),
        Some(&ids.display_name),
        ids.email.as_ref(),
        ids.phone.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let b = original.trim().as_bytes().to_vec();
        if b.len() >= 3 && !byte_needles.contains(&b) {
            byte_needles.push(b);
        }
    }
    // The tables are scanned a few at a time, on their own connections, while the sealed
    // columns are opened.
    // (The futures are made first, so the stream holds concrete ones and stays `Send`.)
    let scans: Vec<_> = by_table
        .iter()
        .map(|(table, (text_cols, byte_cols))| {
            scan_one(store, table, text_cols, byte_cols, &patterns, &byte_needles)
        })
        .collect();
    let tables = futures_util::stream::iter(scans)
        .buffer_unordered(3)
        .try_collect::<Vec<_>>();
    let (tables, sealed) = tokio::join!(tables, open_sealed(store, ring, &needles, subject));
    for (table, text_cols, byte_cols, rows) in tables? {
        report.tables += 1;
        report.columns += (text_cols.len() + byte_cols.len()) as u64;
        for (texts, byte_flags) in rows {
            for (col, value) in text_cols.iter().zip(&texts) {
                let Some(v) = value else { continue };
                let lower = v.to_lowercase();
                for (kind, needle) in &needles {
                    if !contains(&lower, needle, kind.whole_word()) {
                        continue;
                    }
                    let place = format!("{table}.{col}");
                    // Another account's own display name is that person's, not the subject's.
                    let is_shared = table == "users"
                        && col == "display_name"
                        && *kind == Kind::DisplayName
                        && lower.trim() == needle.as_str();
                    let bucket = if is_shared { &mut shared } else { &mut hits };
                    *bucket.entry((place, *kind)).or_default() += 1;
                }
            }
            for (col, hit) in byte_cols.iter().zip(&byte_flags) {
                if *hit {
                    // Raw bytes do not say which identifier matched; report the first kind.
                    *hits
                        .entry((format!("{table}.{col}"), Kind::Username))
                        .or_default() += 1;
                }
            }
        }
    }
    let sealed = sealed?;
    report.columns += sealed.columns;
    report.values_opened += sealed.opened;
    for (key, c) in sealed.hits {
        *hits.entry(key).or_default() += c;
    }
    for (key, c) in sealed.shared {
        *shared.entry(key).or_default() += c;
    }

    // 3. Blind indexes of the email, under every live version of the key.
    if let Some(email) = &ids.email {
        let mut candidates = Vec::new();
        for v in crate::keys::live_versions(store, Purpose::BlindIndex).await? {
            let key = ring.key(store, Purpose::BlindIndex, v).await?;
            candidates.push(mac::blind_index(&key, BlindKind::Email, email).to_vec());
        }
        for (table, col) in [
            ("users", "email_bidx"),
            ("dsr_requests", "subject_email_bidx"),
        ] {
            report.columns += 1;
            let n = repo::count_equal(store, table, col, &candidates).await?;
            if n > 0 {
                *hits
                    .entry((format!("{table}.{col}"), Kind::Email))
                    .or_default() += n as u64;
            }
        }
    }

    // 4. The SQLite file itself, once the log is checkpointed into it.
    if let Some(path) = store.url().sqlite_path().map(std::path::Path::to_path_buf) {
        store.checkpoint().await?;
        let mut file_needles = vec![(Kind::Username, ids.username.to_lowercase())];
        if let Some(e) = &ids.email {
            file_needles.push((Kind::Email, e.trim().to_lowercase()));
        }
        let mut bytes = 0;
        let wal = path.with_file_name(format!(
            "{}-wal",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("vigil.db")
        ));
        for p in [path.clone(), wal] {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(file) = std::fs::File::open(&p) else {
                continue;
            };
            let (n, found) = tokio::task::spawn_blocking({
                let needles = file_needles.clone();
                move || scan_file(file, &needles)
            })
            .await
            .map_err(|e| PrivacyError::Io(e.to_string()))?
            .map_err(|e| PrivacyError::Io(e.to_string()))?;
            bytes += n;
            for (kind, count) in found {
                if count > 0 {
                    *hits.entry((format!("file:{name}"), kind)).or_default() += count;
                }
            }
        }
        report.file_bytes = Some(bytes);
    }

    let list = |m: BTreeMap<(String, Kind), u64>| {
        m.into_iter()
            .map(|((place, kind), count)| ScanHit {
                place,
                identifier: kind.as_str().to_owned(),
                count,
            })
            .collect()
    };
    report.hits = list(hits);
    report.shared = list(shared);
    Ok(report)
}

/// A table's name, its text and byte columns, and its candidate rows.
type TableRows = (
    String,
    Vec<String>,
    Vec<String>,
    Vec<(Vec<Option<String>>, Vec<bool>)>,
);

async fn scan_one(
    store: &Store,
    table: &str,
    text_cols: &[String],
    byte_cols: &[String],
    patterns: &[String],
    needles: &[Vec<u8>],
) -> Result<TableRows, PrivacyError> {
    let rows = repo::scan_table(store, table, text_cols, byte_cols, patterns, needles).await?;
    Ok((
        table.to_owned(),
        text_cols.to_vec(),
        byte_cols.to_vec(),
        rows,
    ))
}

/// What opening the sealed columns found.
#[derive(Default)]
struct Sealed {
    columns: u64,
    opened: u64,
    hits: BTreeMap<(String, Kind), u64>,
    shared: BTreeMap<(String, Kind), u64>,
}

/// The purposes whose sealed columns hold a person's identifiers.
const SEALED_PURPOSES: [Purpose; 2] = [Purpose::Contact, Purpose::Network];

/// Opens every sealed `contact` and `network` column (rows an older version sealed under `pii`
/// included) with every live version of the keys and compares.
async fn open_sealed(
    store: &Store,
    ring: &KeyRing,
    needles: &[(Kind, String)],
    subject: Option<uuid::Uuid>,
) -> Result<Sealed, PrivacyError> {
    let mut out = Sealed::default();
    let own = subject.map(|s| s.to_string());
    for purpose in SEALED_PURPOSES {
        let mut keys: HashMap<u32, Arc<SymmetricKey>> = HashMap::new();
        for v in crate::keys::live_versions(store, purpose).await? {
            keys.insert(v.0, ring.key(store, purpose, v).await?);
        }
        open_sealed_of(store, &keys, purpose, needles, own.as_deref(), &mut out).await?;
    }
    Ok(out)
}

async fn open_sealed_of(
    store: &Store,
    keys: &HashMap<u32, Arc<SymmetricKey>>,
    purpose: Purpose,
    needles: &[(Kind, String)],
    own: Option<&str>,
    out: &mut Sealed,
) -> Result<(), PrivacyError> {
    // An incident keeps the address it came from, for the security record; the request's
    // working copy is the erasure's own, wiped when it completes.
    for spec in specs(purpose)
        .iter()
        .filter(|s| s.table != "incidents" && s.table != "dsr_requests")
    {
        let SpecKind::Sealed(cols) = &spec.kind else {
            continue;
        };
        for col in *cols {
            out.columns += 1;
            let mut local: BTreeMap<(String, Kind, bool), u64> = BTreeMap::new();
            let mut unreadable = 0u64;
            let n = repo::for_each_sealed(store, spec.table, spec.id_col, col, |row, sealed| {
                let Ok(version) = field::key_version(&sealed) else {
                    unreadable += 1;
                    return;
                };
                let Some(key) = keys.get(&version.0) else {
                    unreadable += 1;
                    return;
                };
                let Ok(plain) = field::open(key, &Place::new(spec.table, col, &row), &sealed)
                else {
                    unreadable += 1;
                    return;
                };
                let lower = String::from_utf8_lossy(&plain).to_lowercase();
                for (kind, needle) in needles {
                    if contains(&lower, needle, kind.whole_word()) {
                        let is_shared = spec.table == "users"
                            && *kind == Kind::Phone
                            && own != Some(row.as_str());
                        local
                            .entry((format!("{}.{col}", spec.table), *kind, is_shared))
                            .and_modify(|c| *c += 1)
                            .or_insert(1);
                    }
                }
            })
            .await?;
            out.opened += n - unreadable;
            if unreadable > 0 {
                // A value that cannot be opened cannot be shown clean.
                *out.hits
                    .entry((format!("{}.{col} (unreadable)", spec.table), Kind::Email))
                    .or_default() += unreadable;
            }
            for ((place, kind, is_shared), c) in local {
                let bucket = if is_shared {
                    &mut out.shared
                } else {
                    &mut out.hits
                };
                *bucket.entry((place, kind)).or_default() += c;
            }
        }
    }
    Ok(())
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `needle` occurs in `hay` (both lower case); as a whole word if `whole_word`.
fn contains(hay: &str, needle: &str, whole_word: bool) -> bool {
    if !whole_word {
        return hay.contains(needle);
    }
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return true;
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Counts the needles in a file's bytes, ASCII case-insensitively, in chunks. A match counts
/// unless the byte after it continues a username (`[a-z0-9._-]`), so a username is not found
/// inside a longer one.
fn scan_file(
    mut file: std::fs::File,
    needles: &[(Kind, String)],
) -> std::io::Result<(u64, Vec<(Kind, u64)>)> {
    const CHUNK: usize = 8 << 20;
    let keep = needles.iter().map(|(_, n)| n.len()).max().unwrap_or(0) + 1;
    let finders: Vec<_> = needles
        .iter()
        .map(|(k, n)| (*k, memchr::memmem::Finder::new(n.as_bytes()).into_owned()))
        .collect();
    let mut counts = vec![0u64; needles.len()];
    let mut hay: Vec<u8> = Vec::with_capacity(CHUNK + keep);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        let eof = n == 0;
        total += n as u64;
        let start_new = hay.len();
        hay.extend_from_slice(&buf[..n]);
        hay[start_new..].make_ascii_lowercase();
        let limit = if eof {
            hay.len()
        } else {
            hay.len().saturating_sub(keep)
        };
        for (i, (_, finder)) in finders.iter().enumerate() {
            let len = finder.needle().len();
            for p in finder.find_iter(&hay) {
                if p >= limit {
                    break;
                }
                let continues = hay
                    .get(p + len)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
                if !continues {
                    counts[i] += 1;
                }
            }
        }
        if eof {
            break;
        }
        hay.drain(..limit);
    }
    Ok((total, finders.iter().map(|(k, _)| *k).zip(counts).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only_for_names() {
        assert!(contains("thanks anna.smith12!", "anna.smith12", true));
        assert!(!contains("joanna.smith12 said", "anna.smith12", true));
        assert!(!contains("anna.smith123", "anna.smith12", true));
        assert!(contains("mail me at a@b.example now", "a@b.example", false));
        assert!(contains("anna smith", "anna smith", true));
        assert!(!contains("hannah anna smithson", "anna smith", true));
    }

    #[test]
    fn file_scan_counts_across_chunk_edges_and_skips_longer_usernames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut data = vec![b'x'; (8 << 20) - 3];
        data.extend_from_slice(b"ANNA.SMITH12\x00 anna.smith123 anna.smith12");
        std::fs::write(&path, &data).unwrap();
        let (n, found) = scan_file(
            std::fs::File::open(&path).unwrap(),
            &[(Kind::Username, "anna.smith12".into())],
        )
        .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(found, vec![(Kind::Username, 2)]);
    }
}
