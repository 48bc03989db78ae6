//! Access (Art. 15) and portability (Art. 20) exports, and rectification (Art. 16).
//!
//! An export holds everything Vigil keeps about the subject, with sealed fields opened for
//! them: profile, roles, MFA state (never the secret), comments, private comments addressed to
//! them (as the end-to-end envelopes only their own key opens; Vigil cannot read them), reactions,
//! activity and sessions with IP addresses anonymised, restrictions, and the requests and
//! incidents about them without other people's data. Files are written beside each other in
//! the folder the officer chose, never over an existing file, readable by the owner only; the
//! audit chain records their SHA-256 digests, never their content.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::scan::open_user_field;
use super::{repo, Correction, Flow, PrivacyError, RequestId, RequestKind, RunProgress};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::crypto::mac::BlindKind;
use crate::crypto::Place;
use crate::identity::Actor;
use crate::keys::{KeyError, KeyRing, Purpose, WriteKeys};
use crate::store::{Store, Timestamp};

/// A file an export wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportedFile {
    /// `access_json`, `access_html` or `portability_zip`.
    pub kind: String,
    /// Where it was written.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

#[derive(Serialize, Default)]
struct Profile {
    id: String,
    username: String,
    display_name: String,
    email: Option<String>,
    phone: Option<String>,
    country: Option<String>,
    account_kind: String,
    status: String,
    created_at: String,
    last_login_at: Option<String>,
}

#[derive(Serialize)]
struct Mfa {
    enabled: bool,
    confirmed_at: Option<String>,
    backup_codes_left: i64,
}

#[derive(Serialize, Default)]
struct Comment {
    id: String,
    event_id: String,
    event_title: String,
    parent_id: Option<String>,
    private: bool,
    text: Option<String>,
    /// A private comment's end-to-end envelope (base64): only the subject's own key opens it.
    envelope: Option<String>,
    created_at: String,
    edited_at: Option<String>,
    deleted_at: Option<String>,
    deletion_reason: Option<String>,
}

#[derive(Serialize, Default)]
struct Received {
    comment_id: String,
    event_id: String,
    created_at: String,
    envelope: Option<String>,
    sealed_to_key: String,
}

#[derive(Serialize, Default)]
struct Reaction {
    id: String,
    comment_id: String,
    kind: String,
    created_at: String,
}

#[derive(Serialize, Default)]
struct Activity {
    id: String,
    kind: String,
    outcome: String,
    reason: Option<String>,
    occurred_at: String,
    ip_anonymised: Option<String>,
    user_agent: Option<String>,
    country: Option<String>,
}

#[derive(Serialize, Default)]
struct SessionOut {
    id: String,
    client: String,
    user_agent: Option<String>,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    revoked_reason: Option<String>,
}

#[derive(Serialize)]
struct About {
    id: String,
    kind: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    created_at: String,
    closed_at: Option<String>,
}

#[derive(Serialize)]
struct SubjectData {
    format: &'static str,
    request_id: String,
    generated_at: String,
    profile: Profile,
    roles: Vec<String>,
    mfa: Mfa,
    comments: Vec<Comment>,
    private_comments_received: Vec<Received>,
    reactions: Vec<Reaction>,
    activity: Vec<Activity>,
    sessions: Vec<SessionOut>,
    restrictions: Vec<About>,
    requests: Vec<About>,
    incidents: Vec<About>,
    notes: Vec<&'static str>,
}

const NOTES: &[&str] = &[
    "IP addresses are anonymised: the last octet of IPv4 and the last 80 bits of IPv6 are zeroed.",
    "Private comments are end-to-end encrypted for their recipients. Vigil cannot read them; \
     the envelopes are included so your own key can open them.",
    "Times are UTC (RFC 3339).",
];

fn t(micros: i64) -> String {
    Timestamp::from_micros(micros).to_rfc3339()
}

fn ot(micros: Option<i64>) -> Option<String> {
    micros.map(t)
}

fn b64(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref()
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

/// Zeroes the host part: the last octet of IPv4, the last 80 bits of IPv6.
pub(crate) fn anonymise_ip(ip: &str) -> Option<String> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(std::net::Ipv4Addr::new(a, b, c, 0).to_string())
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[6..].fill(0);
            Some(std::net::Ipv6Addr::from(o).to_string())
        }
    }
}

async fn collect(
    store: &Store,
    ring: &KeyRing,
    request: RequestId,
    subject: uuid::Uuid,
    now: Timestamp,
) -> Result<SubjectData, PrivacyError> {
    let id = subject.to_string();
    let p = repo::profile(store, &id)
        .await?
        .ok_or(PrivacyError::SubjectNotFound)?;
    let profile = Profile {
        id: id.clone(),
        email: open_user_field(store, ring, &id, "email_enc", p.email_enc.as_deref())
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        phone: open_user_field(store, ring, &id, "phone_enc", p.phone_enc.as_deref())
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        username: p.username,
        display_name: p.display_name,
        country: p.country,
        account_kind: p.kind,
        status: p.status,
        created_at: t(p.created_at),
        last_login_at: ot(p.last_login_at),
    };
    let (confirmed, codes_left) = repo::mfa_state(store, &id).await?;
    let comments = repo::comments_by(store, &id)
        .await?
        .into_iter()
        .map(|c| Comment {
            id: c.id,
            event_id: c.event_id,
            event_title: c.event_title,
            parent_id: c.parent_id,
            private: c.is_private,
            text: c.body,
            envelope: b64(&c.envelope),
            created_at: t(c.created_at),
            edited_at: ot(c.edited_at),
            deleted_at: ot(c.deleted_at),
            deletion_reason: c.deletion_reason,
        })
        .collect();
    let received = repo::private_received(store, &id)
        .await?
        .into_iter()
        .map(|r| Received {
            comment_id: r.comment_id,
            event_id: r.event_id,
            created_at: t(r.created_at),
            envelope: b64(&r.envelope),
            sealed_to_key: r.key_fingerprint,
        })
        .collect();
    let reactions = repo::reactions_by(store, &id)
        .await?
        .into_iter()
        .map(|r| Reaction {
            id: r.id,
            comment_id: r.comment_id,
            kind: r.kind,
            created_at: t(r.created_at),
        })
        .collect();
    let mut keys = std::collections::HashMap::new();
    for v in crate::keys::live_versions(store, Purpose::Network).await? {
        keys.insert(v.0, ring.key(store, Purpose::Network, v).await?);
    }
    let mut activity = Vec::new();
    for a in repo::activity_of(store, &id).await? {
        let ip = match &a.ip_enc {
            None => None,
            Some(sealed) => {
                let version = crate::crypto::field::key_version(sealed).map_err(KeyError::from)?;
                let key = match keys.get(&version.0) {
                    Some(k) => k.clone(),
                    None => ring.key(store, Purpose::Network, version).await?,
                };
                let plain = crate::crypto::field::open(
                    &key,
                    &Place::new("activity_log", "ip_enc", &a.id),
                    sealed,
                )
                .map_err(KeyError::from)?;
                anonymise_ip(&String::from_utf8_lossy(&plain))
            }
        };
        activity.push(Activity {
            id: a.id,
            kind: a.kind,
            outcome: a.outcome,
            reason: a.reason,
            occurred_at: t(a.occurred_at),
            ip_anonymised: ip,
            user_agent: a.user_agent,
            country: a.country,
        });
    }
    let sessions = repo::sessions_of(store, &id)
        .await?
        .into_iter()
        .map(|s| SessionOut {
            id: s.id,
            client: s.client,
            user_agent: s.user_agent,
            created_at: t(s.created_at),
            last_seen_at: t(s.last_seen_at),
            expires_at: t(s.expires_at),
            revoked_at: ot(s.revoked_at),
            revoked_reason: s.revoked_reason,
        })
        .collect();
    let about = |rows: Vec<repo::AboutRow>| -> Vec<About> {
        rows.into_iter()
            .map(|r| About {
                id: r.id,
                kind: r.kind,
                status: r.status,
                detail: r.extra,
                created_at: t(r.created_at),
                closed_at: ot(r.closed_at),
            })
            .collect()
    };
    Ok(SubjectData {
        format: "vigil-subject-export/1",
        request_id: request.to_string(),
        generated_at: now.to_rfc3339(),
        profile,
        roles: repo::roles(store, &id).await?,
        mfa: Mfa {
            enabled: p.mfa_enabled,
            confirmed_at: ot(confirmed),
            backup_codes_left: codes_left,
        },
        comments,
        private_comments_received: received,
        reactions,
        activity,
        sessions,
        restrictions: about(repo::restrictions_of(store, &id).await?),
        requests: about(repo::requests_about(store, &id).await?),
        incidents: about(repo::incidents_about(store, &id).await?),
        notes: NOTES.to_vec(),
    })
}

const STEPS: [&str; 3] = ["collect", "write_files", "record"];

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    id: RequestId,
    kind: RequestKind,
    subject: uuid::Uuid,
    dir: &Path,
    now: Timestamp,
    progress: &mut (dyn FnMut(&RunProgress) -> Flow + Send),
) -> Result<Vec<super::ExportedFile>, PrivacyError> {
    if !dir.is_dir() {
        return Err(PrivacyError::Invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let id_s = id.to_string();
    let mut tx = store.begin().await?;
    repo::set_in_progress(&mut tx, &id_s, None, now.micros()).await?;
    repo::insert_steps(&mut tx, &id_s, &STEPS).await?;
    tx.commit().await?;
    let total = STEPS.len() as i64;
    let mut report = |step: i64, state: &'static str, rows: i64| -> Result<(), PrivacyError> {
        let p = RunProgress {
            step,
            steps: total,
            name: STEPS[(step - 1) as usize].to_owned(),
            state,
            rows,
        };
        match progress(&p) {
            Flow::Continue => Ok(()),
            Flow::Stop => Err(PrivacyError::Stopped { step }),
        }
    };
    let mut timings = Vec::new();

    report(1, "running", 0)?;
    let started = Timestamp::now();
    let data = collect(store, ring, id, subject, now).await?;
    let rows = (data.comments.len()
        + data.private_comments_received.len()
        + data.reactions.len()
        + data.activity.len()
        + data.sessions.len()
        + data.restrictions.len()
        + data.requests.len()
        + data.incidents.len()
        + 1) as i64;
    timings.push((started, Timestamp::now(), rows));
    report(1, "done", rows)?;

    report(2, "running", 0)?;
    let started = Timestamp::now();
    let short = &id_s;
    let files: Vec<(String, &'static str, Vec<u8>)> = match kind {
        RequestKind::Portability => vec![(
            format!("dsr-{short}-portability.zip"),
            "portability_zip",
            portability_zip(&data)?,
        )],
        _ => {
            let json =
                serde_json::to_vec_pretty(&data).map_err(|e| PrivacyError::Io(e.to_string()))?;
            vec![
                (format!("dsr-{short}-access.json"), "access_json", json),
                (
                    format!("dsr-{short}-access.html"),
                    "access_html",
                    access_html(&data).into_bytes(),
                ),
            ]
        }
    };
    // Every file is checked for a clash before any is written.
    for (name, _, _) in &files {
        if dir.join(name).exists() {
            return Err(PrivacyError::Io(format!(
                "{name} already exists in {}; choose another folder",
                dir.display()
            )));
        }
    }
    let mut written = Vec::new();
    for (name, kind, bytes) in &files {
        let path = dir.join(name);
        write_new(&path, bytes).map_err(|e| PrivacyError::Io(e.to_string()))?;
        written.push(super::ExportedFile {
            kind: (*kind).to_owned(),
            path: path.display().to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        });
    }
    timings.push((started, Timestamp::now(), written.len() as i64));
    report(2, "done", written.len() as i64)?;

    report(3, "running", 0)?;
    let started = Timestamp::now();
    let mut tx = store.begin().await?;
    for f in &written {
        repo::insert_artifact(
            &mut tx,
            &id_s,
            &f.kind,
            &f.sha256,
            f.bytes as i64,
            now.micros(),
        )
        .await?;
    }
    timings.push((started, Timestamp::now(), written.len() as i64));
    for (i, (s, e, rows)) in timings.iter().enumerate() {
        repo::update_step(
            &mut tx,
            &id_s,
            i as i64 + 1,
            &repo::StepUpdate {
                status: "done",
                rows: *rows,
                started_at: s.micros(),
                finished_at: e.micros(),
                error: None,
                details: None,
            },
        )
        .await?;
    }
    repo::set_completed(&mut tx, &id_s, Timestamp::now().micros()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrExported)
            .target(id_s.clone())
            .details(serde_json::json!({
                "kind": kind.as_str(),
                "files": written.iter().map(|f| serde_json::json!({
                    "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes,
                })).collect::<Vec<_>>(),
            })),
    )
    .await?;
    tx.commit().await?;
    report(3, "done", written.len() as i64)?;
    Ok(written)
}

/// Writes a new file readable by its owner only; never replaces an existing one.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use crate::files;
    files::create_new(path, bytes, files::PRIVATE_FILE).map_err(Into::into)
}

/// The rows as CSV with their header row, which an empty category keeps too (taken from a
/// blank record's field names).
fn csv_of<T: Serialize + Default>(rows: &[T]) -> Result<Vec<u8>, PrivacyError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.serialize(T::default())
            .map_err(|e| PrivacyError::Io(e.to_string()))?;
        let bytes = w
            .into_inner()
            .map_err(|e| PrivacyError::Io(e.to_string()))?;
        let header_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        return Ok(bytes[..header_end].to_vec());
    }
    for r in rows {
        w.serialize(r)
            .map_err(|e| PrivacyError::Io(e.to_string()))?;
    }
    w.into_inner().map_err(|e| PrivacyError::Io(e.to_string()))
}

fn json_of<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, PrivacyError> {
    serde_json::to_vec_pretty(v).map_err(|e| PrivacyError::Io(e.to_string()))
}

/// The portability archive: JSON and CSV per category, and `manifest.json` listing every file
/// with its SHA-256, the request id and the export time.
fn portability_zip(d: &SubjectData) -> Result<Vec<u8>, PrivacyError> {
    let mut files: Vec<(String, Vec<u8>, usize)> = vec![
        ("profile.json".into(), json_of(&d.profile)?, 1),
        (
            "profile.csv".into(),
            csv_of(std::slice::from_ref(&d.profile))?,
            1,
        ),
        (
            "comments.json".into(),
            json_of(&d.comments)?,
            d.comments.len(),
        ),
        (
            "comments.csv".into(),
            csv_of(&d.comments)?,
            d.comments.len(),
        ),
        (
            "private_comments_received.json".into(),
            json_of(&d.private_comments_received)?,
            d.private_comments_received.len(),
        ),
        (
            "private_comments_received.csv".into(),
            csv_of(&d.private_comments_received)?,
            d.private_comments_received.len(),
        ),
        (
            "reactions.json".into(),
            json_of(&d.reactions)?,
            d.reactions.len(),
        ),
        (
            "reactions.csv".into(),
            csv_of(&d.reactions)?,
            d.reactions.len(),
        ),
        (
            "activity.json".into(),
            json_of(&d.activity)?,
            d.activity.len(),
        ),
        (
            "activity.csv".into(),
            csv_of(&d.activity)?,
            d.activity.len(),
        ),
        (
            "sessions.json".into(),
            json_of(&d.sessions)?,
            d.sessions.len(),
        ),
        (
            "sessions.csv".into(),
            csv_of(&d.sessions)?,
            d.sessions.len(),
        ),
    ];
    files.push((
        "account.json".into(),
        json_of(&serde_json::json!({
            "roles": d.roles, "mfa": d.mfa, "restrictions": d.restrictions,
            "requests": d.requests, "incidents": d.incidents, "notes": d.notes,
        }))?,
        1,
    ));
    let manifest = serde_json::json!({
        "format": "vigil-portability/1",
        "request_id": d.request_id,
        "exported_at": d.generated_at,
        "files": files.iter().map(|(name, bytes, rows)| serde_json::json!({
            "name": name,
            "sha256": hex::encode(Sha256::digest(bytes)),
            "bytes": bytes.len(),
            "records": rows,
        })).collect::<Vec<_>>(),
    });
    files.push(("manifest.json".into(), json_of(&manifest)?, 0));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    let io = |e: zip::result::ZipError| PrivacyError::Io(e.to_string());
    for (name, bytes, _) in &files {
        zip.start_file(name.as_str(), options).map_err(io)?;
        zip.write_all(bytes)
            .map_err(|e| PrivacyError::Io(e.to_string()))?;
    }
    Ok(zip.finish().map_err(io)?.into_inner())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Rows shown per category in the readable summary; the JSON file holds them all.
const HTML_ROWS: usize = 50;

/// The readable summary: profile, counts per category and the most recent items of each.
fn access_html(d: &SubjectData) -> String {
    let mut h = String::new();
    let opt = |o: &Option<String>| o.as_deref().map(esc).unwrap_or_else(|| "—".into());
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
    h.push_str("<title>Your data</title><style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}small{color:#57606a}</style></head><body>");
    h.push_str("<h1>Your data</h1>");
    h.push_str(&format!(
        "<p><small>Request {} · generated {} · the full record is in the JSON file beside this one.</small></p>",
        esc(&d.request_id),
        esc(&d.generated_at)
    ));
    let p = &d.profile;
    h.push_str("<h2>Profile</h2><table>");
    for (k, v) in [
        ("Username", esc(&p.username)),
        ("Display name", esc(&p.display_name)),
        ("Email", opt(&p.email)),
        ("Phone", opt(&p.phone)),
        ("Country", opt(&p.country)),
        (
            "Account",
            format!("{} ({})", esc(&p.account_kind), esc(&p.status)),
        ),
        ("Created", esc(&p.created_at)),
        ("Last sign-in", opt(&p.last_login_at)),
        ("Roles", esc(&d.roles.join(", "))),
        (
            "Two-factor sign-in",
            if d.mfa.enabled {
                format!("on, {} backup codes left", d.mfa.backup_codes_left)
            } else {
                "off".into()
            },
        ),
    ] {
        h.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>"));
    }
    h.push_str("</table><h2>What we hold</h2><table><tr><th>Category</th><th>Records</th></tr>");
    for (k, n) in [
        ("Comments", d.comments.len()),
        (
            "Private comments addressed to you",
            d.private_comments_received.len(),
        ),
        ("Reactions", d.reactions.len()),
        ("Activity", d.activity.len()),
        ("Sessions", d.sessions.len()),
        ("Restrictions", d.restrictions.len()),
        ("Data requests", d.requests.len()),
        ("Security incidents", d.incidents.len()),
    ] {
        h.push_str(&format!("<tr><td>{k}</td><td>{n}</td></tr>"));
    }
    h.push_str("</table>");
    let latest = |n: usize| n.saturating_sub(HTML_ROWS);
    h.push_str("<h2>Latest comments</h2><table><tr><th>When</th><th>Event</th><th>Text</th></tr>");
    for c in &d.comments[latest(d.comments.len())..] {
        let text = match (&c.text, c.private) {
            (Some(t), _) => esc(t),
            (None, true) => "<em>private, end-to-end encrypted</em>".into(),
            (None, false) => "<em>removed</em>".into(),
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{text}</td></tr>",
            esc(&c.created_at),
            esc(&c.event_title)
        ));
    }
    h.push_str("</table><h2>Latest activity</h2><table><tr><th>When</th><th>What</th><th>Outcome</th><th>IP (anonymised)</th><th>Country</th></tr>");
    for a in &d.activity[latest(d.activity.len())..] {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.occurred_at),
            esc(&a.kind),
            esc(&a.outcome),
            opt(&a.ip_anonymised),
            opt(&a.country)
        ));
    }
    h.push_str("</table><h2>Notes</h2><ul>");
    for n in &d.notes {
        h.push_str(&format!("<li>{}</li>", esc(n)));
    }
    h.push_str("</ul></body></html>\n");
    h
}

/// Applies the corrections of a rectification request and completes it.
pub(super) async fn rectify(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    id: RequestId,
    subject: uuid::Uuid,
    corrections: &[Correction],
) -> Result<Vec<&'static str>, PrivacyError> {
    if corrections.is_empty() {
        return Err(PrivacyError::Invalid(
            "give at least one correction (display_name, email or phone)".into(),
        ));
    }
    let uid = subject.to_string();
    let p = repo::profile(store, &uid)
        .await?
        .ok_or(PrivacyError::SubjectNotFound)?;
    let keys = WriteKeys::current(store, ring, &[Purpose::Contact, Purpose::BlindIndex]).await?;
    let now = Timestamp::now().micros();
    // Re-read both sealed fields so they are written back under one `pii` version.
    let mut email = open_user_field(store, ring, &uid, "email_enc", p.email_enc.as_deref())
        .await?
        .map(|b| b.to_vec());
    let mut phone = open_user_field(store, ring, &uid, "phone_enc", p.phone_enc.as_deref())
        .await?
        .map(|b| b.to_vec());
    let mut display = None;
    let mut fields = Vec::new();
    for c in corrections {
        match c {
            Correction::DisplayName(n) => {
                let n = n.trim();
                if n.is_empty() || n.chars().count() > 100 {
                    return Err(PrivacyError::Invalid(
                        "a display name is 1 to 100 characters".into(),
                    ));
                }
                display = Some(n.to_owned());
                fields.push("display_name");
            }
            Correction::Email(e) => {
                let e = e.trim();
                if !e.contains('@') || e.len() > 320 || e.contains(char::is_whitespace) {
                    return Err(PrivacyError::Invalid("that is not an email address".into()));
                }
                email = Some(e.as_bytes().to_vec());
                fields.push("email");
            }
            Correction::Phone(ph) => {
                let ph = ph.trim();
                if ph.len() < 5
                    || ph.len() > 32
                    || !ph
                        .chars()
                        .all(|c| c.is_ascii_digit() || "+-() ".contains(c))
                {
                    return Err(PrivacyError::Invalid("that is not a phone number".into()));
                }
                phone = Some(ph.as_bytes().to_vec());
                fields.push("phone");
            }
        }
    }
    let mut tx = store.begin().await?;
    if let Some(n) = &display {
        repo::set_display_name(&mut tx, &uid, n, now).await?;
    }
    if fields.iter().any(|f| *f == "email" || *f == "phone") {
        let seal = |col: &str, v: &Option<Vec<u8>>| {
            v.as_ref()
                .map(|b| keys.seal_contact(&Place::new("users", col, &uid), b))
        };
        let email_enc = seal("email_enc", &email);
        let phone_enc = seal("phone_enc", &phone);
        match (&email_enc, &email) {
            (Some(enc), Some(plain)) => {
                let bidx = keys
                    .blind_index(BlindKind::Email, &String::from_utf8_lossy(plain))
                    .to_vec();
                repo::set_email(
                    &mut tx,
                    &uid,
                    &repo::SealedEmail {
                        enc: enc.clone(),
                        bidx,
                        contact_version: i64::from(keys.contact_version().0),
                        bidx_version: i64::from(keys.blind_version().0),
                    },
                    phone_enc.as_deref(),
                    now,
                )
                .await?;
            }
            _ => {
                if let Some(ph) = &phone_enc {
                    repo::set_phone(
                        &mut tx,
                        &uid,
                        ph,
                        email_enc.as_deref(),
                        i64::from(keys.contact_version().0),
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    repo::set_completed_plain(&mut tx, &id.to_string(), now).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrRectified)
            .target(id.to_string())
            .details(serde_json::json!({ "fields": fields })),
    )
    .await?;
    tx.commit().await?;
    Ok(fields)
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn an_empty_category_keeps_its_header_row() {
        let empty: Vec<Reaction> = Vec::new();
        assert_eq!(csv_of(&empty).unwrap(), b"id,comment_id,kind,created_at\n");
        let one = vec![Reaction {
            id: "r1".into(),
            comment_id: "c1".into(),
            kind: "like".into(),
            created_at: "2026-11-23T10:00:00Z".into(),
        }];
        assert_eq!(
            csv_of(&one).unwrap(),
            b"id,comment_id,kind,created_at\nr1,c1,like,2026-11-23T10:00:00Z\n"
        );
        let sessions: Vec<SessionOut> = Vec::new();
        assert!(csv_of(&sessions)
            .unwrap()
            .starts_with(b"id,client,user_agent,"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_lose_their_host_part() {
        assert_eq!(anonymise_ip("10.1.2.3").as_deref(), Some("10.1.2.0"));
        assert_eq!(
            anonymise_ip("2001:db8:abcd:1234:5678::1").as_deref(),
            Some("2001:db8:abcd::")
        );
        assert_eq!(anonymise_ip("not an ip"), None);
    }

    #[test]
    fn html_escapes_what_people_wrote() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
