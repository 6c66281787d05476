//! Field intake and diagnosis: alarms, idempotency, the checklist, evidence, impact and on-call.
use crate::helpers::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

async fn alarm(app: &TestApp, who: &str, key: Option<&str>, body: &serde_json::Value) -> Answer {
    let mut req = app
        .client
        .post(format!("{}/api/v1/alarms", app.base))
        .bearer_auth(app.token(who))
        .json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    Answer {
        status,
        body: res.json().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn the_same_alarm_twice_opens_one_rma_and_keys_replay_their_answer() {
    let app = spawn_app().await;
    let body = json!({"serial": "DN-ORD1-0101", "severity": "critical", "summary": "enclosure over temperature", "source": "prometheus",
        "external_refs": {"chat_thread": "https://chat.example/t/9"}});
    let first = alarm(&app, FE, None, &body).await.expect(201);
    assert_eq!(
        (first["status"].as_str(), first["severity"].as_str()),
        (Some("reported"), Some("sev1")),
        "critical maps to sev1"
    );
    let again = alarm(
        &app,
        FE,
        None,
        &json!({"serial": "DN-ORD1-0101", "severity": "minor", "summary": "fan 2 slow", "source": "chatops"}),
    )
    .await
    .expect(200);
    assert_eq!(again["number"], first["number"]);
    let events = app.events(first["number"].as_str().unwrap()).await;
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "alarm").count(),
        1,
        "the second alarm is in the history"
    );
    assert_eq!(
        app.get(FE, "/api/v1/rmas?q=DN-ORD1-0101").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let other = json!({"serial": "CN-ORD1-0102", "severity": "sev3", "summary": "ECC errors", "source": "prometheus"});
    let a = alarm(&app, FE, Some("alert-4711"), &other).await;
    let b = alarm(&app, FE, Some("alert-4711"), &other).await;
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (201, 201),
        "a replay gets the first answer, status included"
    );
    assert_eq!(a.body, b.body);
    let changed =
        json!({"serial": "CN-ORD1-0102", "severity": "sev1", "summary": "ECC errors", "source": "prometheus"});
    let err = alarm(&app, FE, Some("alert-4711"), &changed).await.expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("different body"),
        "{err}"
    );
    assert_eq!(
        app.get(FE, "/api/v1/rmas?q=CN-ORD1-0102").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A customer's technician cannot raise alarms on another customer's units.
    let err = alarm(
        &app,
        XAI_TECH,
        None,
        &json!({"serial": "CN-ORD1-0103", "severity": "sev1", "summary": "x", "source": "y"}),
    )
    .await
    .expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("unknown serial"));
    alarm(
        &app,
        FE,
        None,
        &json!({"serial": "CN-ORD1-0103", "severity": "whatever", "summary": "x", "source": "y"}),
    )
    .await
    .expect(422);
}

#[tokio::test]
async fn approval_waits_for_the_mandatory_checklist_steps_and_records_what_was_checked() {
    use depot::entities::organization;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let app = spawn_app().await;
    let cw = organization::Entity::find()
        .filter(organization::Column::Code.eq("coreweave"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut cw: organization::ActiveModel = cw.into();
    cw.mandatory_checks = Set(Some(json!(["bmc_sensors", "reseat"])));
    cw.update(&app.db).await.unwrap();

    let number = app.open(FE, "cw-ord1", "CN-ORD1-0104").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    let checks = format!("/api/v1/rmas/{number}/checks");
    app.post(
        FE,
        &checks,
        &json!({"step": "bmc_sensors", "result": "fail", "note": "DIMM A1 UE in SEL"}),
    )
    .await
    .expect(200);
    let before = app.snapshot(&number).await;
    let approve = json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"});
    let err = app.try_move(FE, &number, "approved", approve.clone()).await.expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("reseat"),
        "names the missing step: {err}"
    );
    assert!(
        !err["error"]["message"].as_str().unwrap().contains("bmc_sensors"),
        "{err}"
    );
    assert_eq!(app.snapshot(&number).await["rma"], before["rma"]);
    app.post(FE, &checks, &json!({"step": "fan_tach", "result": "pass"}))
        .await
        .expect(422);
    app.post(FE, &checks, &json!({"step": "reseat", "result": "maybe"}))
        .await
        .expect(422);
    app.post(CW_TECH, &checks, &json!({"step": "reseat", "result": "pass"}))
        .await
        .expect(403);
    let list = app
        .post(FE, &checks, &json!({"step": "reseat", "result": "pass"}))
        .await
        .expect(200);
    let reseat = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == "reseat")
        .unwrap()
        .clone();
    assert_eq!(
        (
            reseat["result"].as_str(),
            reseat["operator"].as_str(),
            reseat["mandatory"].as_bool()
        ),
        (Some("pass"), Some(FE), Some(true))
    );
    app.try_move(FE, &number, "approved", approve).await.expect(200);
    let approved = app
        .events(&number)
        .await
        .into_iter()
        .find(|e| e["to"] == "approved")
        .unwrap();
    assert_eq!(
        approved["fields"]["checked"],
        json!([{"step": "bmc_sensors", "result": "fail"}, {"step": "reseat", "result": "pass"}])
    );
    app.post(FE, &checks, &json!({"step": "reseat", "result": "pass"}))
        .await
        .expect(409);
}

async fn upload(app: &TestApp, who: &str, number: &str, name: &str, bytes: Vec<u8>) -> Answer {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
    let res = app
        .client
        .post(format!("{}/api/v1/rmas/{number}/attachments", app.base))
        .bearer_auth(app.token(who))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    Answer {
        status,
        body: res.json().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn evidence_uploads_are_limited_typed_named_safely_and_private() {
    let app = spawn_app().await;
    let number = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0105").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let smart = b"SMART overall-health self-assessment test result: FAILED".to_vec();
    let stored = upload(&app, CW_TECH, &number, "../../etc/passwd.txt", smart.clone())
        .await
        .expect(201);
    assert_eq!(stored["file_name"], "passwd.txt");
    assert_eq!(stored["size"], smart.len());
    upload(&app, FE, &number, "bmc-sel.log", b"SEL entry".to_vec())
        .await
        .expect(201);
    let err = upload(&app, FE, &number, "payload.exe", b"MZ".to_vec())
        .await
        .expect(415);
    assert!(err["error"]["message"].as_str().unwrap().contains("allowed"), "{err}");
    upload(&app, FE, &number, "big.log", vec![b'x'; 11 * 1024 * 1024])
        .await
        .expect(413);

    let list = app
        .get(FE, &format!("/api/v1/rmas/{number}/attachments"))
        .await
        .expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    let url = items[0]["url"].as_str().unwrap();
    let res = app
        .client
        .get(format!("{}{url}", app.base))
        .bearer_auth(app.token(FE))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"passwd.txt\"")
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), smart);
    let events = app.events(&number).await;
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "attachment").count(),
        2,
        "listed in the timeline"
    );

    app.get(XAI_TECH, &format!("/api/v1/rmas/{number}/attachments"))
        .await
        .expect(404);
    let (status, _) = app.download(XAI_TECH, url).await;
    assert_eq!(status, 404);
    upload(&app, XAI_TECH, &number, "x.txt", b"x".to_vec())
        .await
        .expect(404);
}

#[tokio::test]
async fn references_are_editable_and_searchable() {
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0106").await;
    let number = rma["number"].as_str().unwrap();
    let path = format!("/api/v1/rmas/{number}");
    let refs = json!({"external_refs": {"cs_ticket": "CS-88123", "engineering_ticket": "ENG-7"}, "version": 1});
    let res = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(app.token(FE))
        .json(&refs)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (
            updated["external_refs"]["cs_ticket"].as_str(),
            updated["version"].as_i64()
        ),
        (Some("CS-88123"), Some(2))
    );
    let stale = app
        .client
        .patch(format!("{}{path}", app.base))
        .bearer_auth(app.token(FE))
        .json(&refs)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    let found = app.get(FE, "/api/v1/rmas?q=cs-88123").await.expect(200);
    assert_eq!(found["items"][0]["number"], number);
    assert_eq!(
        app.get(XAI_TECH, "/api/v1/rmas?q=CS-88123").await.expect(200)["items"],
        json!([])
    );
}

#[tokio::test]
async fn the_dashboard_ranks_a_cluster_with_two_failed_dnodes_first_and_shows_the_sev1_on_call() {
    let app = spawn_app().await;
    let one = app.open(FE, "cw-lga1", "DN-LGA1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let first = app.open(FE, "xai-colossus", "DN-COL1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let second = app.open(FE, "xai-colossus", "DN-COL1-0102").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let fe = depot::services::tokens::authenticate(&app.db, app.token(FE))
        .await
        .unwrap();
    let ranked = depot::services::dashboard::by_impact(&app.db, &fe).await.unwrap();
    let order: Vec<&str> = ranked.iter().map(|r| r.rma.number.as_str()).collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
    assert!(pos(&first) < pos(&one) && pos(&second) < pos(&one), "{order:?}");
    assert!(
        ranked[0].why.contains("1 other unit of xai-colossus-obj1"),
        "{}",
        ranked[0].why
    );

    // sev1: the RMA shows who is on call; an override wins over the rotation.
    let sev1 = app
        .post(
            FE,
            "/api/v1/rmas",
            &json!({"site": "cw-ord1", "serial": "CN-ORD1-0107", "severity": "sev1", "symptom": "down"}),
        )
        .await
        .expect(201);
    let shown = app.rma(sev1["number"].as_str().unwrap()).await;
    let on_call = shown["on_call"].as_str().unwrap().to_string();
    assert!([FE, ADMIN].contains(&on_call.as_str()), "{on_call}");
    use depot::entities::organization;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let cw = organization::Entity::find()
        .filter(organization::Column::Code.eq("coreweave"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now();
    depot::services::oncall::add_shift(
        &app.db,
        cw.id,
        "override",
        vec![CAM.into()],
        now - chrono::Duration::minutes(1),
        Some(now + chrono::Duration::hours(1)),
    )
    .await
    .unwrap();
    assert_eq!(app.rma(sev1["number"].as_str().unwrap()).await["on_call"], CAM);
    assert!(
        app.rma(&one).await.get("on_call").is_none(),
        "only sev1 RMAs name the on-call"
    );

    // The sweep pages whoever is on call when the sev1's first response breaches.
    depot::jobs::run_once(&app.db, BASE_URL, now + chrono::Duration::minutes(45))
        .await
        .unwrap();
    use depot::entities::{notification, rma};
    let sev1 = rma::Entity::find()
        .filter(rma::Column::Number.eq(sev1["number"].as_str().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let paged = notification::Entity::find()
        .filter(notification::Column::Template.eq("sla_breach"))
        .filter(notification::Column::RmaId.eq(sev1.id))
        .all(&app.db)
        .await
        .unwrap();
    assert!(!paged.is_empty(), "the sev1's breach is alerted");
    for alert in &paged {
        assert!(
            alert.recipients.as_array().unwrap().contains(&json!(CAM)),
            "{}",
            alert.recipients
        );
    }
}
