//! Bad input gets the contract's status and error shape, and changes nothing.
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_the_contract_status_and_shape() {
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let path = format!("/api/v1/rmas/{number}/transitions");
    let before = app.snapshot(number).await;

    let err = app.post_raw(FE, &path, "{\"to\": \"diagnosing\", ").await.expect(400);
    assert_eq!(err["error"]["code"], "malformed");
    app.post_raw(FE, "/api/v1/rmas", "not json").await.expect(400);
    let huge = format!(
        "{{\"to\": \"diagnosing\", \"version\": 1, \"note\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let err = app.post_raw(FE, &path, huge).await.expect(413);
    assert_eq!(err["error"]["code"], "payload_too_large");
    app.post(
        FE,
        "/api/v1/rmas/RMA-2026-999999/transitions",
        &json!({"to": "diagnosing", "version": 1}),
    )
    .await
    .expect(404);
    app.get(FE, "/api/v1/rmas/RMA-2026-999999").await.expect(404);
    app.get(FE, "/api/v1/rmas/not-a-number").await.expect(404);
    let err = app
        .post(FE, &path, &json!({"to": "diagnosing", "version": 7}))
        .await
        .expect(409);
    assert_eq!(err["error"]["code"], "version_conflict");
    let err = app.post(FE, &path, &json!({"to": "diagnosing"})).await.expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("version"), "{err}");
    app.post(FE, &path, &json!({"to": "diagnosing", "version": "one"}))
        .await
        .expect(422);
    let err = app
        .post(FE, &path, &json!({"to": "fixed", "version": 1}))
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("reported"),
        "names the valid statuses: {err}"
    );
    app.post(FE, &path, &json!([1, 2])).await.expect(422);
    assert_eq!(app.snapshot(number).await, before);

    let open = |site: &str, serial: &str, severity: &str, symptom: &str| json!({"site": site, "serial": serial, "severity": severity, "symptom": symptom});
    let cases = [
        (
            open("cw-ord1", "NO-SUCH-UNIT", "sev1", "x"),
            "NO-SUCH-UNIT is not a unit in service at site cw-ord1",
        ),
        (open("nowhere", "CN-ORD1-0102", "sev1", "x"), "unknown site"),
        (
            open("cw-lga1", "CN-ORD1-0102", "sev1", "x"),
            "CN-ORD1-0102 is not a unit in service at site cw-lga1",
        ),
        (open("cw-ord1", "CN-ORD1-0102", "sev9", "x"), "sev1, sev2, sev3, sev4"),
        (open("cw-ord1", "CN-ORD1-0102", "sev1", "  "), "symptom"),
        (open("cw-ord1", "CN-CAM-S001", "sev1", "x"), "not a unit in service"),
        (
            json!({"site": "cw-ord1", "serial": "CN-ORD1-0102", "severity": "sev1"}),
            "symptom",
        ),
        (
            json!({"site": "cw-ord1", "serial": "CN-ORD1-0102", "severity": "sev1", "symptom": "x", "external_refs": {"cs": 5}}),
            "external_refs.cs",
        ),
    ];
    for (body, needle) in cases {
        let err = app.post(FE, "/api/v1/rmas", &body).await.expect(422);
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{body} -> {err}"
        );
    }
    let err = app
        .post(CAM, "/api/v1/rmas", &open("cw-ord1", "CN-ORD1-0102", "sev1", "x"))
        .await
        .expect(403);
    assert_eq!(err["error"]["code"], "forbidden");
    let list = app.get(FE, "/api/v1/rmas").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "no refused open left a row");

    app.get(FE, "/api/v1/rmas?status=bogus").await.expect(422);
    app.get(FE, "/api/v1/rmas?limit=abc").await.expect(400);
    app.get(FE, "/api/v1/rmas?limit=0").await.expect(422);
    app.get(FE, "/api/v1/rmas?cursor=zzz").await.expect(400);
    app.get(FE, "/api/v1/nothing-here").await.expect(404);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/rmas", app.base);
    for auth in [None, Some("Bearer"), Some("Bearer nope"), Some("Basic Zm9vOmJhcg==")] {
        let mut req = app.client.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn external_refs_are_kept_and_search_finds_by_number_and_serial() {
    let app = spawn_app().await;
    let body = json!({"site": "cw-ord1", "serial": "CN-ORD1-0105", "severity": "sev1", "symptom": "no POST",
        "external_refs": {"cs_ticket": "CS-1234", "chat": "https://chat.example/t/1"}});
    let rma = app.post(FE, "/api/v1/rmas", &body).await.expect(201);
    assert_eq!(rma["external_refs"]["cs_ticket"], "CS-1234");
    app.open(FE, "cw-ord1", "CN-ORD1-0106").await;
    let by_serial = app.get(FE, "/api/v1/rmas?q=cn-ord1-0105").await.expect(200);
    assert_eq!(by_serial["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_serial["items"][0]["number"], rma["number"]);
    let by_number = app
        .get(FE, &format!("/api/v1/rmas?q={}", rma["number"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(by_number["items"][0]["serial"], "CN-ORD1-0105");
    let sev1 = app
        .get(FE, "/api/v1/rmas?severity=sev1&site=cw-ord1&status=reported")
        .await
        .expect(200);
    assert_eq!(sev1["items"].as_array().unwrap().len(), 1);
}

/// No address a person can land on answers 405: a form's address visited (after signing in again,
/// a reload, a copied link) leads to the page the form is on.
#[tokio::test]
async fn a_visit_to_a_form_address_lands_on_its_page_never_405() {
    let app = spawn_app().await;
    let number = app.open(FE, "cw-ord1", "CN-ORD1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let page = crate::support::signed_in(&app.base, FE).await;
    for (path, lands) in [
        (format!("/rmas/{number}/transition"), format!("/rmas/{number}")),
        (format!("/rmas/{number}/refs"), format!("/rmas/{number}")),
        ("/stock/thresholds".to_string(), "/stock".to_string()),
        ("/sign-out".to_string(), "/".to_string()),
    ] {
        let res = page.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(res.headers()["location"], lands.as_str(), "{path}");
        let landed = page.get(format!("{}{lands}", app.base)).send().await.unwrap();
        assert_eq!(landed.status(), 200, "{lands}");
    }
    // The API keeps saying what it takes.
    let res = app
        .client
        .get(format!("{}/api/v1/rmas/{number}/transitions", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

/// A step's form with several values that do not read is refused once, naming each of them, and
/// changes nothing.
#[tokio::test]
async fn a_forms_unreadable_values_are_told_together() {
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let before = app.snapshot(number).await;
    let page = crate::support::signed_in(&app.base, FE).await;
    let url = format!("{}/rmas/{number}", app.base);
    let csrf = crate::support::form_csrf(&page, &url).await;
    let res = page
        .post(format!("{url}/transition"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", "cancelled"),
            ("version", "1"),
            ("reason", "duplicate"),
            ("labor_minutes", "half an hour"),
            ("delivered_at", "yesterday"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("labor_minutes `half an hour` is not a whole number"),
        "{html}"
    );
    assert!(
        html.contains("delivered_at `yesterday` is not a date and time"),
        "{html}"
    );
    assert_eq!(app.snapshot(number).await, before);
}
