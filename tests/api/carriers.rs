//! Carrier tracking in: EasyPost webhook events built and signed with EasyPost's own library, and
//! the normalised scan endpoint with an integration user's token.
use crate::helpers::*;
use depot::entities::notification;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const SECRET: &str = "whsec-depot-test";
const UPS: &str = "1Z999AA10123456784";

/// An EasyPost Event for `tracking_code` with these scans, and its `X-Hmac-Signature`, from
/// tests/integrations/easypost_event.py (checked there by `easypost.util.validate_webhook`).
fn easypost_event(secret: &str, spec: Value) -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/easypost_event.py");
    let out = std::process::Command::new("python3")
        .args([script, secret, &spec.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "easypost_event.py (pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        made["body"].as_str().unwrap().into(),
        made["signature"].as_str().unwrap().into(),
    )
}

async fn post_easypost(app: &TestApp, body: &str, signature: Option<&str>) -> Answer {
    let mut req = app
        .client
        .post(format!("{}/api/v1/integrations/carriers/easypost", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(sig) = signature {
        req = req.header("X-Hmac-Signature", sig);
    }
    TestApp::answer(req.send().await.unwrap()).await
}

/// A CoreWeave RMA whose replacement has shipped from CAM with UPS `tracking`.
async fn shipped(app: &TestApp, serial: &str, tracking: &str) -> (String, String) {
    let number = app.approved(CW_TECH, "cw-ord1", serial, None).await;
    let spare = app.stock_unit("CAM", "CN-5000").await;
    let ship = json!({"replacement_serial": spare, "carrier": "UPS", "tracking_number": tracking});
    app.step(CAM, &number, "replacement_shipped", ship).await;
    (number, spare)
}

async fn trouble_alerts(app: &TestApp) -> u64 {
    notification::Entity::find()
        .filter(notification::Column::Template.eq("shipment_trouble"))
        .filter(notification::Column::Channel.eq("email"))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_easypost_delivered_scan_stops_the_clock_at_the_carriers_time() {
    let app = spawn_app_with(&[("EASYPOST_WEBHOOK_SECRET", SECRET.into())]).await;
    let (number, spare) = shipped(&app, "CN-ORD1-0102", UPS).await;
    let spec = json!({"id": "evt_delivered_1", "tracking_code": UPS, "carrier": "UPS", "status": "delivered",
        "details": [
            {"status": "pre_transit", "datetime": "2026-12-01T08:00:00Z", "message": "Label created"},
            {"status": "in_transit", "datetime": "2026-12-01T20:15:00Z", "message": "Departed", "city": "San Jose", "state": "CA"},
            {"status": "delivered", "datetime": "2026-12-02T09:41:00Z", "message": "Delivered, dock", "city": "Chicago", "state": "IL"}]});
    let (body, signature) = easypost_event(SECRET, spec);

    // Refused without the right signature, and nothing changes.
    let before = app.snapshot(&number).await;
    let (_, other_signature) = easypost_event(
        "another secret",
        json!({"id": "evt_delivered_1", "tracking_code": UPS,
        "carrier": "UPS", "status": "delivered", "details": []}),
    );
    for sig in [
        None,
        Some("hmac-sha256-hex=00"),
        Some(other_signature.as_str()),
        Some("sha256=abc"),
    ] {
        post_easypost(&app, &body, sig).await.expect(401);
    }
    let tampered = body.replace("Delivered, dock", "Delivered, roof");
    post_easypost(&app, &tampered, Some(&signature)).await.expect(401);
    assert_eq!(app.snapshot(&number).await, before);

    let taken = post_easypost(&app, &body, Some(&signature)).await.expect(200);
    assert_eq!(
        (taken["matched"].as_bool(), taken["recorded"].as_u64()),
        (Some(true), Some(3))
    );
    let rma = app.rma(&number).await;
    assert_eq!(rma["status"], "replacement_delivered");
    let outbound = &rma["shipments"][0];
    assert_eq!(
        outbound["delivered_at"], "2026-12-02T09:41:00Z",
        "the carrier's scan time"
    );
    let scans: Vec<&str> = outbound["scans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(scans, ["pre_transit", "in_transit", "delivered"]);
    assert_eq!(outbound["scans"][1]["location"], "San Jose, CA, US");
    let unit = app.unit(&spare).await;
    assert_eq!(
        (unit["location"].as_str(), unit["site"].as_str()),
        (Some("site"), Some("cw-ord1"))
    );
    let events = app.events(&number).await;
    let delivered = events.iter().find(|e| e["to"] == "replacement_delivered").unwrap();
    assert_eq!(
        delivered["actor"], "easypost@integrations.depot",
        "audited as the integration"
    );
    assert_eq!(events.iter().filter(|e| e["kind"] == "tracking_scan").count(), 3);

    // A replay of the same event id changes nothing and answers 200.
    let after = app.snapshot(&number).await;
    let replay = post_easypost(&app, &body, Some(&signature)).await.expect(200);
    assert_eq!(replay["duplicate"], "evt_delivered_1");
    // So does a new event repeating the same scans.
    let again = easypost_event(
        SECRET,
        json!({"id": "evt_delivered_2", "tracking_code": UPS, "carrier": "UPS",
        "status": "delivered", "details": [{"status": "delivered", "datetime": "2026-12-02T09:41:00Z", "message": "Delivered, dock", "city": "Chicago", "state": "IL"}]}),
    );
    assert_eq!(
        post_easypost(&app, &again.0, Some(&again.1)).await.expect(200)["recorded"],
        0
    );
    assert_eq!(app.snapshot(&number).await, after);

    // The page shows the timeline.
    let fe = crate::support::signed_in(&app.base, FE).await;
    let page = crate::support::page(&fe, &format!("{}/rmas/{number}", app.base)).await;
    assert!(
        page.contains("Tracking of outbound UPS") && page.contains("Delivered, dock"),
        "timeline on the page"
    );
}

#[tokio::test]
async fn easypost_trouble_alerts_once_and_unknown_numbers_wait_for_an_admin() {
    let app = spawn_app_with(&[("EASYPOST_WEBHOOK_SECRET", SECRET.into())]).await;
    let (number, _) = shipped(&app, "CN-ORD1-0103", UPS).await;
    let exception = |id: &str| {
        easypost_event(
            SECRET,
            json!({"id": id, "tracking_code": UPS, "carrier": "UPS", "status": "failure",
            "details": [{"status": "failure", "datetime": "2026-12-02T07:00:00Z", "message": "Address not found"}]}),
        )
    };
    let (body, sig) = exception("evt_fail_1");
    post_easypost(&app, &body, Some(&sig)).await.expect(200);
    assert_eq!(trouble_alerts(&app).await, 1);
    let (body, sig) = exception("evt_fail_2");
    post_easypost(&app, &body, Some(&sig)).await.expect(200);
    assert_eq!(
        trouble_alerts(&app).await,
        1,
        "one alert for one scan, however often it is reported"
    );
    assert_eq!(app.rma(&number).await["status"], "replacement_shipped");

    // An unknown tracking number: 200 (or EasyPost retries), kept and listed for admins only.
    let (body, sig) = easypost_event(
        SECRET,
        json!({"id": "evt_unknown", "tracking_code": "9400111899223344556677",
        "carrier": "USPS", "status": "in_transit", "details": [{"status": "in_transit", "datetime": "2026-12-02T07:00:00Z"}]}),
    );
    let taken = post_easypost(&app, &body, Some(&sig)).await.expect(200);
    assert_eq!(taken["matched"], false);
    let listed = app
        .get(ADMIN, "/api/v1/integrations/carriers/unmatched")
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["tracking_number"], "9400111899223344556677");
    app.get(FE, "/api/v1/integrations/carriers/unmatched").await.expect(403);
    let admin = crate::support::signed_in(&app.base, ADMIN).await;
    let page = crate::support::page(&admin, &format!("{}/admin/signals", app.base)).await;
    assert!(page.contains("9400111899223344556677"));

    // A status EasyPost adds later is kept as `unknown`, not refused (EasyPost would retry forever).
    let (body, sig) = easypost_event(
        SECRET,
        json!({"id": "evt_new_status", "tracking_code": UPS, "carrier": "UPS", "status": "held_at_customs",
            "details": [{"status": "held_at_customs", "datetime": "2026-12-02T08:00:00Z"}]}),
    );
    assert_eq!(post_easypost(&app, &body, Some(&sig)).await.expect(200)["recorded"], 1);
    let rma = app.rma(&number).await;
    let last = rma["shipments"][0]["scans"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "unknown");

    // Malformed and oversized bodies are refused in the contract's shape, signed or not.
    let junk = "{not json";
    let junk_sig = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(junk.as_bytes());
        format!("hmac-sha256-hex={}", hex::encode(mac.finalize().into_bytes()))
    };
    post_easypost(&app, junk, Some(&junk_sig)).await.expect(400);
    post_easypost(&app, &"x".repeat(300 * 1024), Some("hmac-sha256-hex=00"))
        .await
        .expect(413);
}

#[tokio::test]
async fn without_a_secret_easypost_is_refused() {
    let app = spawn_app().await;
    let (body, sig) = easypost_event(
        SECRET,
        json!({"id": "evt_1", "tracking_code": UPS, "carrier": "UPS",
        "status": "in_transit", "details": []}),
    );
    post_easypost(&app, &body, Some(&sig)).await.expect(401);
}

#[tokio::test]
async fn the_scan_endpoint_takes_an_integration_token_only() {
    let app = spawn_app().await;
    let (number, _) = shipped(&app, "CN-ORD1-0104", UPS).await;
    let path = format!("/api/v1/shipments/{UPS}/events");
    let delivered = json!({"status": "delivered", "at": "2026-12-02T10:05:00Z", "location": "Chicago, IL"});
    let before = app.snapshot(&number).await;
    for who in [FE, ADMIN, CAM, CW_TECH] {
        app.post(who, &path, &delivered).await.expect(403);
    }
    let anonymous = app
        .client
        .post(format!("{}{path}", app.base))
        .json(&delivered)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.post(
        INTEGRATION,
        &path,
        &json!({"status": "teleported", "at": "2026-12-02T10:05:00Z"}),
    )
    .await
    .expect(422);
    app.post(INTEGRATION, &path, &json!({"status": "delivered"}))
        .await
        .expect(422);
    app.post_raw(INTEGRATION, &path, "{\"status\":").await.expect(400);
    assert_eq!(app.snapshot(&number).await, before);
    // The integration may report signals and do nothing else.
    app.get(INTEGRATION, "/api/v1/rmas").await.expect(403);
    app.get(INTEGRATION, &format!("/api/v1/rmas/{number}"))
        .await
        .expect(403);

    let taken = app
        .post(INTEGRATION, &path.to_lowercase(), &delivered)
        .await
        .expect(200);
    assert_eq!(taken["rma_status"], "replacement_delivered");
    let rma = app.rma(&number).await;
    assert_eq!(rma["shipments"][0]["delivered_at"], "2026-12-02T10:05:00Z");
    let events = app.events(&number).await;
    assert_eq!(events.last().unwrap()["actor"], INTEGRATION);

    let unknown = app
        .post(INTEGRATION, "/api/v1/shipments/NOT-A-SHIPMENT/events", &delivered)
        .await
        .expect(202);
    assert_eq!(unknown["matched"], false);

    // The SLA report counts the clock time the scan saved: from the scan to the next time a
    // person acted on the RMA (here the swap).
    let spare = rma["replacement_serial"].as_str().unwrap().to_string();
    let swap = json!({"installed_serial": spare, "pulled_serial": "CN-ORD1-0104"});
    let swapped = app.step(CW_TECH, &number, "swapped", swap).await;
    let swapped_at = chrono::DateTime::parse_from_rfc3339(swapped["status_changed_at"].as_str().unwrap()).unwrap();
    let scanned = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:05:00Z").unwrap();
    let report = app
        .get(FE, "/api/v1/reports/sla?organization=coreweave&month=2026-12")
        .await
        .expect(200);
    assert_eq!(report["signals"]["carrier_confirmed_deliveries"], 1);
    assert_eq!(report["signals"]["rmas"], json!([number]));
    let saved = report["signals"]["clock_seconds_saved"].as_i64().unwrap();
    assert!((saved - (swapped_at - scanned).num_seconds()).abs() <= 1, "{saved}");
}

#[tokio::test]
async fn a_tracked_box_without_a_scan_for_a_day_alerts_once() {
    let app = spawn_app().await;
    let (_, _) = shipped(&app, "CN-ORD1-0105", UPS).await;
    let now = chrono::Utc::now();
    // Minutes past the 30th hour: PostgreSQL rounds a time to the microsecond, which may put a scan
    // of exactly 30 hours ago a fraction of a microsecond under 30 hours.
    let last_scan = now - chrono::Duration::hours(30) - chrono::Duration::minutes(5);
    let scan = json!({"status": "in_transit", "at": last_scan.to_rfc3339()});
    app.post(INTEGRATION, &format!("/api/v1/shipments/{UPS}/events"), &scan)
        .await
        .expect(200);
    depot::jobs::quiet_shipments(&app.db, BASE_URL, now).await.unwrap();
    depot::jobs::quiet_shipments(&app.db, BASE_URL, now + chrono::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(trouble_alerts(&app).await, 1);
    let alert = notification::Entity::find()
        .filter(notification::Column::Template.eq("shipment_trouble"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(alert.subject.unwrap_or_default().contains("no scan for 30 hours"));
}
