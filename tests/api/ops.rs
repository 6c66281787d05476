//! Pagination, the lifecycle and OpenAPI documents, health, metrics and the CLI.
use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn cursor_pagination_walks_every_item_once() {
    let app = spawn_app().await;
    for i in 1..=7 {
        app.open(FE, "cw-ord1", &format!("CN-T01-{i:04}")).await;
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/rmas?limit=3&cursor={c}"),
            None => "/api/v1/rmas?limit=3".into(),
        };
        let page = app.get(FE, &path).await.expect(200);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["number"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    let mut units = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(FE, &format!("/api/v1/units?site=cw-lga1&limit=40&cursor={cursor}"))
            .await
            .expect(200);
        units += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(units, 24 + 64 + 6, "nodes, FRUs and on-site spares at cw-lga1");
}

#[tokio::test]
async fn lifecycle_openapi_health_and_metrics() {
    let app = spawn_app().await;
    let table = app.get(FE, "/api/v1/lifecycle").await.expect(200);
    let ends: Vec<&str> = table["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["end"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(ends, ["restored", "returned_to_stock", "scrapped", "cancelled"]);
    assert_eq!(table["transitions"].as_array().unwrap().len(), 20);

    let doc = app.get(FE, "/api/v1/openapi.json").await.expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/rmas",
        "/api/v1/rmas/{number}/transitions",
        "/api/v1/units",
        "/api/v1/stock",
        "/api/v1/lifecycle",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
    assert!(doc["components"]["schemas"]["RmaView"]["properties"]["replacement_serial"].is_object());

    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert!(
        health.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    app.step(FE, rma["number"].as_str().unwrap(), "diagnosing", json!({}))
        .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("depot_http_requests_total{method=\"POST\",route=\"/api/v1/rmas\",status=\"201\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("depot_transitions_total{to=\"diagnosing\"}"));
    assert!(metrics.contains("depot_http_request_duration_seconds"));
}

#[tokio::test]
async fn transitions_queue_notifications_in_the_same_transaction() {
    use depot::entities::notification;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    app.step(FE, number, "diagnosing", json!({})).await;
    assert_eq!(notification::Entity::find().count(&app.db).await.unwrap(), 0);
    app.step(
        FE,
        number,
        "approved",
        json!({"fault_code": "F", "replacement_kind": "whole_unit"}),
    )
    .await;
    let queued = notification::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].template, "rma_approved");
    let to: Vec<String> = serde_json::from_value(queued[0].recipients.clone()).unwrap();
    assert!(
        to.contains(&"dc-ord1@coreweave.example".to_string()) && to.contains(&FE.to_string()),
        "{to:?}"
    );
}

#[tokio::test]
async fn copy_moves_every_record_to_a_fresh_database() {
    let app = spawn_app().await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &number,
        "approved",
        json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"}),
    )
    .await;
    app.step(
        CAM,
        &number,
        "replacement_shipped",
        json!({"replacement_serial": "CN-CAM-S001", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
    )
    .await;
    app.step(CW_TECH, &number, "replacement_delivered", json!({})).await;
    app.step(
        CW_TECH,
        &number,
        "swapped",
        json!({"installed_serial": "CN-CAM-S001", "pulled_serial": "CN-ORD1-0101"}),
    )
    .await;

    // SQLite to PostgreSQL when PostgreSQL is there (the move the README describes), else to another file.
    use crate::support::{ScratchDb, postgres_admin_url};
    let reachable = sea_orm::Database::connect(postgres_admin_url()).await.is_ok();
    let scratch = ScratchDb::new("copy", reachable, &std::env::temp_dir()).await;
    let target_url = scratch.url.clone();
    let target = sea_orm::Database::connect(&target_url).await.unwrap();
    depot::app::migrate(&target).await.unwrap();
    let counts = depot::services::transfer::copy_all(&app.db, &target).await.unwrap();
    assert!(counts.iter().any(|(t, n)| *t == "unit" && *n > 400), "{counts:?}");
    assert!(
        depot::services::transfer::copy_all(&app.db, &target).await.is_err(),
        "refuses a target with records"
    );
    target.close().await.unwrap();

    let moved = app.another_instance(&[("DATABASE_URL", target_url.clone())]).await;
    let get = |path: String| {
        let client = app.client.clone();
        let token = app.token(FE).to_string();
        async move {
            client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let mut before = app.rma(&number).await;
    let mut after = get(format!("{moved}/api/v1/rmas/{number}")).await;
    for v in [&mut before, &mut after] {
        v.as_object_mut().unwrap().remove("clocks");
    }
    // PostgreSQL keeps microseconds where SQLite kept nanoseconds.
    assert_eq!(
        micros(after),
        micros(before),
        "the RMA reads the same from the copy, with the same token"
    );
    let events = get(format!("{moved}/api/v1/rmas/{number}/events?limit=500")).await["items"].clone();
    assert_eq!(micros(events), micros(json!(app.events(&number).await)));
}

/// The JSON with every RFC 3339 time cut to microseconds.
fn micros(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Value::String(
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            ),
            Err(_) => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(micros).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, micros(v))).collect()),
        other => other,
    }
}

#[tokio::test]
async fn housekeeping_forgets_expired_sessions_and_old_sign_in_windows_only() {
    use depot::entities::{session, sign_in_throttle};
    use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    let fe = depot::services::tokens::authenticate(&app.db, app.token(FE))
        .await
        .unwrap();
    for (hours, token) in [(-1, "old"), (1, "live")] {
        session::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            token_hash: Set(token.into()),
            user_id: Set(fe.user_id),
            csrf_token: Set("x".into()),
            created_at: Set(now),
            expires_at: Set(now + chrono::Duration::hours(hours)),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    for (minutes, email) in [(60, FE), (1, CAM)] {
        sign_in_throttle::ActiveModel {
            email: Set(email.into()),
            attempts: Set(3),
            window_started_at: Set(now - chrono::Duration::minutes(minutes)),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    // The server's own scheduler may get there first; either way only the stale rows go.
    depot::jobs::housekeeping(&app.db, now).await.unwrap();
    assert_eq!(session::Entity::find().count(&app.db).await.unwrap(), 1);
    assert_eq!(sign_in_throttle::Entity::find().count(&app.db).await.unwrap(), 1);
}

/// `fixtures/` holds cases under way, loaded through the services as their people would have made
/// them: a living depot after `make run`, and a second load changes nothing.
#[tokio::test]
async fn the_fixture_folder_holds_cases_in_four_states_and_loads_once() {
    let app = spawn_app().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let first = depot::services::fixtures::load_dir(&app.db, &dir).await.unwrap();
    assert!(first.cases >= 5, "{first:?}");
    let again = depot::services::fixtures::load_dir(&app.db, &dir).await.unwrap();
    assert_eq!(
        (again.cases, again.units, again.users),
        (0, 0, 0),
        "loading twice changes nothing"
    );
    let rmas = app.get(FE, "/api/v1/rmas?limit=100").await.expect(200);
    let items = rmas["items"].as_array().unwrap();
    assert_eq!(items.len(), first.cases);
    let mut states: Vec<&str> = items.iter().map(|r| r["status"].as_str().unwrap()).collect();
    states.sort();
    states.dedup();
    assert!(states.len() >= 4, "{states:?}");
    let waiting = items
        .iter()
        .find(|r| r["severity"] == "sev1" && r["status"] == "reported")
        .expect("an open sev1 waiting for its first response");
    let clock = &app.rma(waiting["number"].as_str().unwrap()).await["clocks"][0];
    assert_eq!(
        (clock["name"].as_str(), clock["state"].as_str()),
        (Some("first_response"), Some("running"))
    );
    // The customer's technician sees them, as cases of their site.
    let theirs = app.get(CW_TECH, "/api/v1/rmas?limit=100").await.expect(200);
    assert_eq!(theirs["items"].as_array().unwrap().len(), first.cases);
}

/// The search box finds an RMA from what people have at hand: its number, the serial or part of
/// it, the hostname or slot from an alert, a ticket reference.
#[tokio::test]
async fn search_finds_an_rma_by_number_serial_part_hostname_slot_and_ticket() {
    let app = spawn_app().await;
    let body = json!({"site": "cw-ord1", "serial": "CN-ORD1-0103", "severity": "sev2", "symptom": "x",
        "external_refs": {"cs_ticket": "CS-48213"}});
    let rma = app.post(FE, "/api/v1/rmas", &body).await.expect(201);
    let number = rma["number"].as_str().unwrap();
    let slot = rma["slot"].as_str().unwrap().to_string();
    for q in [
        number,
        "CN-ORD1-0103",
        "ord1-0103",
        "ORD1-R01-C03",
        &slot,
        "cs-48213",
        "48213",
    ] {
        let found = app.get(FE, &format!("/api/v1/rmas?q={q}")).await.expect(200);
        let numbers: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["number"].as_str().unwrap())
            .collect();
        assert_eq!(numbers, [number], "q={q}");
    }
    let none = app.get(FE, "/api/v1/rmas?q=no-such-host").await.expect(200);
    assert_eq!(none["items"], json!([]));
    // Another customer's technician finds nothing of it, whatever the query.
    for q in ["ord1-r01-c03", "CN-ORD1-0103", "CS-48213"] {
        let theirs = app.get(XAI_TECH, &format!("/api/v1/rmas?q={q}")).await.expect(200);
        assert_eq!(theirs["items"], json!([]), "q={q}");
    }
}

/// The outbox says why nothing is sent when no SMTP server is configured, and only then.
#[tokio::test]
async fn the_outbox_says_when_mail_is_not_configured() {
    let banner = "Mail is not configured";
    let app = spawn_app().await;
    let admin = crate::support::signed_in(&app.base, ADMIN).await;
    let page = crate::support::page_text(&admin, format!("{}/admin/outbox", app.base)).await;
    assert!(page.contains(banner), "no SMTP_URL: said");
    let with_mail = spawn_app_with(&[("SMTP_URL", "smtp://127.0.0.1:2525".to_string())]).await;
    let admin = crate::support::signed_in(&with_mail.base, ADMIN).await;
    let page = crate::support::page_text(&admin, format!("{}/admin/outbox", with_mail.base)).await;
    assert!(!page.contains(banner), "SMTP_URL set: not said");
}

/// Saving the RMA page's three references keeps the others (an alarm's or a fixture's ticket), so
/// a fixture case stays recognised by its ticket and a second load still adds nothing.
#[tokio::test]
async fn the_reference_form_keeps_other_references_and_fixture_cases_stay_loaded_once() {
    let app = spawn_app().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    depot::services::fixtures::load_dir(&app.db, &dir).await.unwrap();
    let found = app.get(FE, "/api/v1/rmas?q=INC-DEMO-1002").await.expect(200);
    let rma = &found["items"][0];
    let number = rma["number"].as_str().unwrap();
    let page = crate::support::signed_in(&app.base, FE).await;
    let url = format!("{}/rmas/{number}", app.base);
    let csrf = crate::support::form_csrf(&page, &url).await;
    let version = rma["version"].to_string();
    let res = page
        .post(format!("{url}/refs"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("version", version.as_str()),
            ("cs_ticket", "CS-777"),
            ("engineering_ticket", ""),
            ("chat_thread", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let refs = &app.rma(number).await["external_refs"];
    assert_eq!(refs["cs_ticket"], "CS-777");
    assert_eq!(refs["ticket"], "INC-DEMO-1002", "the fixture's ticket is kept: {refs}");
    let again = depot::services::fixtures::load_dir(&app.db, &dir).await.unwrap();
    assert_eq!(again.cases, 0, "still loaded once");
}
