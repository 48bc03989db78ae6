//! Dashboard charts on both databases: per-UTC-day counts with empty days as zeros, the period
//! ending exactly at `now`, rate-limit violations, the rule ranking, data-subject requests by
//! status and deadline, permissions, and the SVG and PNG drawings.

mod common;

use chrono::NaiveDate;
use common::{exec, TestDb};
use sqlx::AnyPool;
use vigil::analytics::{
    self, AnalyticsError, ChartData, ChartKind, ChartSeries, ChartTheme, DeadlineBuckets, Period,
};
use vigil::auth::Actor;
use vigil::keys::{KeyRing, WriteKeys};
use vigil::platform::{self, NewActivity, NewPlatformUser};
use vigil::privacy::{self, RequestKind, RequestStatus, SubjectRef};
use vigil::rbac::Permission;
use vigil::store::Timestamp;

/// A UTC instant written as RFC 3339.
fn t(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros()
}

/// The charts are read at 2024-03-10 15:00 UTC: the 7-day period is March 4 to 10.
fn now() -> Timestamp {
    Timestamp::from_micros(t("2024-03-10T15:00:00Z"))
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, m, d).unwrap()
}

async fn incident(raw: &AnyPool, severity: &str, created_at: i64) -> String {
    let id = uuid::Uuid::new_v4();
    exec(
        raw,
        &format!(
            "INSERT INTO incidents (id, kind, severity, status, dedup_key, summary, created_at, \
             updated_at) VALUES ('{id}', 'test', '{severity}', 'open', 'test:{id}', \
             'a test incident', {created_at}, {created_at})"
        ),
    )
    .await;
    id.to_string()
}

async fn evidence(raw: &AnyPool, incident: &str, rule: Option<&str>, added_at: i64, n: usize) {
    let rule = rule.map_or("NULL".to_owned(), |r| format!("'{r}'"));
    for _ in 0..n {
        let (id, reference) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        exec(
            raw,
            &format!(
                "INSERT INTO incident_evidence (id, incident_id, kind, ref_id, rule, added_at) \
                 VALUES ('{id}', '{incident}', 'activity', '{reference}', {rule}, {added_at})"
            ),
        )
        .await;
    }
}

async fn activity(db: &TestDb, ring: &KeyRing, times: &[i64]) {
    let keys = WriteKeys::current(&db.store, ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let rows: Vec<NewActivity> = times
        .iter()
        .map(|&at| NewActivity {
            id: uuid::Uuid::new_v4(),
            user_id: None,
            kind: "login",
            outcome: "success",
            reason: None,
            occurred_at: Timestamp::from_micros(at),
            user_agent: "Firefox".into(),
            country: "DE".into(),
            ip: Some("10.1.2.3".into()),
            ref_id: None,
            target: None,
        })
        .collect();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_activity(&mut tx, &keys, &rows)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Rows written here by hand, around the core, are counted into the daily counts the charts
/// read by recounting them from the rows.
async fn recount(db: &TestDb, admin: &Actor) {
    analytics::rebuild_daily_counts(&db.store, admin)
        .await
        .unwrap();
}

/// Incidents, their evidence and activity around the 7-day period's edges.
async fn incidents_and_activity(db: &TestDb, admin: &Actor, ring: &KeyRing) {
    let raw = db.raw().await;
    // March 4 00:00 is the first instant of the period; March 3 23:59:59.999999 the last before.
    incident(&raw, "low", t("2024-03-04T00:00:00Z")).await;
    incident(&raw, "high", t("2024-03-03T23:59:59.999999Z")).await;
    incident(&raw, "low", t("2024-03-07T23:59:59.999999Z")).await;
    incident(&raw, "medium", t("2024-03-08T00:00:00Z")).await;
    let hub = incident(&raw, "critical", t("2024-03-10T09:00:00Z")).await;
    incident(&raw, "critical", t("2024-03-10T15:00:00Z")).await;
    incident(&raw, "high", t("2024-03-10T11:30:00Z")).await;
    // After `now`: not counted.
    incident(&raw, "critical", t("2024-03-10T15:00:00.000001Z")).await;

    let (mar5, mar8, mar9, mar10) = (
        t("2024-03-05T12:00:00Z"),
        t("2024-03-08T12:00:00Z"),
        t("2024-03-09T12:00:00Z"),
        t("2024-03-10T12:00:00Z"),
    );
    evidence(&raw, &hub, Some("phishing_attempt"), mar8, 5).await;
    evidence(&raw, &hub, Some("rate_limit.login"), mar10, 3).await;
    evidence(&raw, &hub, Some("rate_limit.login"), mar9, 1).await;
    evidence(&raw, &hub, Some("spam_content"), mar9, 3).await;
    evidence(&raw, &hub, Some("rate_limit.comments"), mar10, 2).await;
    // Neither is a rate-limit rule: `_` is no wildcard here, and the prefix is case-sensitive.
    evidence(&raw, &hub, Some("rate-limit.burst"), mar10, 1).await;
    evidence(&raw, &hub, Some("RATE_LIMIT.x"), mar10, 1).await;
    for i in 1..=8 {
        evidence(&raw, &hub, Some(&format!("z_rule_{i:02}")), mar5, 1).await;
    }
    // No rule, outside the period, after `now`: not counted.
    evidence(&raw, &hub, None, mar10, 4).await;
    evidence(&raw, &hub, Some("old_rule"), t("2024-02-01T12:00:00Z"), 9).await;
    evidence(
        &raw,
        &hub,
        Some("rate_limit.login"),
        t("2024-03-10T16:00:00Z"),
        7,
    )
    .await;
    raw.close().await;

    activity(
        db,
        ring,
        &[
            t("2024-03-03T23:59:59.999999Z"),
            t("2024-03-04T00:00:00Z"),
            t("2024-03-04T08:00:00Z"),
            t("2024-03-06T12:00:00Z"),
            t("2024-03-06T12:00:01Z"),
            t("2024-03-06T23:59:59Z"),
            t("2024-03-10T00:00:00Z"),
            t("2024-03-10T14:59:59Z"),
            t("2024-03-10T15:00:00Z"),
            t("2024-03-10T15:00:00.000001Z"),
            t("2024-03-11T01:00:00Z"),
        ],
    )
    .await;
    recount(db, admin).await;
}

async fn chart(db: &TestDb, actor: &Actor, kind: ChartKind, period: Period) -> ChartData {
    analytics::chart_data(&db.store, actor, kind, period, now())
        .await
        .unwrap()
}

async fn incident_and_activity_charts(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    incidents_and_activity(&db, &admin, &ring).await;
    let moderator = common::operator_with_role(&db, "mod-mira", "moderator").await;

    let c = chart(
        &db,
        &moderator,
        ChartKind::IncidentsBySeverity,
        Period::Days7,
    )
    .await;
    assert_eq!((c.first_day, c.last_day), (date(3, 4), date(3, 10)));
    assert_eq!(c.period_days, 7);
    assert_eq!(c.title, "Incidents by severity");
    let ChartSeries::IncidentsBySeverity { days } = &c.series else {
        panic!("{:?}", c.series)
    };
    let rows: Vec<_> = days
        .iter()
        .map(|d| (d.day, d.critical, d.high, d.medium, d.low))
        .collect();
    assert_eq!(
        rows,
        [
            (date(3, 4), 0, 0, 0, 1),
            (date(3, 5), 0, 0, 0, 0),
            (date(3, 6), 0, 0, 0, 0),
            (date(3, 7), 0, 0, 0, 1),
            (date(3, 8), 0, 0, 1, 0),
            (date(3, 9), 0, 0, 0, 0),
            (date(3, 10), 2, 1, 0, 0),
        ]
    );
    assert!(c.has_data());

    // 30 days: February 10 to March 10, so March 3's incident is in, on day 22.
    let c = chart(&db, &admin, ChartKind::IncidentsBySeverity, Period::Days30).await;
    let ChartSeries::IncidentsBySeverity { days } = &c.series else {
        panic!()
    };
    assert_eq!(days.len(), 30);
    assert_eq!((days[0].day, days[29].day), (date(2, 10), date(3, 10)));
    assert_eq!((days[22].day, days[22].high), (date(3, 3), 1));
    assert_eq!(days.iter().map(|d| d.total()).sum::<u64>(), 7);

    let c = chart(&db, &moderator, ChartKind::ActivityVolume, Period::Days7).await;
    let ChartSeries::ActivityVolume { days } = &c.series else {
        panic!()
    };
    let events: Vec<u64> = days.iter().map(|d| d.events).collect();
    let violations: Vec<u64> = days.iter().map(|d| d.rate_limit_violations).collect();
    assert_eq!(events, [2, 0, 3, 0, 0, 0, 3]);
    assert_eq!(violations, [0, 0, 0, 0, 0, 1, 5]);
    assert_eq!(days[6].day, date(3, 10));

    // Longer periods are counted in several runs of days at once; every day lands in its place.
    for period in [Period::Days30, Period::Days90] {
        let c = chart(&db, &admin, ChartKind::ActivityVolume, period).await;
        let ChartSeries::ActivityVolume { days } = &c.series else {
            panic!()
        };
        let n = days.len();
        assert_eq!(n, period.days() as usize);
        assert_eq!(days.iter().map(|d| d.events).sum::<u64>(), 9);
        assert_eq!((days[n - 8].day, days[n - 8].events), (date(3, 3), 1));
        assert_eq!(days[n - 7].events, 2);
        assert_eq!(days[n - 1].events, 3);
        for (i, d) in days.iter().enumerate() {
            assert_eq!(
                d.day,
                date(3, 10) - chrono::Days::new((n - 1 - i) as u64),
                "days in order"
            );
        }
    }

    let c = chart(&db, &moderator, ChartKind::TopRules, Period::Days7).await;
    let ChartSeries::TopRules {
        rules,
        other_rules,
        other_evidence,
    } = &c.series
    else {
        panic!()
    };
    let ranked: Vec<(&str, u64)> = rules.iter().map(|r| (r.rule.as_str(), r.count)).collect();
    // Most first; ties by the name's bytes on both databases, whatever Postgres's collation.
    assert_eq!(
        ranked,
        [
            ("phishing_attempt", 5),
            ("rate_limit.login", 4),
            ("spam_content", 3),
            ("rate_limit.comments", 2),
            ("RATE_LIMIT.x", 1),
            ("rate-limit.burst", 1),
            ("z_rule_01", 1),
            ("z_rule_02", 1),
            ("z_rule_03", 1),
            ("z_rule_04", 1),
        ]
    );
    assert_eq!((*other_rules, *other_evidence), (4, 4));
    assert!(c.subtitle.contains("4 more not shown"), "{}", c.subtitle);

    // 90 days reach February's rule.
    let c = chart(&db, &admin, ChartKind::TopRules, Period::Days90).await;
    let ChartSeries::TopRules { rules, .. } = &c.series else {
        panic!()
    };
    assert_eq!((rules[0].rule.as_str(), rules[0].count), ("old_rule", 9));

    // The incident charts are the moderator's; requests are not.
    let refused = analytics::chart_data(
        &db.store,
        &moderator,
        ChartKind::DsrStatus,
        Period::Days30,
        now(),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(AnalyticsError::Forbidden(ref f)) if f.permission == Permission::DsrRead
        ),
        "{refused:?}"
    );
}
on_both!(incident_and_activity_charts);

/// A data-subject request received at `received`.
async fn request(db: &TestDb, officer: &Actor, subject: &str, received: &str) -> privacy::Created {
    privacy::create_at(
        &db.store,
        None,
        officer,
        RequestKind::Access,
        &SubjectRef::Username(subject.into()),
        privacy::CodeDelivery::Manual,
        Timestamp::from_micros(t(received)),
    )
    .await
    .unwrap()
}

async fn requests_by_status_and_deadline(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let officer = common::operator_with_role(&db, "cora-officer", "compliance_officer").await;
    let keys = WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_users(
        &mut tx,
        &keys,
        &[NewPlatformUser {
            id: uuid::Uuid::new_v4(),
            username: "subject.one".into(),
            display_name: "Subject One".into(),
            country: "FR".into(),
            email: Some("subject.one@mail.example".into()),
            phone: None,
            created_at: Timestamp::from_micros(t("2023-01-01T00:00:00Z")),
            last_login_at: None,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Nothing yet: no data.
    let c = chart(&db, &officer, ChartKind::DsrStatus, Period::Days7).await;
    assert!(!c.has_data());

    // Due a calendar month after receipt. February 1 is due March 1: overdue.
    request(&db, &officer, "subject.one", "2024-02-01T10:00:00Z").await;
    // Due March 12: within 7 days.
    request(&db, &officer, "subject.one", "2024-02-12T10:00:00Z").await;
    // Due March 5 but extended by two months to May 5: due later.
    let extended = request(&db, &officer, "subject.one", "2024-02-05T10:00:00Z").await;
    privacy::extend(
        &db.store,
        &officer,
        extended.request.id,
        2,
        "complex request",
    )
    .await
    .unwrap();
    // In the 7-day period: verifying, verified, withdrawn, rejected.
    request(&db, &officer, "subject.one", "2024-03-05T10:00:00Z").await;
    let verified = request(&db, &officer, "subject.one", "2024-03-07T10:00:00Z").await;
    // A code delivered by hand is entered by another officer than the one who filed.
    let second = common::operator_with_role(&db, "dora-officer", "compliance_officer").await;
    privacy::verify_code_at(
        &db.store,
        &second,
        verified.request.id,
        verified.verification_code.as_deref().unwrap(),
        Timestamp::from_micros(t("2024-03-07T11:00:00Z")),
    )
    .await
    .unwrap();
    let withdrawn = request(&db, &officer, "subject.one", "2024-03-06T10:00:00Z").await;
    privacy::withdraw(
        &db.store,
        &officer,
        withdrawn.request.id,
        "changed their mind",
    )
    .await
    .unwrap();
    let rejected = request(&db, &officer, "subject.one", "2024-03-08T10:00:00Z").await;
    privacy::reject(
        &db.store,
        &officer,
        rejected.request.id,
        "manifestly unfounded",
    )
    .await
    .unwrap();
    // Received after `now`: not counted anywhere.
    request(&db, &officer, "subject.one", "2024-03-10T16:00:00Z").await;

    let c = chart(&db, &officer, ChartKind::DsrStatus, Period::Days7).await;
    let ChartSeries::DsrStatus {
        by_status,
        open_by_deadline,
    } = &c.series
    else {
        panic!("{:?}", c.series)
    };
    let counts: Vec<(RequestStatus, u64)> = by_status.iter().map(|s| (s.status, s.count)).collect();
    assert_eq!(
        counts,
        [
            (RequestStatus::Received, 0),
            (RequestStatus::Verifying, 1),
            (RequestStatus::Verified, 1),
            (RequestStatus::InProgress, 0),
            (RequestStatus::Completed, 0),
            (RequestStatus::Rejected, 1),
            (RequestStatus::Withdrawn, 1),
        ]
    );
    // Open requests count whenever they were received: February's included, closed ones not.
    assert_eq!(
        *open_by_deadline,
        DeadlineBuckets {
            overdue: 1,
            due_soon: 1,
            due_later: 3,
        }
    );

    // 90 days: every request received by `now`.
    let c = chart(&db, &admin, ChartKind::DsrStatus, Period::Days90).await;
    let ChartSeries::DsrStatus { by_status, .. } = &c.series else {
        panic!()
    };
    let total: u64 = by_status.iter().map(|s| s.count).sum();
    assert_eq!(total, 7);
    assert_eq!(by_status[1].count, 4, "verifying");
}
on_both!(requests_by_status_and_deadline);

/// The document's root is `<svg>`; returns all its text, failing on malformed XML.
fn svg_text(svg: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut text = String::new();
    let mut root = None;
    loop {
        match reader.read_event().expect("well-formed SVG") {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let name: &str = name.as_ref();
                root.get_or_insert(name.to_owned());
            }
            Event::Text(t) => {
                text.push_str(t.as_ref());
                text.push('\n');
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_deref(), Some("svg"));
    text
}

/// Every `font-size` an SVG document sets, in pixels.
fn font_sizes(svg: &str) -> Vec<f64> {
    svg.split("font-size=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.trim_end_matches("px").parse().ok())
        .collect()
}

fn assert_png(bytes: &[u8], width: u32, height: u32) {
    assert!(bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]));
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a readable PNG");
    assert_eq!((reader.info().width, reader.info().height), (width, height));
}

async fn charts_draw_as_svg_and_png(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;

    // An empty database: every chart says so rather than drawing empty axes.
    for kind in ChartKind::ALL {
        let c = chart(&db, &admin, kind, Period::Days30).await;
        assert!(!c.has_data(), "{kind}");
        let svg = analytics::render_svg(&c, 640, 360).unwrap();
        let text = svg_text(&svg);
        assert!(text.contains(kind.title()), "{text}");
        assert!(text.contains("No data in this period"), "{text}");
        assert_png(&analytics::render_png(&c, 640, 360).unwrap(), 640, 360);
    }

    incidents_and_activity(&db, &admin, &ring).await;
    for kind in ChartKind::ALL {
        for period in Period::ALL {
            let c = chart(&db, &admin, kind, period).await;
            let svg = analytics::render_svg(&c, 800, 450).unwrap();
            let text = svg_text(&svg);
            assert!(text.contains(&c.title), "{kind}: {text}");
            assert!(svg.contains("<title>"), "named for screen readers");
            // Self-contained: nothing fetched, nothing run.
            for banned in ["href", "url(", "<script", "<image", "<foreignObject"] {
                assert!(!svg.contains(banned), "{kind} has {banned}");
            }
            if kind != ChartKind::DsrStatus {
                assert!(c.has_data(), "{kind} {period:?}");
                assert!(!text.contains("No data in this period"), "{kind}");
            }
            let png = analytics::render_png(&c, 1200, 675).unwrap();
            assert_png(&png, 1200, 675);
        }
    }

    // The day labels, the rule names and the severities are drawn.
    let c = chart(&db, &admin, ChartKind::IncidentsBySeverity, Period::Days7).await;
    let text = svg_text(&analytics::render_svg(&c, 800, 450).unwrap());
    for label in ["Mar 4", "Mar 10", "Critical", "High", "Medium", "Low"] {
        assert!(text.contains(label), "{label} in {text}");
    }
    let c = chart(&db, &admin, ChartKind::TopRules, Period::Days7).await;
    let text = svg_text(&analytics::render_svg(&c, 800, 450).unwrap());
    assert!(text.contains("phishing_attempt") && text.contains("z_rule_04"));
    assert!(!text.contains("z_rule_05"), "only the top ten");

    // Each theme draws on its own ground; in a small card the text stays at least 12 px; the
    // table holds the figures drawn.
    let c = chart(&db, &admin, ChartKind::IncidentsBySeverity, Period::Days7).await;
    let light = analytics::render_svg(&c, 400, 200).unwrap().to_lowercase();
    let dark = analytics::render_svg_themed(&c, 400, 200, ChartTheme::Dark)
        .unwrap()
        .to_lowercase();
    assert!(light.contains("#ffffff") && !light.contains("#111827"));
    assert!(dark.contains("#111827") && !dark.contains("#ffffff"));
    for svg in [&light, &dark] {
        let sizes = font_sizes(svg);
        assert!(!sizes.is_empty());
        assert!(sizes.iter().all(|s| *s >= 12.0), "{sizes:?}");
    }
    assert_png(
        &analytics::render_png_themed(&c, 400, 200, ChartTheme::Dark).unwrap(),
        400,
        200,
    );
    let table = analytics::table(&c);
    assert_eq!(table.columns, ["Day", "Critical", "High", "Medium", "Low"]);
    assert_eq!(table.rows.len(), 7);
    let ChartSeries::IncidentsBySeverity { days } = &c.series else {
        panic!("incidents by severity");
    };
    for (row, day) in table.rows.iter().zip(days) {
        assert_eq!(row[0], day.day.to_string());
        assert_eq!(row[1], day.critical.to_string());
        assert_eq!(row[4], day.low.to_string());
    }

    // Sizes out of range are refused, not drawn.
    for (w, h) in [(0, 0), (100, 450), (800, 100_000)] {
        assert!(matches!(
            analytics::render_svg(&c, w, h),
            Err(AnalyticsError::Render(_))
        ));
        assert!(matches!(
            analytics::render_png(&c, w, h),
            Err(AnalyticsError::Render(_))
        ));
    }
}
on_both!(charts_draw_as_svg_and_png);

/// A rate-limit violation is charted on the day its activity happened, not the day a detector
/// run found it; evidence that names no stored activity keeps the day it was added.
async fn violations_are_dated_by_their_activity(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let raw = db.raw().await;
    let hub = incident(&raw, "high", t("2024-03-10T09:00:00Z")).await;
    let keys = WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let burst: Vec<NewActivity> = (0..2)
        .map(|i| NewActivity {
            id: uuid::Uuid::new_v4(),
            user_id: None,
            kind: "login",
            outcome: "failure",
            reason: Some("bad_password"),
            occurred_at: Timestamp::from_micros(t("2024-03-08T23:50:00Z") + i),
            user_agent: "curl".into(),
            country: "DE".into(),
            ip: Some("10.9.9.9".into()),
            ref_id: None,
            target: None,
        })
        .collect();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_activity(&mut tx, &keys, &burst)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Found the next morning.
    for a in &burst {
        exec(
            &raw,
            &format!(
                "INSERT INTO incident_evidence (id, incident_id, kind, ref_id, rule, added_at) \
                 VALUES ('{}', '{hub}', 'activity', '{}', 'rate_limit.login', {})",
                uuid::Uuid::new_v4(),
                a.id,
                t("2024-03-09T08:00:00Z")
            ),
        )
        .await;
    }
    evidence(
        &raw,
        &hub,
        Some("rate_limit.login"),
        t("2024-03-09T08:00:00Z"),
        1,
    )
    .await;
    raw.close().await;
    recount(&db, &admin).await;
    let c = chart(&db, &admin, ChartKind::ActivityVolume, Period::Days7).await;
    let ChartSeries::ActivityVolume { days } = &c.series else {
        panic!()
    };
    let violations: Vec<(NaiveDate, u64)> = days
        .iter()
        .filter(|d| d.rate_limit_violations > 0)
        .map(|d| (d.day, d.rate_limit_violations))
        .collect();
    assert_eq!(violations, [(date(3, 8), 2), (date(3, 9), 1)]);
}

on_both!(violations_are_dated_by_their_activity);
