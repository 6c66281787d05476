//! Notifications against a real SMTP server process (aiosmtpd, `tests/smtp_sink.py`): recipients,
//! subjects, both parts, the label attachment; nothing lost while the server is down, nothing sent
//! twice, dead letters and their retry, reminders and alerts from the scheduler, chat webhooks.
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

use depot::entities::notification;
use helpers::*;
use mail_parser::{MessageParser, MimeHeaders};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{depot, signed_in};

/// The SMTP server process; killed when dropped.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received message, parsed.
struct Mail {
    envelope_to: Vec<String>,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    attachments: Vec<(String, String, Vec<u8>)>,
}

impl Sink {
    fn start(port: u16) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink (pip install -r tests/requirements.txt)");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "aiosmtpd did not start: is it installed (tests/requirements.txt)?"
        );
        Sink { child, dir }
    }

    fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort_by_key(|p| p.file_stem().unwrap().to_str().unwrap().parse::<u32>().unwrap());
        files
            .iter()
            .map(|path| {
                let raw = std::fs::read(path).unwrap();
                let msg = MessageParser::default().parse(&raw).unwrap();
                let envelope_to = msg
                    .header_raw("X-Envelope-To")
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                Mail {
                    envelope_to,
                    subject: msg.subject().unwrap_or_default().to_string(),
                    message_id: msg.message_id().unwrap_or_default().to_string(),
                    text: msg.body_text(0).unwrap_or_default().to_string(),
                    html: msg.body_html(0).unwrap_or_default().to_string(),
                    attachments: msg
                        .attachments()
                        .map(|a| {
                            let kind = a
                                .content_type()
                                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                                .unwrap_or_default();
                            (
                                a.attachment_name().unwrap_or_default().to_string(),
                                kind,
                                a.contents().to_vec(),
                            )
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived (bounded), and returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || start.elapsed() > Duration::from_secs(60) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn mail_settings(port: u16, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("SMTP_URL", format!("smtp://127.0.0.1:{port}")),
        ("DEPOT_MAIL_FROM", "depot <depot@vast.example>".to_string()),
        ("DEPOT_MAIL_POLL_MS", "50".to_string()),
        ("DEPOT_MAIL_BACKOFF_MS", "50".to_string()),
        ("DEPOT_JOBS_INTERVAL_S", "3600".to_string()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    settings
}

async fn states(app: &TestApp) -> Vec<String> {
    notification::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.state)
        .collect()
}

/// The sink stores a message before depot has read the server's answer and marked it sent, so
/// the outbox catches up shortly after the last message arrives (bounded).
async fn all_marked_sent(app: &TestApp) {
    let start = Instant::now();
    loop {
        let now = states(app).await;
        if now.iter().all(|s| s == "sent") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not all sent: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lifecycle_emails_reach_the_site_and_the_watchers_with_both_parts_and_the_label() {
    let port = free_port();
    let sink = Sink::start(port);
    let app = spawn_app_with(&mail_settings(port, &[])).await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0201").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    for watcher in [CAM, SAC] {
        app.client
            .put(format!("{}/api/v1/rmas/{number}/watch", app.base))
            .bearer_auth(app.token(watcher))
            .send()
            .await
            .unwrap();
    }
    // A watcher whose account is disabled is told no more.
    depot::entities::user::Entity::update_many()
        .col_expr(
            depot::entities::user::Column::Disabled,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(depot::entities::user::Column::Email.eq(SAC))
        .exec(&app.db)
        .await
        .unwrap();
    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &number,
        "approved",
        json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"}),
    )
    .await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let approved = &mails[0];
    assert!(
        !approved.envelope_to.iter().any(|r| r == SAC),
        "{:?}",
        approved.envelope_to
    );
    assert!(
        approved.subject.contains(&number) && approved.subject.contains("approved"),
        "{}",
        approved.subject
    );
    for to in ["dc-ord1@coreweave.example", "dctech@coreweave.example", FE, CAM] {
        assert!(
            approved.envelope_to.iter().any(|r| r == to),
            "{to} not in {:?}",
            approved.envelope_to
        );
    }
    assert!(
        approved.text.contains("DIMM_UE") && approved.html.contains("<strong>"),
        "both parts"
    );
    assert!(approved.message_id.ends_with("@depot"), "{}", approved.message_id);

    app.step(
        CAM,
        &number,
        "replacement_shipped",
        json!({"replacement_serial": "CN-CAM-S004", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
    )
    .await;
    let mails = sink.wait_for(2).await;
    let shipped = &mails[1];
    assert!(
        shipped.subject.contains("CN-CAM-S004") && shipped.subject.contains("1Z999AA10123456784"),
        "{}",
        shipped.subject
    );
    assert!(
        shipped.text.contains("Drain the node") && shipped.text.contains("ups.com"),
        "{}",
        shipped.text
    );
    assert!(
        shipped.html.contains("ups.com") && shipped.html.contains("track?tracknum=1Z999AA10123456784\">"),
        "{}",
        shipped.html
    );
    let (name, kind, pdf) = &shipped.attachments[0];
    assert_eq!(kind, "application/pdf");
    assert!(name.ends_with("return-label.pdf") && pdf.starts_with(b"%PDF"), "{name}");

    app.client
        .delete(format!("{}/api/v1/rmas/{number}/watch", app.base))
        .bearer_auth(app.token(CAM))
        .send()
        .await
        .unwrap();
    app.step(CW_TECH, &number, "replacement_delivered", json!({})).await;
    app.step(
        CW_TECH,
        &number,
        "swapped",
        json!({"installed_serial": "CN-CAM-S004", "pulled_serial": "CN-ORD1-0201"}),
    )
    .await;
    app.step(
        CW_TECH,
        &number,
        "return_shipped",
        json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "CAM"}),
    )
    .await;
    app.step(CAM, &number, "received", json!({"scanned_serial": "CN-ORD1-0201"}))
        .await;
    let mails = sink.wait_for(3).await;
    assert!(
        mails[2].subject.contains("received at depot CAM"),
        "{}",
        mails[2].subject
    );
    assert!(
        !mails[2].envelope_to.iter().any(|r| r == CAM),
        "an unwatched RMA no longer mails its ex-watcher"
    );
    app.step(CAM, &number, "triage", json!({})).await;
    app.step(CAM, &number, "scrapped", json!({"reason": "burnt <b>board</b>"}))
        .await;
    let mails = sink.wait_for(4).await;
    assert!(mails[3].subject.contains("closed: scrapped"), "{}", mails[3].subject);
    assert!(
        mails[3].html.contains("burnt &lt;b&gt;board&lt;&#x2F;b&gt;")
            || mails[3].html.contains("burnt &lt;b&gt;board&lt;/b&gt;"),
        "escaped: {}",
        mails[3].html
    );
    assert_eq!(mails.len(), 4);
    all_marked_sent(&app).await;
}

#[tokio::test]
async fn mail_queued_while_the_server_is_down_is_delivered_once_when_it_returns() {
    let port = free_port();
    let app = spawn_app_with(&mail_settings(port, &[("DEPOT_MAIL_MAX_ATTEMPTS", "100")])).await;
    let mut numbers = vec![];
    for _ in 0..100 {
        let number = app.open(FE, "cw-ord1", "CN-T01-0001").await["number"]
            .as_str()
            .unwrap()
            .to_string();
        app.step(FE, &number, "cancelled", json!({"reason": "duplicate alarm"}))
            .await;
        numbers.push(number);
    }
    // The server is down: every message is kept, retrying.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = notification::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(before.len(), 100);
    assert!(before.iter().all(|n| n.state != "sent"));
    assert!(
        before.iter().any(|n| n.attempts > 0 && n.last_error.is_some()),
        "deliveries were attempted"
    );

    let sink = Sink::start(port);
    let mails = sink.wait_for(100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = if sink.messages().len() > mails.len() {
        sink.messages()
    } else {
        mails
    };
    assert_eq!(mails.len(), 100, "each message exactly once");
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 100);
    for number in &numbers {
        assert_eq!(
            mails.iter().filter(|m| m.subject.contains(number.as_str())).count(),
            1,
            "{number}"
        );
    }
    all_marked_sent(&app).await;
}

#[tokio::test]
async fn a_message_is_dead_lettered_after_bounded_attempts_and_an_admin_can_retry_it() {
    let port = free_port();
    let app = spawn_app_with(&mail_settings(port, &[("DEPOT_MAIL_MAX_ATTEMPTS", "3")])).await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0202").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "cancelled", json!({"reason": "opened by mistake"}))
        .await;
    let start = Instant::now();
    while states(&app).await != ["dead"] {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never dead-lettered: {:?}",
            states(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = notification::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(dead.attempts, 3);
    assert!(dead.last_error.is_some());

    let sink = Sink::start(port);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 0, "a dead letter waits for a person");
    let admin = depot::services::tokens::authenticate(&app.db, app.token(ADMIN))
        .await
        .unwrap();
    depot::services::admin::retry_notification(&app.db, &admin, dead.id)
        .await
        .unwrap();
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains(&number));
    let fe = depot::services::tokens::authenticate(&app.db, app.token(FE))
        .await
        .unwrap();
    assert!(
        depot::services::admin::retry_notification(&app.db, &fe, dead.id)
            .await
            .is_err(),
        "admins only"
    );
}

#[tokio::test]
async fn reminders_and_alerts_are_queued_once_per_day_and_once_per_breach() {
    use depot::jobs::{Scheduler, run_once};
    let app = spawn_app().await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0203").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let reported = app.rma(&number).await;
    let created: chrono::DateTime<chrono::Utc> = reported["created_at"].as_str().unwrap().parse().unwrap();
    // sev2: first response due in two hours; at risk from 96 minutes (80 %).
    let at = |minutes: i64| created + chrono::Duration::minutes(minutes);
    // One instance's scheduler sweep after sweep, remembering the keys it has seen used.
    let mut scheduler = Scheduler::default();
    let mut sweep = async |minutes| scheduler.run_once(&app.db, BASE_URL, at(minutes)).await.unwrap();
    assert_eq!(sweep(95).await, 0);
    assert_eq!(sweep(97).await, 1, "at risk");
    assert_eq!(sweep(110).await, 0, "once");
    assert_eq!(sweep(121).await, 1, "breached");
    assert_eq!(sweep(200).await, 0, "once per breach");
    // Another instance, or this one restarted, remembers nothing and finds them in the outbox.
    assert_eq!(
        run_once(&app.db, BASE_URL, at(110)).await.unwrap(),
        0,
        "once, for a new scheduler"
    );
    assert_eq!(
        run_once(&app.db, BASE_URL, at(200)).await.unwrap(),
        0,
        "once per breach, for a new scheduler"
    );
    let alerts = notification::Entity::find()
        .filter(notification::Column::Template.eq("sla_breach"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].recipients, json!(["oncall-coreweave@vast.example"]));
    assert!(
        alerts[0].subject.as_deref().unwrap().contains("first response at risk"),
        "{:?}",
        alerts[0].subject
    );
    assert!(
        alerts[1]
            .subject
            .as_deref()
            .unwrap()
            .contains("first response breached"),
        "{:?}",
        alerts[1].subject
    );

    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &number,
        "approved",
        json!({"fault_code": "X", "replacement_kind": "whole_unit"}),
    )
    .await;
    app.step(FE, &number, "swapped", json!({"spare_serial": "CN-ORD1-TSP01"}))
        .await;
    let swapped_at: chrono::DateTime<chrono::Utc> = app.rma(&number).await["status_changed_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // A depot technician watches the RMA too: the reminders reach the site's contacts and every
    // watcher (the field engineer who opened it watches it).
    app.put(CAM, &format!("/api/v1/rmas/{number}/watch"), &json!({}))
        .await
        .expect(204);
    let day = chrono::Duration::days(1);
    assert_eq!(
        depot::jobs::return_reminders(&app.db, BASE_URL, swapped_at + day * 4)
            .await
            .unwrap(),
        0,
        "within the grace period"
    );
    assert_eq!(
        depot::jobs::return_reminders(&app.db, BASE_URL, swapped_at + day * 5)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        depot::jobs::return_reminders(&app.db, BASE_URL, swapped_at + day * 5 + chrono::Duration::hours(3))
            .await
            .unwrap(),
        0,
        "once a day"
    );
    assert_eq!(
        depot::jobs::return_reminders(&app.db, BASE_URL, swapped_at + day * 6)
            .await
            .unwrap(),
        1,
        "and again the next day"
    );
    let reminders = notification::Entity::find()
        .filter(notification::Column::Template.eq("return_reminder"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(reminders.len(), 2);
    assert!(reminders[0].subject.as_deref().unwrap().contains("5 days"));
    assert_eq!(
        reminders[0].recipients,
        json!([
            "cam@vast.example",
            "dc-ord1@coreweave.example",
            "dctech@coreweave.example",
            "fe@vast.example"
        ])
    );
    let events = app.events(&number).await;
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "reminder").count(),
        2,
        "each reminder is in the history"
    );
}

#[tokio::test]
async fn two_instances_on_one_database_never_send_a_message_twice() {
    let port = free_port();
    let sink = Sink::start(port);
    let settings = mail_settings(port, &[]);
    let app = spawn_app_with(&settings).await;
    app.another_instance(&settings).await;
    app.another_instance(&settings).await;
    for _ in 0..40 {
        let number = app.open(FE, "cw-ord1", "CN-T01-0002").await["number"]
            .as_str()
            .unwrap()
            .to_string();
        app.step(FE, &number, "cancelled", json!({"reason": "test"})).await;
    }
    sink.wait_for(40).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mails = sink.messages();
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(
        (mails.len(), ids.len()),
        (40, 40),
        "three dispatchers, each message once"
    );
}

#[tokio::test]
async fn an_organizations_chat_webhook_gets_its_notifications() {
    use axum::{Json, Router, routing::post};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let hook = Router::new().route(
        "/hook",
        post(move |Json(body): Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let app = spawn_app_with(&[
        ("DEPOT_MAIL_POLL_MS", "50".into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
    ])
    .await;
    store_webhook(&app, "xai", hook_url).await;

    let number = app.open(XAI_TECH, "xai-colossus", "CN-COL1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "cancelled", json!({"reason": "duplicate"})).await;
    let Ok(body) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
        let rows = notification::Entity::find().all(&app.db).await.unwrap();
        panic!(
            "webhook not called; outbox: {:?}",
            rows.iter()
                .map(|n| (&n.channel, &n.state, &n.last_error, n.attempts))
                .collect::<Vec<_>>()
        );
    };
    let body = body.unwrap();
    assert!(body["text"].as_str().unwrap().contains(&number), "{body}");
    assert_eq!(body["template"], "rma_closed");
    // A Block Kit message with the RMA's buttons.
    let actions = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["action_id"], "ack");
    assert_eq!(actions["elements"][0]["value"], number.as_str());
    // Without SMTP the email stays queued, the webhook went out.
    let start = Instant::now();
    loop {
        let rows = notification::Entity::find().all(&app.db).await.unwrap();
        let by_channel = |c: &str| rows.iter().find(|n| n.channel == c).unwrap().state.clone();
        if by_channel("webhook") == "sent" {
            assert_eq!(by_channel("email"), "pending");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the webhook row was never marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets an organization's webhook in the database directly, as if saved before today's rules.
async fn store_webhook(app: &TestApp, code: &str, url: String) {
    use depot::entities::organization;
    use sea_orm::{ActiveModelTrait, Set};
    let org = organization::Entity::find()
        .filter(organization::Column::Code.eq(code))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut org: organization::ActiveModel = org.into();
    org.webhook_url = Set(Some(url));
    org.update(&app.db).await.unwrap();
}

#[tokio::test]
async fn webhooks_reach_no_private_address_at_sending_and_follow_no_redirect() {
    use axum::{Router, http::StatusCode, response::IntoResponse, routing::post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listen = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let (first, second) = (listen().await, listen().await);
    let (first_port, second_port) = (first.local_addr().unwrap().port(), second.local_addr().unwrap().port());
    let (first_hits, second_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let hits = first_hits.clone();
    let redirecting = Router::new().fallback(post(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        let to = format!("http://127.0.0.1:{second_port}/hook");
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response() }
    }));
    let hits = second_hits.clone();
    let target = Router::new().fallback(post(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async {}
    }));
    tokio::spawn(async move { axum::serve(first, redirecting).await });
    tokio::spawn(async move { axum::serve(second, target).await });

    // The operator allows 127.0.0.1 (a chat relay on this host), not the name `localhost`.
    let app = spawn_app_with(&[
        ("DEPOT_MAIL_POLL_MS", "50".into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
    ])
    .await;
    store_webhook(&app, "xai", format!("https://localhost:{first_port}/hook")).await;
    store_webhook(&app, "coreweave", format!("http://127.0.0.1:{first_port}/hook")).await;
    for (who, site, serial) in [
        (XAI_TECH, "xai-colossus", "CN-COL1-0101"),
        (CW_TECH, "cw-ord1", "CN-ORD1-0101"),
    ] {
        let number = app.open(who, site, serial).await["number"]
            .as_str()
            .unwrap()
            .to_string();
        app.step(FE, &number, "cancelled", json!({"reason": "test"})).await;
    }
    let start = Instant::now();
    let tried = loop {
        let rows: Vec<notification::Model> = notification::Entity::find()
            .filter(notification::Column::Channel.eq("webhook"))
            .all(&app.db)
            .await
            .unwrap();
        if rows.len() == 2 && rows.iter().all(|n| n.attempts > 0) {
            break rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "webhooks never tried: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors: Vec<String> = tried.iter().map(|n| n.last_error.clone().unwrap_or_default()).collect();
    assert!(tried.iter().all(|n| n.state != "sent"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("private")),
        "localhost refused: {errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("307")),
        "the redirect is an answer, not followed: {errors:?}"
    );
    assert_eq!(first_hits.load(Ordering::SeqCst), 1, "only the allowed host was called");
    assert_eq!(second_hits.load(Ordering::SeqCst), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_slack_channel_gets_one_thread_per_rma() {
    use axum::{Json, Router, http::HeaderMap, routing::post};
    let (tx, mut posted) = tokio::sync::mpsc::unbounded_channel::<(String, serde_json::Value)>();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Slack's chat.postMessage as documented: 200 with `ok` and the message's `ts`.
    let api = Router::new().route(
        "/chat.postMessage",
        post(move |headers: HeaderMap, Json(body): Json<serde_json::Value>| {
            let tx = tx.clone();
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let auth = headers["authorization"].to_str().unwrap().to_string();
                let _ = tx.send((auth, body.clone()));
                Json(json!({"ok": true, "channel": body["channel"], "ts": format!("1764800000.00010{n}")}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });
    let app = spawn_app_with(&[
        ("DEPOT_MAIL_POLL_MS", "50".into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
        ("SLACK_BOT_TOKEN", "xoxb-depot-test".into()),
        ("SLACK_API_URL", api_url),
    ])
    .await;
    store_webhook(&app, "xai", "slack:C0ONCALL01".into()).await;
    let number = app.approved(XAI_TECH, "xai-colossus", "CN-COL1-0103", None).await;
    let wait = Duration::from_secs(10);
    let (auth, first) = tokio::time::timeout(wait, posted.recv()).await.unwrap().unwrap();
    assert_eq!(auth, "Bearer xoxb-depot-test");
    assert_eq!(first["channel"], "C0ONCALL01");
    assert!(
        first.get("thread_ts").is_none(),
        "the RMA's first message starts its thread"
    );
    app.step(FE, &number, "cancelled", json!({"reason": "duplicate"})).await;
    let (_, second) = tokio::time::timeout(wait, posted.recv()).await.unwrap().unwrap();
    assert_eq!(
        second["thread_ts"], "1764800000.000100",
        "later steps reply in the thread"
    );
    assert!(second["text"].as_str().unwrap().contains(&number));
}

/// A `depot serve` process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(database_url: &str, smtp_port: u16) -> Server {
    let mut cmd = depot(database_url);
    cmd.env("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("DEPOT_MAIL_POLL_MS", "50")
        .env("DEPOT_MAIL_LEASE_S", "2");
    let (child, url) = support::serve(cmd);
    Server { child, url }
}

#[tokio::test]
async fn two_server_processes_one_killed_lose_nothing_and_send_each_mail_once() {
    // One PostgreSQL database, or one SQLite file shared by two processes.
    let scratch = support::ScratchDb::for_suite("two").await;
    let url = scratch.url.clone();
    support::load_demo_records(&url);
    let token = support::token(depot(&url), "fe@vast.example");

    let port = free_port();
    let sink = Sink::start(port);
    let a = serve(&url, port);
    let mut b = Some(serve(&url, port));
    let (a_url, b_url) = (a.url.clone(), b.as_ref().unwrap().url.clone());

    // A session made on one instance is valid on the other.
    let browser = signed_in(&a_url, "fe@vast.example").await;
    assert_eq!(browser.get(format!("{b_url}/")).send().await.unwrap().status(), 200);

    // Two clients spread opens and cancellations (each queues a mail) across both instances;
    // B is killed halfway. Only answers of 200/201 count as acknowledged.
    let client = reqwest::Client::new();
    let mut acknowledged = vec![];
    for i in 0..30 {
        if i == 15 {
            let mut killed = b.take().unwrap();
            killed.child.kill().unwrap(); // SIGKILL
            killed.child.wait().unwrap();
        }
        let base = if i % 2 == 0 || b.is_none() { &a_url } else { &b_url };
        let opened = client
            .post(format!("{base}/api/v1/rmas"))
            .bearer_auth(&token)
            .json(&json!({"site": "cw-ord1", "serial": "CN-ORD1-0101", "severity": "sev3", "symptom": "flapping"}))
            .send()
            .await;
        let Ok(opened) = opened else { continue };
        let rma: serde_json::Value = opened.json().await.unwrap();
        let number = rma["number"].as_str().unwrap().to_string();
        let other = if base == &a_url {
            b.as_ref().map_or(&a_url, |_| &b_url)
        } else {
            &a_url
        };
        let cancel = client
            .post(format!("{other}/api/v1/rmas/{number}/transitions"))
            .bearer_auth(&token)
            .json(&json!({"to": "cancelled", "version": 1, "reason": "flapping alarm"}))
            .send()
            .await;
        if let Ok(res) = cancel
            && res.status() == 200
        {
            acknowledged.push(number);
        }
    }
    assert!(acknowledged.len() >= 25, "{}", acknowledged.len());

    let db = sea_orm::Database::connect(&url).await.unwrap();
    for number in &acknowledged {
        let row = depot::entities::rma::Entity::find()
            .filter(depot::entities::rma::Column::Number.eq(number.as_str()))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "cancelled", "{number} was acknowledged");
    }
    let closed = notification::Entity::find()
        .filter(notification::Column::Template.eq("rma_closed"))
        .all(&db)
        .await
        .unwrap();
    assert!(closed.len() >= acknowledged.len());
    let mails = sink.wait_for(closed.len()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mails = if sink.messages().len() > mails.len() {
        sink.messages()
    } else {
        mails
    };
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), closed.len(), "every queued mail delivered: none lost");
    // SMTP has no transactions: a message the killed instance handed over just before it died, but
    // could not mark as sent, goes out again from the survivor, with the same Message-ID so that
    // the receiving side drops it. At most that one.
    assert!(mails.len() - ids.len() <= 1, "{} duplicates", mails.len() - ids.len());
    // The session still works on the survivor.
    assert_eq!(browser.get(format!("{a_url}/")).send().await.unwrap().status(), 200);
    drop(a);
    db.close().await.unwrap();
}
