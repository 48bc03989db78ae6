//! Mail delivery of the outbox, on both databases, against a real SMTP server started here
//! (STARTTLS with a certificate made by the test): a data subject's code arrives at their
//! address and verifies the request while the officer never sees it; a wrong code still counts
//! down; a server that refuses or drops the connection leaves the message queued with its
//! error until it comes back; a crash between the SMTP transaction and its commit sends one
//! message once more at the most, with the same code; a code delivered by hand needs a second
//! officer; the outbox is listed, retried and cancelled by those allowed.

#[macro_use]
mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::{count, TestDb, PASSWORD};
use smtp::{Mode, SmtpServer};
use vigil::auth::Actor;
use vigil::crypto::KeyBits;
use vigil::keys::{self, KeyRing, WriteKeys};
use vigil::mail::{self, DeliverOptions, MailError, Mailer, OutboxFilter, OutboxState};
use vigil::platform::{self, NewPlatformUser};
use vigil::privacy::{self, CodeDelivery, PrivacyError, RequestKind, RequestStatus, SubjectRef};
use vigil::store::Timestamp;

struct Desk {
    admin: Actor,
    officer: Actor,
    second: Actor,
    ring: KeyRing,
    _keys: tempfile::TempDir,
}

/// An administrator; a compliance officer with keys (who files and delivers); a second officer;
/// a platform subject `sam` with an address, and `pat` with none.
async fn desk(db: &TestDb) -> Desk {
    let (admin, admin_ring) = common::admin_keys(db).await;
    let officer = common::operator_with_role(db, "cora-officer", "compliance_officer").await;
    let second = common::operator_with_role(db, "dora-officer", "compliance_officer").await;
    let (ks, dir) = common::keystore();
    keys::enrol(&db.store, &ks, &officer, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    keys::grant(&db.store, &admin_ring, &admin, "cora-officer")
        .await
        .unwrap();
    let ring = keys::unlock(&db.store, &ks, &officer, PASSWORD)
        .await
        .unwrap();
    let wk = WriteKeys::current(&db.store, &admin_ring, &keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let t0 = Timestamp::now();
    let user = |name: &str, email: Option<&str>| NewPlatformUser {
        id: uuid::Uuid::new_v4(),
        username: name.into(),
        display_name: name.into(),
        country: "DE".into(),
        email: email.map(str::to_owned),
        phone: None,
        created_at: t0,
        last_login_at: None,
    };
    platform::insert_users(
        &mut tx,
        &wk,
        &[user("sam", Some("sam@mail.example")), user("pat", None)],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Desk {
        admin,
        officer,
        second,
        ring,
        _keys: dir,
    }
}

fn later(secs: i64) -> DeliverOptions {
    DeliverOptions {
        now: Some(Timestamp::from_micros(
            Timestamp::now().micros() + secs * 1_000_000,
        )),
        ..DeliverOptions::default()
    }
}

async fn file(db: &TestDb, d: &Desk, who: &str, delivery: CodeDelivery) -> privacy::Created {
    privacy::create(
        &db.store,
        Some(&d.ring),
        &d.officer,
        RequestKind::Access,
        &SubjectRef::Username(who.into()),
        delivery,
    )
    .await
    .unwrap()
}

async fn the_subjects_code_arrives_and_verifies_the_request(db: TestDb) {
    let d = desk(&db).await;
    let server = SmtpServer::start().await;
    let mailer = Mailer::new(&server.config(), None).unwrap();

    let c = file(&db, &d, "sam", CodeDelivery::Mail).await;
    assert!(
        c.verification_code.is_none(),
        "a mailed code is never shown"
    );
    assert_eq!(c.request.code_delivery, CodeDelivery::Mail);
    let first = c.request.code_message_id.clone().unwrap();
    // `dsr code` before delivery: the queued first code is cancelled, one code is on its way.
    assert!(
        privacy::reissue_code(&db.store, Some(&d.ring), &d.officer, c.request.id)
            .await
            .unwrap()
            .is_none()
    );
    let m = mail::get(&db.store, &d.officer, &first).await.unwrap();
    assert_eq!(m.state, OutboxState::Cancelled);

    let report = mail::deliver_due(&db.store, &d.ring, &mailer, &DeliverOptions::default())
        .await
        .unwrap();
    assert_eq!((report.sent, report.deferred, report.failed), (1, 0, 0));
    let got = server.received();
    assert_eq!(got.len(), 1);
    let msg = &got[0];
    assert!(msg.tls, "mail goes over STARTTLS");
    assert_eq!(msg.to, vec!["sam@mail.example".to_owned()]);
    assert!(msg
        .header("Reply-To")
        .unwrap()
        .contains("privacy@vigil.example"));
    let detail = privacy::show(&db.store, &d.officer, c.request.id)
        .await
        .unwrap();
    let sent = detail.code_message.clone().unwrap();
    assert_eq!(sent.state, OutboxState::Sent);
    assert_eq!(
        msg.header("Message-ID").unwrap(),
        format!("<{}@vigil.example>", sent.id)
    );
    let code = msg.code().expect("the message carries the code");
    assert!(msg.data.contains("text/html") && msg.data.contains("text/plain"));

    // The code is nowhere in the database or the audit log, and the sent message keeps no
    // sealed copy either.
    let raw = db.raw().await;
    for sql in [
        format!("SELECT COUNT(*) FROM notifications WHERE payload LIKE '%{code}%'"),
        "SELECT COUNT(*) FROM notifications WHERE payload LIKE '%code_sealed%'".to_owned(),
        format!("SELECT COUNT(*) FROM audit_log WHERE details LIKE '%{code}%'"),
        "SELECT COUNT(*) FROM notifications WHERE payload LIKE '%mail.example%'".to_owned(),
    ] {
        assert_eq!(count(&raw, &sql).await, 0, "{sql}");
    }
    raw.close().await;

    // A wrong code still counts down; the code from the message verifies.
    match privacy::verify_code(&db.store, &d.officer, c.request.id, "AAAAA-AAAAA").await {
        Err(PrivacyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, 4),
        other => panic!("{other:?}"),
    }
    let r = privacy::verify_code(&db.store, &d.officer, c.request.id, &code)
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Verified);

    // Nothing is due any more.
    let again = mail::deliver_due(&db.store, &d.ring, &mailer, &later(2 * 86_400))
        .await
        .unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(server.received().len(), 1);
}
on_both!(the_subjects_code_arrives_and_verifies_the_request);

async fn a_refusing_or_dropping_server_leaves_the_message_queued(db: TestDb) {
    let d = desk(&db).await;
    let server = SmtpServer::start().await;
    let c = file(&db, &d, "sam", CodeDelivery::Mail).await;
    let id = c.request.code_message_id.clone().unwrap();

    server.set_mode(Mode::Refuse);
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &DeliverOptions::default())
        .await
        .unwrap();
    assert_eq!((r.sent, r.deferred), (0, 1));
    let m = mail::get(&db.store, &d.admin, &id).await.unwrap();
    assert_eq!((m.state, m.attempts), (OutboxState::Queued, 1));
    assert!(m.last_error.as_deref().unwrap().contains("554"), "{m:?}");
    // Not retried before its back-off.
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &DeliverOptions::default())
        .await
        .unwrap();
    assert_eq!(r.deferred + r.sent, 0);

    server.set_mode(Mode::Drop);
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &later(61))
        .await
        .unwrap();
    assert_eq!((r.sent, r.deferred), (0, 1));
    let m = mail::get(&db.store, &d.admin, &id).await.unwrap();
    assert_eq!((m.state, m.attempts), (OutboxState::Queued, 2));
    assert!(server.received().is_empty());

    // The server comes back: the message goes at its next attempt (2 minutes after the second).
    server.set_mode(Mode::Accept);
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &later(61 + 121))
        .await
        .unwrap();
    assert_eq!((r.sent, r.deferred), (1, 0));
    let m = mail::get(&db.store, &d.admin, &id).await.unwrap();
    assert_eq!((m.state, m.attempts), (OutboxState::Sent, 3));
    assert!(m.last_error.is_none());
    let code = server.received()[0].code().unwrap();
    privacy::verify_code(&db.store, &d.officer, c.request.id, &code)
        .await
        .unwrap();

    // A message not sent within 24 hours is given up, its code removed.
    let c2 = file(&db, &d, "sam", CodeDelivery::Mail).await;
    let id2 = c2.request.code_message_id.clone().unwrap();
    server.set_mode(Mode::Refuse);
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &later(86_400))
        .await
        .unwrap();
    assert_eq!(r.failed, 1);
    let m = mail::get(&db.store, &d.admin, &id2).await.unwrap();
    assert_eq!(m.state, OutboxState::Failed);
    // Retrying it needs a new code, which `dsr code` issues.
    assert!(matches!(
        mail::retry(&db.store, &d.admin, &id2).await,
        Err(MailError::WrongState { .. })
    ));
}
on_both!(a_refusing_or_dropping_server_leaves_the_message_queued);

async fn a_crash_between_send_and_commit_sends_one_message_once_more_at_most(db: TestDb) {
    let d = desk(&db).await;
    let server = SmtpServer::start().await;
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let c = file(&db, &d, "sam", CodeDelivery::Mail).await;

    let crash = DeliverOptions {
        stop_after_send: true,
        ..DeliverOptions::default()
    };
    assert!(matches!(
        mail::deliver_due(&db.store, &d.ring, &mailer, &crash).await,
        Err(MailError::StoppedAfterSend)
    ));
    assert_eq!(server.received().len(), 1);
    // A worker started again at once sends nothing: the attempt was committed before the send.
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &DeliverOptions::default())
        .await
        .unwrap();
    assert_eq!(r.sent, 0);
    // At the next attempt the same message goes once more, and that is all.
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &later(61))
        .await
        .unwrap();
    assert_eq!(r.sent, 1);
    let r = mail::deliver_due(&db.store, &d.ring, &mailer, &later(7 * 86_400))
        .await
        .unwrap();
    assert_eq!(r.sent, 0);
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("Message-ID"), got[1].header("Message-ID"));
    assert_eq!(got[0].code(), got[1].code(), "never two different codes");
    privacy::verify_code(&db.store, &d.officer, c.request.id, &got[0].code().unwrap())
        .await
        .unwrap();
}
on_both!(a_crash_between_send_and_commit_sends_one_message_once_more_at_most);

async fn a_code_delivered_by_hand_is_entered_by_a_second_officer(db: TestDb) {
    let d = desk(&db).await;
    // No address on file: mail is refused, manual delivery shows the code.
    assert!(matches!(
        privacy::create(
            &db.store,
            Some(&d.ring),
            &d.officer,
            RequestKind::Erasure,
            &SubjectRef::Username("pat".into()),
            CodeDelivery::Mail,
        )
        .await,
        Err(PrivacyError::NoAddress)
    ));
    let c = file(&db, &d, "pat", CodeDelivery::Manual).await;
    let code = c.verification_code.clone().unwrap();
    assert!(c.request.code_message_id.is_none());
    // The filing officer cannot enter it, and the refusal uses up no attempt.
    assert!(matches!(
        privacy::verify_code(&db.store, &d.officer, c.request.id, &code).await,
        Err(PrivacyError::SameOfficer)
    ));
    assert!(matches!(
        privacy::verify_code(&db.store, &d.officer, c.request.id, "AAAAA-AAAAA").await,
        Err(PrivacyError::SameOfficer)
    ));
    // `dsr code` shows a new code by hand, and the old one stops working.
    let code2 = privacy::reissue_code(&db.store, Some(&d.ring), &d.officer, c.request.id)
        .await
        .unwrap()
        .unwrap();
    match privacy::verify_code(&db.store, &d.second, c.request.id, &code).await {
        Err(PrivacyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, 4),
        other => panic!("{other:?}"),
    }
    let r = privacy::verify_code(&db.store, &d.second, c.request.id, &code2)
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Verified);
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'dsr_code'"
        )
        .await,
        0
    );
    raw.close().await;
}
on_both!(a_code_delivered_by_hand_is_entered_by_a_second_officer);

async fn the_outbox_is_listed_retried_and_cancelled_by_those_allowed(db: TestDb) {
    let d = desk(&db).await;
    let c = file(&db, &d, "sam", CodeDelivery::Mail).await;
    let id = c.request.code_message_id.clone().unwrap();
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    assert!(matches!(
        mail::list(&db.store, &moderator, &OutboxFilter::default()).await,
        Err(MailError::Forbidden(_))
    ));
    assert!(mail::cancel(&db.store, &moderator, &id).await.is_err());

    let all = mail::list(&db.store, &d.admin, &OutboxFilter::default())
        .await
        .unwrap();
    let m = all.iter().find(|m| m.id == id).unwrap();
    assert_eq!(m.recipient.as_deref(), Some("sam"));
    assert_eq!(
        (m.kind.as_str(), m.state),
        ("dsr_code", OutboxState::Queued)
    );
    assert!(!serde_json::to_string(&all)
        .unwrap()
        .contains("mail.example"));

    let m = mail::cancel(&db.store, &d.admin, &id).await.unwrap();
    assert_eq!(m.state, OutboxState::Cancelled);
    assert!(matches!(
        mail::cancel(&db.store, &d.admin, &id).await,
        Err(MailError::WrongState { .. })
    ));
    assert!(matches!(
        mail::retry(&db.store, &d.admin, &id).await,
        Err(MailError::WrongState { .. })
    ));
    assert!(matches!(
        mail::retry(&db.store, &d.admin, "no-such-message").await,
        Err(MailError::NotFound)
    ));
    let queued = mail::list(
        &db.store,
        &d.admin,
        &OutboxFilter {
            state: Some(OutboxState::Queued),
            limit: None,
        },
    )
    .await
    .unwrap();
    assert!(queued.iter().all(|m| m.state == OutboxState::Queued));
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            &format!(
                "SELECT COUNT(*) FROM notifications WHERE id = '{id}' \
                 AND payload LIKE '%code_sealed%'"
            ),
        )
        .await,
        0,
        "a cancelled message keeps no code"
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'outbox.cancelled'"
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(the_outbox_is_listed_retried_and_cancelled_by_those_allowed);
