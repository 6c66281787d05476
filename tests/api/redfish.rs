//! BMC telemetry: a subscription made on a node's BMC (tests/integrations/bmc.py, answering as
//! DMTF's resources do), then that BMC's Redfish events read as faults with a recommendation, the
//! node's SEL attached, replays and storms folded, and bad requests refused.
use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "5f2b7c1d9e0a4b3c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
const BMC_PASSWORD: &str = "calvin-not-default";

/// The BMC process; killed when dropped.
struct Bmc {
    child: std::process::Child,
    url: String,
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_bmc() -> Bmc {
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/bmc.py");
    let child = std::process::Command::new("python3")
        .args([script, &port.to_string(), "root", BMC_PASSWORD])
        .spawn()
        .expect("python3 runs");
    // Dropping it kills and waits for the process.
    let bmc = Bmc {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/test/subscriptions", bmc.url)).await.is_ok() {
            return bmc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the BMC did not start");
}

/// Subscribes `serial` through the unit page as an admin; returns the subscription the BMC got.
async fn subscribe(app: &TestApp, bmc: &Bmc, serial: &str) -> Value {
    let admin = crate::support::signed_in(&app.base, ADMIN).await;
    let page = format!("{}/units/{serial}", app.base);
    let csrf = crate::support::form_csrf(&admin, &page).await;
    let res = admin
        .post(format!("{page}/bmc"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", &bmc.url),
            ("user", "root"),
            ("password", BMC_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let subs: Vec<Value> = reqwest::get(format!("{}/test/subscriptions", bmc.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    subs.into_iter()
        .find(|s| s["Context"] == serial)
        .expect("the BMC holds the subscription")
}

/// A Redfish Event as a BMC sends it (DSP0268 `Event`).
fn event(serial: &str, events: Vec<Value>) -> Value {
    json!({"@odata.type": "#Event.v1_7_0.Event", "Id": "1", "Name": "Event Array", "Context": serial, "Events": events})
}

fn record(id: &str, message_id: &str, severity: &str, origin: &str, message: &str) -> Value {
    json!({"EventType": "Alert", "EventId": id, "EventTimestamp": "2026-12-03T20:01:12Z", "Severity": severity,
        "MessageSeverity": severity, "Message": message, "MessageId": message_id, "MessageArgs": ["2"],
        "OriginOfCondition": {"@odata.id": origin}})
}

async fn send(app: &TestApp, token: &str, body: &Value) -> Answer {
    let res = app
        .client
        .post(format!("{}/api/v1/integrations/redfish", app.base))
        .header("authorization", token)
        .json(body)
        .send()
        .await
        .unwrap();
    TestApp::answer(res).await
}

#[tokio::test]
async fn a_bmc_event_opens_an_rma_with_a_recommendation_and_the_sel() {
    let app = spawn_app_with(&[
        ("DEPOT_SECRET_KEY", KEY.into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
    ])
    .await;
    let bmc = start_bmc().await;
    let sub = subscribe(&app, &bmc, "DN-ORD1-0101").await;
    assert_eq!(sub["Destination"], format!("{BASE_URL}/api/v1/integrations/redfish"));
    assert_eq!(sub["Protocol"], "Redfish");
    let authorization = sub["HttpHeaders"][0]["Authorization"].as_str().unwrap().to_string();
    assert!(authorization.starts_with("Bearer "));
    // The BMC's password is kept sealed.
    use sea_orm::EntityTrait;
    let stored = depot::entities::bmc_subscription::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].credentials_sealed.contains(BMC_PASSWORD) && !stored[0].credentials_sealed.contains("root"));

    let fan = event(
        "DN-ORD1-0101",
        vec![record(
            "101",
            "ResourceEvent.1.0.ResourceErrorsDetected",
            "Critical",
            "/redfish/v1/Chassis/1/Thermal#/Fans/1",
            "Fan 2 speed below lower critical threshold",
        )],
    );
    let opened = send(&app, &authorization, &fan).await.expect(201);
    let number = opened["rma"].as_str().unwrap().to_string();
    assert_eq!(opened["recommendation"]["action"], "replace_fru");
    assert_eq!(opened["recommendation"]["part"], "FAN-80MM");
    let rma = app.rma(&number).await;
    assert_eq!(
        (rma["status"].as_str(), rma["severity"].as_str()),
        (Some("reported"), Some("sev2"))
    );
    assert_eq!(rma["recommendation"]["fault_code"], "FAN_FAIL");
    // The SEL is read back from the BMC after the answer, and attached as evidence.
    let mut attached = Value::Null;
    for _ in 0..100 {
        let attachments = app
            .get(FE, &format!("/api/v1/rmas/{number}/attachments"))
            .await
            .expect(200);
        attached = attachments["items"][0]["file_name"].clone();
        if !attached.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attached, "bmc-sel.json", "the SEL is attached as evidence");
    let fe = crate::support::signed_in(&app.base, FE).await;
    let page = crate::support::page(&fe, &format!("{}/rmas/{number}", app.base)).await;
    assert!(
        page.contains("Recommended: replace fru FAN-80MM") && page.contains("Fan failed"),
        "the page says what and why"
    );

    // The BMC resends (it retries until it hears 2xx): recorded once, nothing new.
    let events_before = app.events(&number).await.len();
    let again = send(&app, &authorization, &fan).await.expect(200);
    assert_eq!(
        (again["recorded"].as_u64(), again["rma"].as_str()),
        (Some(0), Some(number.as_str()))
    );
    assert_eq!(app.events(&number).await.len(), events_before);

    // Another event of the same node within the window joins the same RMA.
    let psu = event(
        "DN-ORD1-0101",
        vec![record(
            "102",
            "ResourceEvent.1.0.ResourceErrorsDetected",
            "Warning",
            "/redfish/v1/Chassis/1/Power#/PowerSupplies/0",
            "PSU 1 input lost",
        )],
    );
    assert_eq!(
        send(&app, &authorization, &psu).await.expect(200)["rma"],
        number.as_str()
    );

    // A storm: more than ten events in the hour are folded into one note.
    let storm: Vec<Value> = (0..12)
        .map(|i| {
            record(
                &format!("2{i:02}"),
                "ResourceEvent.1.0.ResourceErrorsDetected",
                "Warning",
                "/redfish/v1/Chassis/1/Thermal#/Fans/1",
                "Fan 2 speed low",
            )
        })
        .collect();
    let folded = send(&app, &authorization, &event("DN-ORD1-0101", storm.clone()))
        .await
        .expect(200);
    assert_eq!(folded["storm"], true);
    let more: Vec<Value> = storm
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["EventId"] = json!(format!("3{}", r["EventId"].as_str().unwrap()));
            r
        })
        .collect();
    send(&app, &authorization, &event("DN-ORD1-0101", more))
        .await
        .expect(200);
    let notes = app
        .events(&number)
        .await
        .iter()
        .filter(|e| e["kind"] == "bmc_storm")
        .count();
    assert_eq!(notes, 1, "one note for the storm's hour");
}

#[tokio::test]
async fn recommendations_follow_the_replacement_policy_and_bad_events_are_refused() {
    let app = spawn_app_with(&[
        ("DEPOT_SECRET_KEY", KEY.into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
    ])
    .await;
    let token = format!("Bearer {}", app.token(INTEGRATION));
    // A C-node's DIMM is not swapped in the field: the whole node.
    let dimm = event(
        "CN-T01-0040",
        vec![record(
            "7",
            "Memory.1.0.MemoryECCUncorrectable",
            "Critical",
            "/redfish/v1/Systems/1/Memory/DIMM_A1",
            "Uncorrectable ECC error on DIMM A1",
        )],
    );
    let opened = send(&app, &token, &dimm).await.expect(201);
    assert_eq!(opened["recommendation"]["action"], "replace_node");
    // A fan in a C-node: also the whole node, and the reason says so.
    let fan = event(
        "CN-T01-0041",
        vec![record(
            "8",
            "ResourceEvent.1.0.ResourceErrorsDetected",
            "Critical",
            "/redfish/v1/Chassis/1/Thermal#/Fans/0",
            "Fan 1 failed",
        )],
    );
    let opened = send(&app, &token, &fan).await.expect(201);
    assert_eq!(opened["recommendation"]["action"], "replace_node");
    assert!(opened["recommendation"]["why"].as_str().unwrap().contains("C-node"));
    // Information only: recorded, no RMA.
    let ok = event(
        "CN-T01-0042",
        vec![record(
            "9",
            "ResourceEvent.1.0.ResourceStatusChangedOK",
            "OK",
            "/redfish/v1/Chassis/1",
            "back to normal",
        )],
    );
    assert_eq!(send(&app, &token, &ok).await.expect(200)["rma"], Value::Null);

    // Refusals: no token, a person's token, no such node, malformed, empty.
    let no_token = app
        .client
        .post(format!("{}/api/v1/integrations/redfish", app.base))
        .json(&fan)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    send(&app, &format!("Bearer {}", app.token(FE)), &fan).await.expect(403);
    let err = send(
        &app,
        &token,
        &event("NO-SUCH-NODE", vec![record("1", "x", "Critical", "/", "x")]),
    )
    .await
    .expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("NO-SUCH-NODE"));
    send(&app, &token, &json!({"Context": "CN-T01-0041", "Events": []}))
        .await
        .expect(422);
    send(
        &app,
        &token,
        &json!({"Context": "CN-T01-0041", "Events": [{"Message": "no MessageId"}]}),
    )
    .await
    .expect(422);
    let raw = app
        .post_raw(INTEGRATION, "/api/v1/integrations/redfish", "{\"Context\":")
        .await;
    raw.expect(400);
    let huge = format!(
        r#"{{"Context": "CN-T01-0041", "Padding": "{}"}}"#,
        "x".repeat(300 * 1024)
    );
    app.post_raw(INTEGRATION, "/api/v1/integrations/redfish", huge)
        .await
        .expect(413);

    // Admins edit the rules; others read them.
    let rules = app.get(FE, "/api/v1/integrations/redfish/rules").await.expect(200);
    assert!(
        rules["items"].as_array().unwrap().len() >= 6,
        "seeded for fans, PSUs, DIMMs, SSDs, temperature, links"
    );
    let link_rule = json!({"message_id_contains": "LinkDown", "origin_contains": "", "fault_code": "LINK_DOWN",
        "severity": "sev1", "action": "reseat", "part": null, "description": "Uplink down"});
    app.put(FE, "/api/v1/integrations/redfish/rules/5", &link_rule)
        .await
        .expect(403);
    app.put(ADMIN, "/api/v1/integrations/redfish/rules/5", &link_rule)
        .await
        .expect(204);
    let mut bad = link_rule.clone();
    bad["action"] = json!("replace_fru");
    app.put(ADMIN, "/api/v1/integrations/redfish/rules/6", &bad)
        .await
        .expect(422);
    let link = event(
        "CN-T01-0043",
        vec![record(
            "11",
            "NetworkDevice.1.0.LinkDown",
            "Critical",
            "/redfish/v1/Chassis/1/NetworkAdapters/1",
            "Port 1 link down",
        )],
    );
    let opened = send(&app, &token, &link).await.expect(201);
    assert_eq!(
        (
            opened["recommendation"]["action"].as_str(),
            opened["recommendation"]["severity"].as_str()
        ),
        (Some("reseat"), Some("sev1"))
    );
}

#[tokio::test]
async fn depot_bmc_subscribe_from_the_command_line() {
    let app = spawn_app().await;
    let bmc = start_bmc().await;
    let out = crate::support::depot(&app.database_url)
        .args(["bmc", "subscribe", "CN-T01-0044", &bmc.url, "--user", "root"])
        .env("BMC_PASSWORD", BMC_PASSWORD)
        .env("DEPOT_SECRET_KEY", KEY)
        .env("DEPOT_WEBHOOK_ALLOW", "127.0.0.1")
        .env("DEPOT_BASE_URL", BASE_URL)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/redfish/v1/EventService/Subscriptions/1"));
    // Without the key there is nowhere safe to keep the password: refused.
    let refused = crate::support::depot(&app.database_url)
        .args(["bmc", "subscribe", "CN-T01-0044", &bmc.url])
        .env("BMC_PASSWORD", BMC_PASSWORD)
        .env("DEPOT_WEBHOOK_ALLOW", "127.0.0.1")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DEPOT_SECRET_KEY"));
    // A wrong password: the BMC refuses, depot says so.
    let wrong = crate::support::depot(&app.database_url)
        .args(["bmc", "subscribe", "CN-T01-0044", &bmc.url])
        .env("BMC_PASSWORD", "wrong")
        .env("DEPOT_SECRET_KEY", KEY)
        .env("DEPOT_WEBHOOK_ALLOW", "127.0.0.1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"));
}
