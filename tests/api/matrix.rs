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
