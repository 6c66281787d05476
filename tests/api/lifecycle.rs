//! Every row of the lifecycle table, read from `GET /api/v1/lifecycle`: allowed for each role that may,
//! refused for every other role (403), from every other status (409) and with each required field
//! missing (422), and a refusal changes nothing.
use crate::helpers::*;
use serde_json::{Value, json};

/// The acting user for a role on a CoreWeave RMA returning to CAM.
fn actor(role: &str) -> &'static str {
    match role {
        "field_engineer" => FE,
        "depot_tech" => CAM,
        "dc_tech" => CW_TECH,
        "admin" => ADMIN,
        "integration" => INTEGRATION,
        other => panic!("unknown role {other}"),
    }
}

const ROLES: [&str; 5] = ["field_engineer", "depot_tech", "dc_tech", "admin", "integration"];

/// The statuses to pass through, after `reported`, to reach `target`.
fn path_to(target: &str) -> Vec<&'static str> {
    let through_triage = [
        "diagnosing",
        "approved",
        "replacement_shipped",
        "replacement_delivered",
        "swapped",
        "return_shipped",
        "received",
        "triage",
    ];
    let path: Vec<&'static str> = match target {
        "reported" => vec![],
        "diagnosing" => vec!["diagnosing"],
        "restored" => vec!["diagnosing", "restored"],
        "approved" => vec!["diagnosing", "approved"],
        "cancelled" => vec!["cancelled"],
        _ => {
            let stop = through_triage.iter().position(|s| *s == target);
            match stop {
                Some(i) => through_triage[..=i].to_vec(),
                None => {
                    let mut p = through_triage.to_vec();
                    match target {
                        "repair" => p.push("repair"),
                        "testing" => p.push("testing"),
                        "vendor_escalated" => p.push("vendor_escalated"),
                        "scrapped" => p.push("scrapped"),
                        "returned_to_stock" => p.extend(["testing", "returned_to_stock"]),
                        other => panic!("no path to {other}"),
                    }
                    p
                }
            }
        }
    };
    path
}

/// A complete, valid body for moving `rma` to `to`.
async fn fields_for(app: &TestApp, rma: &Value, to: &str) -> Value {
    let from = rma["status"].as_str().unwrap();
    match (from, to) {
        (_, "restored") => json!({"resolution": "reseated the DIMM; memtest clean"}),
        (_, "approved") => json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"}),
        (_, "replacement_shipped") => json!({
            "replacement_serial": app.stock_unit("CAM", rma["part"].as_str().unwrap()).await,
            "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        ("approved", "swapped") => {
            let spares = app.get(FE, "/api/v1/units?q=CN-ORD1-TSP&limit=50").await.expect(200);
            let spare = spares["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["slot"].is_null() && u["location"] == "site")
                .expect("a spare on site");
            json!({"spare_serial": spare["serial"]})
        }
        (_, "swapped") => json!({"installed_serial": rma["replacement_serial"], "pulled_serial": rma["serial"]}),
        (_, "return_shipped") => json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "CAM"}),
        (_, "received") => json!({"scanned_serial": rma["returned_serial"]}),
        ("triage", "repair") => json!({"finding": "DIMM A1 uncorrectable errors"}),
        ("triage", "testing") => json!({"finding": "no fault found"}),
        ("repair", "testing") => json!({"parts_consumed": []}),
        ("vendor_escalated", "testing") => json!({"vendor_return_reference": "SMC-RET-77"}),
        (_, "vendor_escalated") => json!({"vendor": "Supermicro", "vendor_reference": "SMC-RMA-77"}),
        (_, "returned_to_stock") => json!({"test_results": [{"name": "burn-in 24h", "passed": true}]}),
        ("testing", "repair") => json!({"test_results": [{"name": "memtest", "passed": false}]}),
        ("swapped", "scrapped") => json!({"destruction_certificate": "DESTR-CW-77"}),
        (_, "scrapped") | (_, "cancelled") => json!({"reason": "beyond economic repair"}),
        _ => json!({}),
    }
}

/// Which role drives a row when no particular one is being tested.
fn driver(row: &Value) -> &'static str {
    actor(row["roles"][0].as_str().unwrap())
}

struct Table {
    rows: Vec<Value>,
}

impl Table {
    async fn load(app: &TestApp) -> Table {
        let table = app.get(FE, "/api/v1/lifecycle").await.expect(200);
        Table {
            rows: table["transitions"].as_array().unwrap().clone(),
        }
    }

    fn row(&self, from: &str, to: &str) -> &Value {
        self.rows
            .iter()
            .find(|r| r["to"] == to && r["from"].as_array().unwrap().iter().any(|f| f == from))
            .unwrap_or_else(|| panic!("no row {from} -> {to}"))
    }

    /// Every (from, to) pair of the table.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![];
        for r in &self.rows {
            for f in r["from"].as_array().unwrap() {
                pairs.push((f.as_str().unwrap().to_string(), r["to"].as_str().unwrap().to_string()));
            }
        }
        pairs
    }
}

/// Opens a fresh CoreWeave C-node RMA and drives it to `target`.
async fn rma_at(app: &TestApp, table: &Table, n: &mut Opened, target: &str) -> String {
    n.cnodes += 1;
    rma_on(app, table, &format!("CN-T01-{:04}", n.cnodes), target, false).await
}

/// How many RMAs a test opened: C-nodes of the test rack, and keep-your-drive D-nodes.
#[derive(Default)]
struct Opened {
    cnodes: usize,
    kept: usize,
}

/// A fresh RMA in `from` that the row `from -> to` exists for. The destruction-certificate row is
/// there only for keep-your-drive RMAs: a CoreWeave D-node (its drives hold customer data).
async fn rma_for(app: &TestApp, table: &Table, n: &mut Opened, from: &str, to: &str) -> String {
    if (from, to) != ("swapped", "scrapped") {
        return rma_at(app, table, n, from).await;
    }
    n.kept += 1;
    rma_on(app, table, &format!("DN-ORD1-01{:02}", n.kept), from, true).await
}

/// Opens an RMA on `serial` and drives it to `target`; with `kept`, approved as keep-your-drive.
async fn rma_on(app: &TestApp, table: &Table, serial: &str, target: &str, kept: bool) -> String {
    let rma = app.open(FE, "cw-ord1", serial).await;
    let number = rma["number"].as_str().unwrap().to_string();
    let mut current = "reported".to_string();
    for to in path_to(target) {
        let rma = app.rma(&number).await;
        let mut body = fields_for(app, &rma, to).await;
        if kept && to == "approved" {
            body["keep_your_drive"] = json!(true);
        }
        app.step(driver(table.row(&current, to)), &number, to, body).await;
        current = to.to_string();
    }
    number
}

#[tokio::test]
async fn every_row_is_allowed_for_each_of_its_roles() {
    let app = spawn_app().await;
    let table = Table::load(&app).await;
    let mut n = Opened::default();
    for (from, to) in table.pairs() {
        let row = table.row(&from, &to);
        for role in row["roles"].as_array().unwrap() {
            let number = rma_for(&app, &table, &mut n, &from, &to).await;
            let before = app.rma(&number).await;
            let body = fields_for(&app, &before, &to).await;
            let after = match role.as_str().unwrap() {
                // An integration moves an RMA by the signal it reports: the carrier's delivered scan.
                "integration" => {
                    let tracking = before["shipments"][0]["tracking_number"].as_str().unwrap();
                    let scan = json!({"status": "delivered", "at": chrono::Utc::now().to_rfc3339()});
                    app.post(INTEGRATION, &format!("/api/v1/shipments/{tracking}/events"), &scan)
                        .await
                        .expect(200);
                    app.rma(&number).await
                }
                role => app.try_move(actor(role), &number, &to, body).await.expect(200),
            };
            assert_eq!(after["status"], to.as_str(), "{from} -> {to} by {role}");
            assert_eq!(after["version"], before["version"].as_i64().unwrap() + 1);
            let events = app.events(&number).await;
            let last = events.last().unwrap();
            assert_eq!(
                (last["from"].as_str(), last["to"].as_str()),
                (Some(from.as_str()), Some(to.as_str()))
            );
            assert_eq!(last["actor"], actor(role.as_str().unwrap()));
        }
    }
}

#[tokio::test]
async fn every_row_is_refused_for_every_other_role() {
    let app = spawn_app().await;
    let table = Table::load(&app).await;
    let mut n = Opened::default();
    for (from, to) in table.pairs() {
        let row = table.row(&from, &to);
        let number = rma_for(&app, &table, &mut n, &from, &to).await;
        let rma = app.rma(&number).await;
        let body = fields_for(&app, &rma, &to).await;
        let before = app.snapshot(&number).await;
        for role in ROLES
            .iter()
            .filter(|r| !row["roles"].as_array().unwrap().iter().any(|x| x == *r))
        {
            let answer = app.try_move(actor(role), &number, &to, body.clone()).await;
            let err = answer.expect(403);
            assert!(err["error"]["message"].as_str().unwrap().contains(role), "{err}");
            assert_eq!(
                app.snapshot(&number).await,
                before,
                "{from} -> {to} by {role} changed something"
            );
        }
    }
}

#[tokio::test]
async fn every_target_is_refused_from_every_other_status() {
    let app = spawn_app().await;
    let table = Table::load(&app).await;
    let statuses: Vec<String> = app.get(FE, "/api/v1/lifecycle").await.expect(200)["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses.len(), 16);
    let mut n = Opened::default();
    for from in &statuses {
        let number = rma_at(&app, &table, &mut n, from).await;
        let before = app.snapshot(&number).await;
        let rma = &before["rma"];
        for row in &table.rows {
            let to = row["to"].as_str().unwrap();
            if row["from"].as_array().unwrap().iter().any(|f| f == from)
                || table.pairs().iter().any(|(f, t)| f == from && t == to)
            {
                continue;
            }
            let body = fields_for(&app, rma, to).await;
            let err = app.try_move(driver(row), &number, to, body).await.expect(409);
            assert!(
                err["error"]["message"].as_str().unwrap().contains(from.as_str()),
                "{err}"
            );
        }
        assert_eq!(
            app.snapshot(&number).await,
            before,
            "a refusal from {from} changed something"
        );
    }
}

#[tokio::test]
async fn every_required_field_is_enforced() {
    let app = spawn_app().await;
    let table = Table::load(&app).await;
    let mut n = Opened::default();
    for (from, to) in table.pairs() {
        let row = table.row(&from, &to);
        let required: Vec<&str> = row["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        if required.is_empty() {
            continue;
        }
        let number = rma_for(&app, &table, &mut n, &from, &to).await;
        let before = app.snapshot(&number).await;
        let body = fields_for(&app, &before["rma"], &to).await;
        for field in &required {
            let mut partial = body.clone();
            partial.as_object_mut().unwrap().remove(*field);
            let err = app.try_move(driver(row), &number, &to, partial).await.expect(422);
            assert!(
                err["error"]["message"].as_str().unwrap().contains(field),
                "{from} -> {to} without {field}: {err}"
            );
            if !matches!(*field, "parts_consumed" | "test_results") {
                let mut blank = body.clone();
                blank[*field] = json!("   ");
                app.try_move(driver(row), &number, &to, blank).await.expect(422);
            }
            assert_eq!(
                app.snapshot(&number).await,
                before,
                "{from} -> {to} without {field} changed something"
            );
        }
    }
}

#[tokio::test]
async fn guards_refuse_with_messages_and_change_nothing() {
    let app = spawn_app().await;
    let table = Table::load(&app).await;
    let mut n = Opened::default();

    // A depot technician at SAC may not receive a unit headed to CAM.
    let number = rma_at(&app, &table, &mut n, "return_shipped").await;
    let before = app.snapshot(&number).await;
    let serial = before["rma"]["returned_serial"].clone();
    let err = app
        .try_move(SAC, &number, "received", json!({"scanned_serial": serial}))
        .await
        .expect(403);
    assert!(err["error"]["message"].as_str().unwrap().contains("CAM"), "{err}");
    // Scanning the wrong serial is refused.
    let err = app
        .try_move(CAM, &number, "received", json!({"scanned_serial": "CN-T01-0060"}))
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("does not match"),
        "{err}"
    );
    assert_eq!(app.snapshot(&number).await, before);

    // A replacement must come from the acting technician's depot, of the right part, new or refurbished.
    let number = rma_at(&app, &table, &mut n, "approved").await;
    let before = app.snapshot(&number).await;
    let ship =
        |serial: &str| json!({"replacement_serial": serial, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    let sac_node = app.stock_unit("SAC", "CN-5000").await;
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship(&sac_node))
        .await
        .expect(422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not in stock at CAM"),
        "{err}"
    );
    let fan = app.stock_unit("CAM", "FAN-80MM").await;
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship(&fan))
        .await
        .expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("CN-5000"), "{err}");
    let err = app
        .try_move(CAM, &number, "replacement_shipped", ship("NO-SUCH-SERIAL"))
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("unknown serial"),
        "{err}"
    );
    let in_service = app
        .try_move(CAM, &number, "replacement_shipped", ship("CN-T01-0059"))
        .await
        .expect(422);
    assert!(
        in_service["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not in stock"),
        "{in_service}"
    );
    // A form's problems come together, not one per submit: the wrong depot's unit and a tracking
    // number that is not UPS's, in one answer.
    let both = json!({"replacement_serial": sac_node, "carrier": "UPS", "tracking_number": "12345"});
    let err = app
        .try_move(CAM, &number, "replacement_shipped", both)
        .await
        .expect(422);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not in stock at CAM") && message.contains("12345"),
        "{err}"
    );
    assert_eq!(app.snapshot(&number).await, before);

    // Tests must all pass to return to stock.
    let number = rma_at(&app, &table, &mut n, "testing").await;
    let before = app.snapshot(&number).await;
    let mixed = json!({"test_results": [{"name": "burn-in", "passed": true}, {"name": "memtest", "passed": false}]});
    let err = app.try_move(CAM, &number, "returned_to_stock", mixed).await.expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("memtest"), "{err}");
    let all_pass = json!({"test_results": [{"name": "burn-in", "passed": true}]});
    app.try_move(CAM, &number, "repair", all_pass).await.expect(422);
    assert_eq!(app.snapshot(&number).await, before);
}
