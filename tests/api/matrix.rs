//! The authorization matrix: every API route and page, as every role, on a record of the caller's
//! own organization and of another, with the status each must get. Writes in the table carry a
//! stale version or a missing CSRF token, so nothing may change; the test checks that too.
use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Who calls: nobody, then each role. CoreWeave owns the RMA; xAI's technician is the outsider.
const WHO: [Option<&str>; 6] = [None, Some(ADMIN), Some(FE), Some(CAM), Some(CW_TECH), Some(XAI_TECH)];
const HEADER: &str = "anonymous admin field_engineer depot_tech(CAM) dc_tech(own) dc_tech(other)";

/// One row: method, path (`{N}` is the RMA number, `{A}` an attachment id), body, and the status
/// for each caller in [`WHO`] order.
type Row = (&'static str, &'static str, Option<Value>, [u16; 6]);

fn api_rows() -> Vec<Row> {
    let stale = |mut v: Value| {
        v["version"] = json!(99);
        Some(v)
    };
    vec![
        ("GET", "/api/v1/rmas/{N}", None, [401, 200, 200, 200, 200, 404]),
        ("GET", "/api/v1/rmas/{N}/events", None, [401, 200, 200, 200, 200, 404]),
        ("GET", "/api/v1/rmas/{N}/checks", None, [401, 200, 200, 200, 200, 404]),
        (
            "GET",
            "/api/v1/rmas/{N}/attachments",
            None,
            [401, 200, 200, 200, 200, 404],
        ),
        (
            "GET",
            "/api/v1/rmas/{N}/attachments/{A}",
            None,
            [401, 200, 200, 200, 200, 404],
        ),
        (
            "GET",
            "/api/v1/rmas/{N}/label.pdf",
            None,
            [401, 409, 409, 409, 409, 404],
        ),
        (
            "GET",
            "/api/v1/rmas/{N}/label.zpl",
            None,
            [401, 409, 409, 409, 409, 404],
        ),
        (
            "GET",
            "/api/v1/rmas/{N}/packing-slip.pdf",
            None,
            [401, 409, 409, 409, 409, 404],
        ),
        ("GET", "/api/v1/rmas?q={N}", None, [401, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/units/CN-ORD1-0101",
            None,
            [401, 200, 200, 200, 200, 404],
        ),
        ("GET", "/api/v1/units", None, [401, 200, 200, 200, 200, 200]),
        // Depot inventory is the vendor's, not the customers'.
        ("GET", "/api/v1/stock", None, [401, 200, 200, 200, 403, 403]),
        ("GET", "/api/v1/stock/thresholds", None, [401, 200, 200, 200, 403, 403]),
        ("GET", "/api/v1/stock/restock", None, [401, 200, 200, 200, 403, 403]),
        (
            "PUT",
            "/api/v1/stock/thresholds",
            Some(json!({"depot": "CAM", "part": "CN-5000", "minimum": -1})),
            [401, 422, 403, 422, 403, 403],
        ),
        (
            "GET",
            "/api/v1/receiving/sessions",
            None,
            [401, 200, 200, 200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/receiving/sessions",
            Some(json!({"reference": "R".repeat(201)})),
            // Only a depot technician receives, at their own depot.
            [401, 403, 403, 422, 403, 403],
        ),
        ("GET", "/api/v1/finding-codes", None, [401, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/reports/sla?organization=coreweave&month=2026-11",
            None,
            [401, 200, 200, 200, 200, 404],
        ),
        ("GET", "/api/v1/reports/fleet", None, [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/reliability/afr", None, [401, 200, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/reliability/spares",
            None,
            [401, 200, 200, 200, 403, 403],
        ),
        (
            "PUT",
            "/api/v1/reliability/spares/policy",
            Some(json!({"fill_rate_percent": 120, "lead_time_days": 14})),
            [401, 422, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/rmas/{N}/dead-on-arrival",
            Some(json!({"note": "matrix"})),
            [401, 409, 409, 403, 409, 404],
        ),
        ("GET", "/api/v1/lifecycle", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/api/v1/openapi.json", None, [200, 200, 200, 200, 200, 200]),
        ("GET", "/healthz", None, [200, 200, 200, 200, 200, 200]),
        (
            "POST",
            "/api/v1/rmas/{N}/transitions",
            stale(json!({"to": "diagnosing"})),
            [401, 403, 409, 403, 403, 404],
        ),
        (
            "POST",
            "/api/v1/rmas/{N}/transitions",
            stale(json!({"to": "cancelled", "reason": "matrix"})),
            [401, 409, 409, 403, 403, 404],
        ),
        (
            "PATCH",
            "/api/v1/rmas/{N}",
            stale(json!({"external_refs": {"ticket": "INC-1"}})),
            [401, 409, 409, 403, 409, 404],
        ),
        (
            "POST",
            "/api/v1/rmas/{N}/checks",
            Some(json!({"step": "no-such-step", "result": "ok"})),
            // The checklist is field engineering's; a role that may not is told so before any lookup.
            [401, 403, 422, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/rmas",
            Some(json!({"site": "cw-ord1", "serial": "CN-ORD1-0102", "severity": "sev9", "symptom": "x"})),
            [401, 422, 422, 403, 422, 422],
        ),
    ]
}

fn page_rows() -> Vec<Row> {
    vec![
        ("GET", "/", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/rmas", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/rmas/{N}", None, [303, 200, 200, 200, 200, 404]),
        ("GET", "/rmas/new", None, [303, 200, 200, 403, 200, 200]),
        ("GET", "/units/CN-ORD1-0101", None, [303, 200, 200, 200, 200, 404]),
        ("GET", "/stock", None, [303, 200, 200, 200, 403, 403]),
        ("GET", "/stock/CAM/CN-5000", None, [303, 200, 200, 200, 403, 403]),
        ("GET", "/stock/NOPE/CN-5000", None, [303, 404, 404, 404, 403, 403]),
        ("GET", "/stock/CAM/NO-SUCH-PART", None, [303, 404, 404, 404, 403, 403]),
        ("GET", "/live", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/live?rma={N}", None, [303, 200, 200, 200, 200, 404]),
        ("GET", "/receiving", None, [303, 403, 403, 200, 403, 403]),
        ("GET", "/lifecycle", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/reports/sla", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/reports/charts", None, [303, 200, 200, 200, 200, 200]),
        ("GET", "/admin/users", None, [303, 200, 403, 403, 403, 403]),
        ("GET", "/admin/catalog", None, [303, 200, 403, 403, 403, 403]),
        ("GET", "/admin/outbox", None, [303, 200, 403, 403, 403, 403]),
        // Forms without their CSRF token are refused before anything else is looked at; an
        // anonymous visitor is sent to sign in.
        (
            "POST",
            "/rmas/{N}/transition",
            Some(json!({"to": "cancelled", "reason": "x"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/rmas/{N}/watch",
            Some(json!({})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/rmas/{N}/refs",
            Some(json!({"ticket": "x"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/admin/users",
            Some(json!({"email": "x@y.z"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/rmas/new",
            Some(json!({"site": "cw-ord1"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/rmas/{N}/checks",
            Some(json!({"step": "cabling"})),
            [303, 403, 403, 403, 403, 403],
        ),
        // The evidence form is multipart: anything else is malformed (its CSRF check is below).
        (
            "POST",
            "/rmas/{N}/attachments",
            Some(json!({})),
            [303, 400, 400, 400, 400, 400],
        ),
        (
            "POST",
            "/admin/users/{A}",
            Some(json!({"action": "disable"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/admin/catalog",
            Some(json!({"kind": "part"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/admin/outbox/{A}/retry",
            Some(json!({})),
            [303, 403, 403, 403, 403, 403],
        ),
        ("POST", "/sign-out", Some(json!({})), [303, 403, 403, 403, 403, 403]),
        (
            "POST",
            "/stock/thresholds",
            Some(json!({"depot": "CAM", "part": "CN-5000", "minimum": "1"})),
            [303, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/receiving/sessions",
            Some(json!({"reference": "x"})),
            [303, 403, 403, 403, 403, 403],
        ),
    ]
}

fn fill(path: &str, number: &str, attachment: &str) -> String {
    path.replace("{N}", number).replace("{A}", attachment)
}

#[tokio::test]
async fn every_route_as_every_role_on_own_and_other_records() {
    let app = spawn_app().await;
    let rma = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap().to_string();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"SEL: PSU fault".to_vec())
            .file_name("sel.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let uploaded: Value = app
        .client
        .post(format!("{}/api/v1/rmas/{number}/attachments", app.base))
        .bearer_auth(app.token(FE))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment = uploaded["id"].as_str().expect("attachment id").to_string();
    let before = app.snapshot(&number).await;

    let mut sessions = vec![];
    for who in WHO {
        sessions.push(match who {
            Some(email) => crate::support::signed_in(&app.base, email).await,
            None => no_redirects(),
        });
    }

    let mut wrong = vec![];
    let mut cells = 0;
    for (pages, rows) in [(false, api_rows()), (true, page_rows())] {
        for (method, path, body, expected) in rows {
            let url = format!("{}{}", app.base, fill(path, &number, &attachment));
            let mut got = [0u16; 6];
            for (k, who) in WHO.iter().enumerate() {
                let method: Method = method.parse().unwrap();
                let mut req = if pages {
                    let req = sessions[k].request(method, &url);
                    match &body {
                        Some(Value::Object(map)) => {
                            let pairs: Vec<(String, String)> = map
                                .iter()
                                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                                .collect();
                            req.form(&pairs)
                        }
                        _ => req,
                    }
                } else {
                    let req = no_redirects().request(method, &url);
                    let req = match who {
                        Some(email) => req.bearer_auth(app.token(email)),
                        None => req,
                    };
                    match &body {
                        Some(b) => req.json(b),
                        None => req,
                    }
                };
                req = req.header("accept", "*/*");
                got[k] = req.send().await.unwrap().status().as_u16();
                cells += 1;
            }
            if got != expected {
                wrong.push(format!("{method} {path}: expected {expected:?}, got {got:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "columns: {HEADER}\n{}\n({} cells checked)",
        wrong.join("\n"),
        cells
    );
    assert!(cells >= 200, "the matrix checked {cells} cells");
    let upload = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec())
            .file_name("x.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let res = sessions[2]
        .post(format!("{}/rmas/{number}/attachments", app.base))
        .multipart(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "an upload without the CSRF token is refused");
    // Tokens are kept only as hashes: no stored value is a token that works.
    use sea_orm::EntityTrait;
    for stored in depot::entities::api_token::Entity::find().all(&app.db).await.unwrap() {
        assert_eq!(stored.token_hash.len(), 64, "a SHA-256 in hex");
        for who in [ADMIN, FE, CAM, CW_TECH, XAI_TECH] {
            assert_ne!(stored.token_hash, app.token(who), "a token stored as it is");
        }
    }
    assert_eq!(app.snapshot(&number).await, before, "a refused request changed nothing");
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// CoreWeave's failed C-node goes through the depot and back to stock at CAM, ships as xAI's
/// replacement and is swapped in at xAI. Returns the two RMA numbers and the unit that replaced the
/// node at CoreWeave.
async fn hand_over_a_unit(app: &TestApp, unit: &str) -> (String, String, String) {
    let cw = app.approved(CW_TECH, "cw-ord1", unit, None).await;
    let cw_replacement = app.stock_unit("CAM", "CN-5000").await;
    let ship =
        |serial: &str| json!({"replacement_serial": serial, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    app.step(CAM, &cw, "replacement_shipped", ship(&cw_replacement)).await;
    app.step(CW_TECH, &cw, "replacement_delivered", json!({})).await;
    let swap = |installed: &str, pulled: &str| json!({"installed_serial": installed, "pulled_serial": pulled});
    app.step(CW_TECH, &cw, "swapped", swap(&cw_replacement, unit)).await;
    let back = json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "CAM"});
    app.step(CW_TECH, &cw, "return_shipped", back).await;
    app.step(CAM, &cw, "received", json!({"scanned_serial": unit})).await;
    app.step(CAM, &cw, "triage", json!({})).await;
    app.step(CAM, &cw, "testing", json!({"finding": "no fault found"}))
        .await;
    let passed = json!({"test_results": [{"name": "burn-in 24h", "passed": true}]});
    app.step(CAM, &cw, "returned_to_stock", passed).await;

    let xai = app.approved(XAI_TECH, "xai-colossus", "CN-COL1-0101", None).await;
    app.step(CAM, &xai, "replacement_shipped", ship(unit)).await;
    app.step(XAI_TECH, &xai, "replacement_delivered", json!({})).await;
    app.step(XAI_TECH, &xai, "swapped", swap(unit, "CN-COL1-0101")).await;
    (cw, xai, cw_replacement)
}

/// Unit and slot history after a unit changes hands: every route that shows a unit, a slot or an
/// RMA, as every caller. Each customer's technician sees the unit only for its time at that
/// customer's sites: nothing of the other organization (its RMA, its sites, its racks, the unit
/// that replaced this one there) may appear in any answer.
#[tokio::test]
async fn unit_and_slot_history_after_a_unit_changes_hands() {
    let app = spawn_app().await;
    let unit = "CN-ORD1-0101";
    let (cw, xai, cw_replacement) = hand_over_a_unit(&app, unit).await;

    // What an internal user sees: both lives (so the checks below have something to withhold).
    let fe = crate::support::signed_in(&app.base, FE).await;
    let history = crate::support::page(&fe, &format!("{}/units/{unit}", app.base)).await;
    let slots: Vec<&str> = history.split("/slots/").skip(1).map(|s| &s[..36]).collect();
    assert_eq!(slots.len(), 2, "a stay at CoreWeave, then one at xAI");
    assert!(history.contains(&cw) && history.contains(&xai) && history.contains("cw-ord1"));
    let as_fe = app.unit(unit).await;
    assert_eq!(as_fe["replaced_by"], cw_replacement.as_str(), "kept for internal users");
    let (cw_slot, xai_slot) = (slots[0], slots[1]);

    // Status for [anonymous, admin, field_engineer, depot_tech(CAM), dc_tech(coreweave), dc_tech(xai)].
    let api: Vec<(String, [u16; 6])> = vec![
        (format!("/api/v1/units/{unit}"), [401, 200, 200, 200, 404, 200]),
        (
            "/api/v1/units?q=CN-ORD1&limit=500".into(),
            [401, 200, 200, 200, 200, 200],
        ),
        (
            "/api/v1/units?site=xai-colossus&limit=500".into(),
            [401, 200, 200, 200, 200, 200],
        ),
        ("/api/v1/units?limit=500".into(), [401, 200, 200, 200, 200, 200]),
        (
            format!("/api/v1/units/{cw_replacement}"),
            [401, 200, 200, 200, 200, 404],
        ),
        (format!("/api/v1/rmas?q={unit}"), [401, 200, 200, 200, 200, 200]),
        (format!("/api/v1/rmas/{cw}"), [401, 200, 200, 200, 200, 404]),
        (format!("/api/v1/rmas/{cw}/events"), [401, 200, 200, 200, 200, 404]),
        (format!("/api/v1/rmas/{xai}"), [401, 200, 200, 200, 404, 200]),
        (format!("/api/v1/rmas/{xai}/events"), [401, 200, 200, 200, 404, 200]),
        (format!("/api/v1/rmas/{xai}/label.zpl"), [401, 200, 200, 200, 404, 200]),
        (
            format!("/api/v1/rmas/{xai}/packing-slip.pdf"),
            [401, 200, 200, 200, 404, 200],
        ),
        // The reliability figures of a fleet in which the unit changed hands.
        ("/api/v1/reliability/afr?by=site".into(), [401, 200, 200, 200, 200, 200]),
        (
            "/api/v1/reliability/afr?by=organization".into(),
            [401, 200, 200, 200, 200, 200],
        ),
        ("/api/v1/reliability/weibull".into(), [401, 200, 200, 200, 200, 200]),
        (
            "/api/v1/reliability/fixes?by=fault_code".into(),
            [401, 200, 200, 200, 200, 200],
        ),
        ("/api/v1/reliability/quality".into(), [401, 200, 200, 200, 200, 200]),
        (
            "/api/v1/reliability/quality?format=csv".into(),
            [401, 200, 200, 200, 200, 200],
        ),
    ];
    let pages: Vec<(String, [u16; 6])> = vec![
        (format!("/units/{unit}"), [303, 200, 200, 200, 404, 200]),
        (format!("/units/{cw_replacement}"), [303, 200, 200, 200, 200, 404]),
        (format!("/slots/{cw_slot}"), [303, 200, 200, 200, 200, 404]),
        (format!("/slots/{xai_slot}"), [303, 200, 200, 200, 404, 200]),
        (format!("/rmas/{cw}"), [303, 200, 200, 200, 200, 404]),
        (format!("/rmas/{xai}"), [303, 200, 200, 200, 404, 200]),
        (format!("/rmas?q={unit}"), [303, 200, 200, 200, 200, 200]),
        ("/".into(), [303, 200, 200, 200, 200, 200]),
        ("/reports/reliability?by=site".into(), [303, 200, 200, 200, 200, 200]),
    ];
    // What each customer must never see of the other.
    let coreweave = [cw.as_str(), cw_replacement.as_str(), "cw-ord1", "coreweave", cw_slot];
    let xai_marks = [xai.as_str(), "xai-colossus", "CN-COL1-0101", xai_slot];

    let mut sessions = vec![no_redirects()];
    for who in &WHO[1..] {
        sessions.push(crate::support::signed_in(&app.base, who.unwrap()).await);
    }
    let mut wrong = vec![];
    for (pages, rows) in [(false, api), (true, pages)] {
        for (path, expected) in rows {
            let mut got = [0u16; 6];
            for (k, who) in WHO.iter().enumerate() {
                let url = format!("{}{path}", app.base);
                let req = match (pages, who) {
                    (true, _) => sessions[k].get(&url),
                    (false, Some(email)) => no_redirects().get(&url).bearer_auth(app.token(email)),
                    (false, None) => no_redirects().get(&url),
                };
                let res = req.send().await.unwrap();
                got[k] = res.status().as_u16();
                let body = String::from_utf8_lossy(&res.bytes().await.unwrap()).to_lowercase();
                let other_customer: &[&str] = match *who {
                    Some(CW_TECH) => &xai_marks,
                    Some(XAI_TECH) => &coreweave,
                    _ => &[],
                };
                for mark in other_customer {
                    if let Some(at) = body.find(&mark.to_lowercase()).filter(|_| got[k] < 300) {
                        let around = &body[at.saturating_sub(120)..(at + 80).min(body.len())];
                        wrong.push(format!("{path} as {}: shows `{mark}` in …{around}…", who.unwrap()));
                    }
                }
            }
            if got != expected {
                wrong.push(format!("{path}: expected {expected:?}, got {got:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "columns: {HEADER}\n{}", wrong.join("\n"));

    // xAI's technician sees the unit as it is at xAI: no `replaced_by` from CoreWeave's rack.
    let as_xai = app.get(XAI_TECH, &format!("/api/v1/units/{unit}")).await.expect(200);
    assert_eq!(
        (as_xai["site"].as_str(), as_xai["replaced_by"].as_str()),
        (Some("xai-colossus"), None)
    );
}
