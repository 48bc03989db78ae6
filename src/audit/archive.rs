//! Archiving the audit chain without breaking it.
//!
//! Old entries move, a segment at a time, to gzip-compressed JSON Lines files in an archive
//! folder, listed in its `manifest.json` with their first and last sequence numbers and hashes,
//! entry count and the SHA-256 of the file. Each segment is written and synced before its
//! entries leave the live table; the same transaction that removes them moves the chain's
//! checkpoint (`audit_head.archived_through_seq` / `archived_hash`) to its last entry, so the
//! live chain still verifies from there. A crash between the two leaves a segment whose entries
//! are also live; the next run writes the same segment again (the bytes are deterministic).
//!
//! [`verify_with_archive`] walks the archive from the first entry, checks every segment's
//! checksum and every link, meets the live checkpoint, and then walks the live chain.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::repo::{self, ChainWalker, StoredEntry};
use super::GENESIS_HASH;
use super::{append, AuditAction, AuditError, ChainFault, NewAuditEntry, Verification};
use crate::identity::Actor;
use crate::rbac::{self, Permission};
use crate::store::{Store, StoreError, Timestamp};

/// The manifest's file name in an archive folder.
pub const MANIFEST: &str = "manifest.json";

/// The manifest format this version writes and reads.
const FORMAT: &str = "vigil-audit-archive-v1";

/// An archive folder's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Always `vigil-audit-archive-v1`.
    pub format: String,
    /// Segments in sequence order.
    pub segments: Vec<Segment>,
}

/// One archived segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segment {
    /// File name within the archive folder.
    pub file: String,
    /// First entry's sequence number.
    pub first_seq: i64,
    /// Last entry's sequence number.
    pub last_seq: i64,
    /// The hash the first entry chains from (its `prev_hash`), hex.
    pub prev_hash: String,
    /// First entry's hash, hex.
    pub first_hash: String,
    /// Last entry's hash, hex.
    pub last_hash: String,
    /// Entries in the segment.
    pub entries: u64,
    /// SHA-256 of the compressed file, hex.
    pub sha256: String,
    /// Size of the compressed file.
    pub bytes: u64,
}

/// One archived entry: a line of a segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
    /// Absent in segments written before entries had an outcome.
    #[serde(default = "success", skip_serializing_if = "is_success")]
    outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
}

fn success() -> String {
    "success".into()
}

fn is_success(s: &str) -> bool {
    s == "success"
}

/// What can go wrong archiving.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive folder or a file in it could not be written or read.
    #[error("audit archive {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not one this version can extend.
    #[error("audit archive manifest {path} is unreadable: {reason}")]
    Manifest {
        /// The manifest.
        path: String,
        /// Why.
        reason: String,
    },
    /// The live entries about to be archived do not chain: archiving stops so the break stays
    /// where `vigil audit verify` finds it.
    #[error("the live audit chain is broken at seq {seq} ({fault}); nothing was archived")]
    Broken {
        /// The entry.
        seq: i64,
        /// What is wrong.
        fault: ChainFault,
    },
    /// Another archiver moved the checkpoint while this segment was written.
    #[error("another process archived the same entries; nothing more was archived")]
    Raced,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Live entries written before `before`: how many, and when the oldest was.
pub async fn due(store: &Store, before: Timestamp) -> Result<(u64, Option<Timestamp>), StoreError> {
    let (n, oldest) = repo::count_before(store, before).await?;
    Ok((
        u64::try_from(n).unwrap_or(0),
        oldest.map(Timestamp::from_micros),
    ))
}

/// Archives the next segment: up to `max_entries` live entries after the checkpoint written
/// before `before`, as far as they run without a newer entry between. Returns the segment, or
/// `None` when nothing is due.
pub async fn archive_next(
    store: &Store,
    dir: &Path,
    before: Timestamp,
    max_entries: u32,
) -> Result<Option<Segment>, ArchiveError> {
    let (through, hash) = repo::checkpoint(store).await?;
    let entries =
        repo::entries_before(store, through, before, i64::from(max_entries.max(1))).await?;
    // Only the run that continues the checkpoint without a gap: an entry stamped later than
    // the cutoff stops the segment even if older ones follow it.
    let mut walker = ChainWalker {
        expected: through + 1,
        running: hash,
        checked: 0,
    };
    let mut lines = Vec::with_capacity(entries.len());
    for e in &entries {
        if e.seq != walker.expected {
            break;
        }
        let stored = StoredEntry(
            e.seq,
            e.at.micros(),
            e.actor.as_str().into(),
            e.action.as_str().into(),
            e.target.as_deref().map(Into::into),
            e.details.as_str().into(),
            e.prev_hash.clone(),
            e.hash.clone(),
            e.outcome.as_str().into(),
            e.session_id.as_deref().map(Into::into),
        );
        if let Some((seq, fault)) = walker.check(&stored) {
            return Err(ArchiveError::Broken { seq, fault });
        }
        lines.push(Line {
            seq: e.seq,
            at: e.at.micros(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            details: e.details.clone(),
            prev_hash: hex::encode(&e.prev_hash),
            hash: hex::encode(&e.hash),
            outcome: e.outcome.clone(),
            session_id: e.session_id.clone(),
        });
    }
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Ok(None);
    };
    crate::files::create_private_dir(dir).map_err(io(dir))?;
    let file = format!("audit-{:012}-{:012}.jsonl.gz", first.seq, last.seq);
    let bytes = compress(&lines);
    let path = dir.join(&file);
    write_synced(&path, &bytes)?;
    let segment = Segment {
        file,
        first_seq: first.seq,
        last_seq: last.seq,
        prev_hash: first.prev_hash.clone(),
        first_hash: first.hash.clone(),
        last_hash: last.hash.clone(),
        entries: lines.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
    };
    let mut manifest = read_manifest(dir)?.unwrap_or_else(|| Manifest {
        format: FORMAT.into(),
        segments: Vec::new(),
    });
    // A segment written before a crash is replaced by its rewrite.
    manifest.segments.retain(|s| s.last_seq < segment.first_seq);
    manifest.segments.push(segment.clone());
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    write_synced(&dir.join(MANIFEST), &json)?;

    let last_hash = hex::decode(&segment.last_hash).unwrap_or_default();
    let mut tx = store.begin().await?;
    if !repo::retire(&mut tx, segment.first_seq, segment.last_seq, &last_hash).await? {
        return Err(ArchiveError::Raced);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(segment))
}

/// Gzip of the lines as JSON Lines; no file name or time in the header, so the same entries
/// always give the same bytes.
fn compress(lines: &[Line]) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
    for l in lines {
        serde_json::to_writer(&mut gz, l).expect("an entry serialises");
        gz.write_all(b"\n").expect("writing to memory");
    }
    gz.finish().expect("writing to memory")
}

/// Writes `bytes` to `path` through a temporary file, synced and renamed into place.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    use crate::files;
    files::replace_atomically(path, bytes, files::PRIVATE_FILE)
        .map_err(|e| io(path)(std::io::Error::from(e)))
}

/// The largest manifest read: about 40,000 segments, far beyond any real archive.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The manifest of `dir`, if it has one. The manifest must be a regular file (not a symbolic
/// link or a device) of at most 16 MiB; it is read with that limit.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, ArchiveError> {
    let path = dir.join(MANIFEST);
    let bytes = match read_regular_file(&path, MAX_MANIFEST_BYTES) {
        Ok(b) => b,
        Err(ReadRefusal::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(ReadRefusal::Io(e)) => return Err(io(&path)(e)),
        Err(refusal) => {
            return Err(ArchiveError::Manifest {
                path: path.display().to_string(),
                reason: refusal.to_string(),
            })
        }
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Manifest {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if manifest.format != FORMAT {
        return Err(ArchiveError::Manifest {
            path: path.display().to_string(),
            reason: format!("format {:?} is not {FORMAT}", manifest.format),
        });
    }
    Ok(Some(manifest))
}

/// Why a file of the archive was not read.
#[derive(Debug)]
enum ReadRefusal {
    /// It is not a regular file: a symbolic link, a device, a folder, a pipe or a socket.
    NotRegular(&'static str),
    /// It holds more than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Opening or reading it failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadRefusal::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            ReadRefusal::TooLarge { limit } => {
                write!(f, "it is larger than the {limit} bytes expected")
            }
            ReadRefusal::Io(e) => write!(f, "it cannot be read ({e})"),
        }
    }
}

/// What a file system entry is, in words, unless it is a regular file.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_symlink() {
        return Some("a symbolic link");
    }
    if t.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_block_device() || t.is_char_device() {
            return Some("a device");
        }
        if t.is_fifo() {
            return Some("a named pipe");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

/// Reads `path` only if it is a regular file, and at most `limit` bytes of it. The final
/// component is never followed if it is a symbolic link, and a device or pipe is refused from
/// its metadata before anything is read (opened non-blocking, so a pipe cannot stall the open).
fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadRefusal> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).map_err(ReadRefusal::Io)?;
    if let Some(kind) = not_regular(&meta) {
        return Err(ReadRefusal::NotRegular(kind));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        // Swapped for a symbolic link since the check above.
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ReadRefusal::NotRegular("a symbolic link");
        }
        ReadRefusal::Io(e)
    })?;
    // The file actually opened, not the name checked above.
    let meta = file.metadata().map_err(ReadRefusal::Io)?;
    if let Some(kind) = not_regular(&meta) {
        return Err(ReadRefusal::NotRegular(kind));
    }
    if meta.len() > limit {
        return Err(ReadRefusal::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew since its metadata was read.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadRefusal::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadRefusal::TooLarge { limit });
    }
    Ok(bytes)
}

/// The longest line of a segment that is read: an audit entry is a few KiB at most.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Reads the next line of a decompressed segment into `buf` (without its newline), at most
/// [`MAX_LINE_BYTES`] of it, so a small file that inflates to one huge line is refused rather
/// than held. `Ok(false)` at the end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<bool, String> {
    use std::io::Read;
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', buf)
        .map_err(|e| format!("it is not valid gzip ({e})"))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n as u64 > MAX_LINE_BYTES {
        return Err(format!("a line is longer than {MAX_LINE_BYTES} bytes"));
    }
    Ok(true)
}

/// Why a manifest entry's file name is not a plain name inside the archive folder, if it is not.
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if Path::new(name).is_absolute() || name.starts_with('/') || name.starts_with('\\') {
        Some("it is an absolute path")
    } else if name == "." || name == ".." || name.split(['/', '\\']).any(|part| part == "..") {
        Some("it leads out of the archive folder")
    } else if name.contains(['/', '\\']) {
        Some("it names a path, not a file in the archive folder")
    } else if name.contains(|c: char| c.is_control()) {
        Some("it contains control characters")
    } else if name == MANIFEST {
        Some("it names the manifest itself")
    } else {
        None
    }
}

/// What is wrong with an archive. `Display` gives a sentence; `Serialize` gives the same facts
/// for `--json` and the audit entry of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArchiveFault {
    /// The folder has no manifest, or it cannot be read.
    NoManifest {
        /// Why.
        reason: String,
    },
    /// A segment file is missing or unreadable.
    Unreadable {
        /// Why.
        reason: String,
    },
    /// The manifest names a segment by something other than a plain file name in the archive
    /// folder (`../x`, `/dev/zero`, `sub/x`): nothing is read.
    UnsafeName {
        /// Why the name is refused.
        reason: String,
    },
    /// The segment is not a regular file (a symbolic link, a device, a folder...): nothing is
    /// read.
    NotARegularFile {
        /// What it is.
        what: String,
    },
    /// The segment holds more bytes than the manifest says: reading stopped there.
    LargerThanManifest {
        /// The size the manifest gives.
        manifest_bytes: u64,
    },
    /// A segment's bytes do not match the checksum in the manifest: it was changed.
    Checksum,
    /// A segment's entries do not match what the manifest says of them.
    ManifestMismatch,
    /// An entry does not chain (see the fault).
    Chain {
        /// The chain fault.
        fault: ChainFault,
    },
    /// The archive ends before the live chain's checkpoint: entries are missing between them.
    EndsBeforeCheckpoint {
        /// The archive's last sequence number.
        archive_last: i64,
        /// Where the live chain's checkpoint is.
        checkpoint: i64,
    },
    /// The archived entry at the checkpoint does not have the hash the live chain starts from.
    CheckpointMismatch,
}

impl std::fmt::Display for ArchiveFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveFault::NoManifest { reason } => {
                write!(f, "the archive's manifest cannot be used: {reason}")
            }
            ArchiveFault::Unreadable { reason } => write!(f, "it cannot be read: {reason}"),
            ArchiveFault::UnsafeName { reason } => write!(
                f,
                "the manifest's file name was refused, so nothing was read: {reason}"
            ),
            ArchiveFault::NotARegularFile { what } => {
                write!(f, "it is {what}, not a regular file, so nothing was read")
            }
            ArchiveFault::LargerThanManifest { manifest_bytes } => write!(
                f,
                "it is larger than the {manifest_bytes} bytes the manifest gives, so it was not \
                 read past them"
            ),
            ArchiveFault::Checksum => write!(
                f,
                "its bytes do not match the SHA-256 in the manifest: it was changed"
            ),
            ArchiveFault::ManifestMismatch => write!(
                f,
                "its entries (first and last sequence numbers, hashes or count) do not match \
                 what the manifest says of them"
            ),
            ArchiveFault::Chain { fault } => write!(f, "an entry does not chain: {fault}"),
            ArchiveFault::EndsBeforeCheckpoint {
                archive_last,
                checkpoint,
            } => write!(
                f,
                "the archive ends at entry {archive_last} but the live chain starts after \
                 entry {checkpoint}: the entries between are missing"
            ),
            ArchiveFault::CheckpointMismatch => write!(
                f,
                "the archived entry at the live chain's checkpoint does not have the hash the \
                 live chain starts from"
            ),
        }
    }
}

/// The outcome of walking an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ArchiveResult {
    /// Every segment is intact, every entry chains, and the archive meets the live checkpoint.
    Ok {
        /// Segments checked.
        segments: u64,
        /// Entries checked.
        entries: u64,
        /// The archive's last sequence number.
        last_seq: i64,
    },
    /// The first fault.
    Broken {
        /// The segment it is in, if any.
        file: Option<String>,
        /// The entry, if one is named.
        seq: Option<i64>,
        /// What is wrong.
        fault: ArchiveFault,
        /// Entries that checked out before it.
        entries_ok: u64,
    },
}

impl std::fmt::Display for ArchiveResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveResult::Ok {
                segments, entries, ..
            } => write!(f, "archive ok: {entries} entries in {segments} segments"),
            ArchiveResult::Broken {
                file, seq, fault, ..
            } => {
                // The name comes from the manifest, which may be hostile: quoted and escaped.
                match (file, seq) {
                    (Some(file), Some(seq)) => {
                        write!(f, "archive segment {file:?}, entry {seq}: {fault}")
                    }
                    (Some(file), None) => write!(f, "archive segment {file:?}: {fault}"),
                    (None, Some(seq)) => write!(f, "archive, entry {seq}: {fault}"),
                    (None, None) => write!(f, "archive: {fault}"),
                }
            }
        }
    }
}

/// The archive and the live chain, end to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FullVerification {
    /// The archived part.
    pub archive: ArchiveResult,
    /// The live part, from the checkpoint.
    pub live: Verification,
}

impl FullVerification {
    /// Both parts verified.
    pub fn is_ok(&self) -> bool {
        matches!(self.archive, ArchiveResult::Ok { .. })
            && matches!(self.live, Verification::Ok { .. })
    }
}

/// Verifies the archive in `dir` and the live chain after it, and records the check as an
/// audit entry. Needs [`Permission::AuditVerify`].
pub async fn verify_with_archive(
    store: &Store,
    actor: &Actor,
    dir: &Path,
) -> Result<FullVerification, AuditError> {
    let _permit = rbac::require(store, actor, Permission::AuditVerify).await?;
    let (checkpoint, checkpoint_hash) = repo::checkpoint(store).await?;
    let dir_owned = dir.to_owned();
    let archive =
        tokio::task::spawn_blocking(move || walk_archive(&dir_owned, checkpoint, &checkpoint_hash))
            .await
            .expect("archive walk panicked");
    let live = repo::verify(store).await?;
    let result = FullVerification { archive, live };
    let mut tx = store.begin().await?;
    append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::AuditVerified).details(serde_json::json!({
            "archive": serde_json::to_value(&result.archive).unwrap_or_default(),
            "live": serde_json::to_value(&result.live).unwrap_or_default(),
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(result)
}

/// Walks every segment from the first entry; the archive must reach the live checkpoint
/// `checkpoint` with hash `checkpoint_hash`.
pub fn walk_archive(dir: &Path, checkpoint: i64, checkpoint_hash: &[u8]) -> ArchiveResult {
    let broken = |file: Option<&str>, seq, fault, entries_ok| ArchiveResult::Broken {
        file: file.map(Into::into),
        seq,
        fault,
        entries_ok,
    };
    let manifest = match read_manifest(dir) {
        Ok(Some(m)) => m,
        Ok(None) if checkpoint == 0 => {
            return ArchiveResult::Ok {
                segments: 0,
                entries: 0,
                last_seq: 0,
            }
        }
        Ok(None) => {
            let reason = format!("no {MANIFEST} in {}", dir.display());
            return broken(None, None, ArchiveFault::NoManifest { reason }, 0);
        }
        Err(e) => {
            let reason = e.to_string();
            return broken(None, None, ArchiveFault::NoManifest { reason }, 0);
        }
    };
    let mut walker = ChainWalker {
        expected: 1,
        running: GENESIS_HASH.to_vec(),
        checked: 0,
    };
    let mut at_checkpoint: Option<Vec<u8>> = (checkpoint == 0).then(|| GENESIS_HASH.to_vec());
    let mut segments = 0u64;
    for seg in &manifest.segments {
        let name = Some(seg.file.as_str());
        if let Some(reason) = unsafe_name(&seg.file) {
            let fault = ArchiveFault::UnsafeName {
                reason: reason.into(),
            };
            return broken(name, None, fault, walker.checked);
        }
        let path = dir.join(&seg.file);
        let bytes = match read_regular_file(&path, seg.bytes) {
            Ok(b) => b,
            Err(refusal) => {
                let fault = match refusal {
                    ReadRefusal::NotRegular(what) => {
                        ArchiveFault::NotARegularFile { what: what.into() }
                    }
                    ReadRefusal::TooLarge { limit } => ArchiveFault::LargerThanManifest {
                        manifest_bytes: limit,
                    },
                    ReadRefusal::Io(e) => ArchiveFault::Unreadable {
                        reason: e.to_string(),
                    },
                };
                return broken(name, None, fault, walker.checked);
            }
        };
        if hex::encode(Sha256::digest(&bytes)) != seg.sha256 {
            return broken(name, None, ArchiveFault::Checksum, walker.checked);
        }
        let mut reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut count = 0u64;
        let mut first_last: Option<(i64, String, String)> = None;
        let mut buf = Vec::new();
        loop {
            let parsed = match read_line(&mut reader, &mut buf) {
                Ok(false) => break,
                Ok(true) => serde_json::from_slice::<Line>(&buf)
                    .map_err(|e| format!("an entry is not a valid audit entry ({e})")),
                Err(reason) => Err(reason),
            };
            let l = match parsed {
                Ok(l) => l,
                Err(reason) => {
                    return broken(
                        name,
                        None,
                        ArchiveFault::Unreadable { reason },
                        walker.checked,
                    )
                }
            };
            let entry = StoredEntry(
                l.seq,
                l.at,
                l.actor.as_str().into(),
                l.action.as_str().into(),
                l.target.as_deref().map(Into::into),
                l.details.as_str().into(),
                hex::decode(&l.prev_hash).unwrap_or_default(),
                hex::decode(&l.hash).unwrap_or_default(),
                l.outcome.as_str().into(),
                l.session_id.as_deref().map(Into::into),
            );
            if let Some((seq, fault)) = walker.check(&entry) {
                return broken(
                    name,
                    Some(seq),
                    ArchiveFault::Chain { fault },
                    walker.checked,
                );
            }
            if l.seq == checkpoint {
                at_checkpoint = Some(walker.running.clone());
            }
            count += 1;
            first_last = Some(match first_last {
                None => (l.seq, l.hash.clone(), l.hash),
                Some((s, f, _)) => (s, f, l.hash),
            });
        }
        let matches = first_last
            .as_ref()
            .is_some_and(|(first, first_hash, last_hash)| {
                *first == seg.first_seq
                    && walker.expected - 1 == seg.last_seq
                    && *first_hash == seg.first_hash
                    && *last_hash == seg.last_hash
                    && count == seg.entries
            });
        if !matches {
            return broken(name, None, ArchiveFault::ManifestMismatch, walker.checked);
        }
        segments += 1;
    }
    let last_seq = walker.expected - 1;
    match at_checkpoint {
        None => broken(
            None,
            None,
            ArchiveFault::EndsBeforeCheckpoint {
                archive_last: last_seq,
                checkpoint,
            },
            walker.checked,
        ),
        Some(h) if h != checkpoint_hash => broken(
            None,
            Some(checkpoint),
            ArchiveFault::CheckpointMismatch,
            walker.checked,
        ),
        Some(_) => ArchiveResult::Ok {
            segments,
            entries: walker.checked,
            last_seq,
        },
    }
}
