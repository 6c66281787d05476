//! A customer's technician never sees or touches another organization's records: 404 everywhere.
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn another_organizations_technician_gets_404_everywhere() {
    let app = spawn_app().await;
    let rma = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let before = app.snapshot(number).await;

    app.get(XAI_TECH, &format!("/api/v1/rmas/{number}")).await.expect(404);
    app.get(XAI_TECH, &format!("/api/v1/rmas/{number}/events"))
        .await
        .expect(404);
    let body = json!({"to": "cancelled", "version": 1, "reason": "x"});
    app.post(XAI_TECH, &format!("/api/v1/rmas/{number}/transitions"), &body)
        .await
        .expect(404);
    app.get(XAI_TECH, &format!("/api/v1/rmas/{number}/label.pdf"))
        .await
        .expect(404);
    app.get(XAI_TECH, "/api/v1/units/CN-ORD1-0101").await.expect(404);
    for query in [
        format!("q={number}"),
        "q=CN-ORD1-0101".into(),
        "site=cw-ord1".into(),
        "organization=coreweave".into(),
        String::new(),
    ] {
        let page = app.get(XAI_TECH, &format!("/api/v1/rmas?{query}")).await.expect(200);
        assert_eq!(page["items"], json!([]), "list with {query} leaked");
    }
    for query in ["q=CN-ORD1", "site=cw-ord1", "part=CN-5000&limit=500"] {
        let page = app.get(XAI_TECH, &format!("/api/v1/units?{query}")).await.expect(200);
        assert!(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| u["site"].as_str().is_some_and(|s| s.starts_with("xai-"))),
            "units with {query} leaked"
        );
    }
    // Opening at another organization's site is refused as an unknown site.
    let err = app
        .post(
            XAI_TECH,
            "/api/v1/rmas",
            &json!({"site": "cw-ord1", "serial": "CN-ORD1-0102", "severity": "sev1", "symptom": "x"}),
        )
        .await
        .expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("unknown site"));
    app.get(XAI_TECH, "/api/v1/stock").await.expect(403);

    // The organization's own technician and internal users see it.
    app.get(CW_TECH, &format!("/api/v1/rmas/{number}")).await.expect(200);
    let own = app.get(CW_TECH, &format!("/api/v1/rmas?q={number}")).await.expect(200);
    assert_eq!(own["items"][0]["number"], number);
    app.get(CAM, &format!("/api/v1/rmas/{number}")).await.expect(200);
    assert_eq!(app.snapshot(number).await, before);
}
