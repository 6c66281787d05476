//! Service-level clocks in the API, breaches first on the dashboard, the monthly report checked
//! against figures worked out by hand, and the Prometheus gauges.
use crate::helpers::*;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use depot::entities::{event, rma};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

/// Moves an RMA's creation and its first event back or forth to `created`, and the event into
/// `to_status` to `created + after`.
async fn retime(app: &TestApp, number: &str, created: DateTime<Utc>, to_status: Option<(&str, Duration)>) {
    let r = rma::Entity::find()
        .filter(rma::Column::Number.eq(number))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: rma::ActiveModel = r.clone().into();
    am.created_at = Set(created);
    am.update(&app.db).await.unwrap();
    for e in event::Entity::find()
        .filter(event::Column::RmaId.eq(r.id))
        .all(&app.db)
        .await
        .unwrap()
    {
        let at = match (e.to_status.as_deref(), &to_status) {
            (Some("reported"), _) => Some(created),
            (Some(s), Some((target, after))) if s == *target => Some(created + *after),
            _ => None,
        };
        if let Some(at) = at {
            let mut am: event::ActiveModel = e.into();
            am.at = Set(at);
            am.update(&app.db).await.unwrap();
        }
    }
    // The RMA keeps the first time it entered each status: moved with its events.
    let entered: depot::domain::sla::Entered = event::Entity::find()
        .filter(event::Column::RmaId.eq(r.id))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| Some((e.to_status?.parse().ok()?, e.at)))
        .collect();
    let mut am: rma::ActiveModel = rma::Entity::find_by_id(r.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .into();
    am.status_entered = Set(entered.to_json());
    am.update(&app.db).await.unwrap();
}

#[tokio::test]
async fn an_rma_carries_its_clocks_and_the_first_response_stops_at_diagnosing() {
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let created: DateTime<Utc> = rma["created_at"].as_str().unwrap().parse().unwrap();
    let clock = &app.rma(number).await["clocks"][0];
    assert_eq!(
        (clock["name"].as_str(), clock["state"].as_str()),
        (Some("first_response"), Some("running"))
    );
    let deadline: DateTime<Utc> = clock["deadline"].as_str().unwrap().parse().unwrap();
    assert_eq!(deadline, created + Duration::hours(2), "sev2: two hours");
    let after = app.step(FE, number, "diagnosing", json!({})).await;
    assert_eq!(after["clocks"][0]["state"], "met");
    let approved = app
        .step(
            FE,
            number,
            "approved",
            json!({"fault_code": "X", "replacement_kind": "whole_unit"}),
        )
        .await;
    let names: Vec<&str> = approved["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first_response", "replacement_delivered"]);
}

#[tokio::test]
async fn breaches_come_first_and_the_monthly_report_matches_hand_counts() {
    let app = spawn_app().await;
    let now = Utc::now();
    let day10 = Utc.with_ymd_and_hms(now.year(), now.month(), 10, 10, 0, 0).unwrap();
    let month = format!("{}-{:02}", now.year(), now.month());
    // Three CoreWeave RMAs on the 10th: sev2 answered in 10 minutes (met), sev2 answered after
    // 3 hours (breached), sev1 answered in 20 minutes (met). One xAI RMA breaches too: not counted.
    let mut numbers = vec![];
    for (serial, severity, minutes) in [
        ("CN-ORD1-0101", "sev2", 10),
        ("CN-ORD1-0102", "sev2", 180),
        ("CN-ORD1-0103", "sev1", 20),
    ] {
        let body = json!({"site": "cw-ord1", "serial": serial, "severity": severity, "symptom": "down"});
        let number = app.post(FE, "/api/v1/rmas", &body).await.expect(201)["number"]
            .as_str()
            .unwrap()
            .to_string();
        app.step(FE, &number, "diagnosing", json!({})).await;
        retime(&app, &number, day10, Some(("diagnosing", Duration::minutes(minutes)))).await;
        numbers.push(number);
    }
    let xai = app.open(FE, "xai-colossus", "CN-COL1-0101").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &xai, "diagnosing", json!({})).await;
    retime(&app, &xai, day10, Some(("diagnosing", Duration::hours(5)))).await;

    let report = app
        .get(FE, &format!("/api/v1/reports/sla?organization=coreweave&month={month}"))
        .await
        .expect(200);
    let first = &report["clocks"][0];
    assert_eq!(
        (
            first["clock"].as_str(),
            first["met"].as_u64(),
            first["breached"].as_u64()
        ),
        (Some("first_response"), Some(2), Some(1))
    );
    assert_eq!(first["attainment_percent"], 66.7);
    assert_eq!(report["breaches"].as_array().unwrap().len(), 1);
    assert_eq!(report["breaches"][0]["number"], numbers[1].as_str());
    assert_eq!(report["penalty_exposure"]["first_response"], 1);
    let csv = app
        .client
        .get(format!(
            "{}/api/v1/reports/sla?organization=coreweave&month={month}&format=csv",
            app.base
        ))
        .bearer_auth(app.token(FE))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("organization,month,clock,met,breached,attainment_percent\n"),
        "{csv}"
    );
    assert!(csv.contains("\"first_response\",2,1,66.7"), "{csv}");
    app.get(
        XAI_TECH,
        &format!("/api/v1/reports/sla?organization=coreweave&month={month}"),
    )
    .await
    .expect(404);
    app.get(
        CW_TECH,
        &format!("/api/v1/reports/sla?organization=coreweave&month={month}"),
    )
    .await
    .expect(200);
    app.get(FE, "/api/v1/reports/sla?organization=coreweave&month=November")
        .await
        .expect(422);

    // A reported RMA three hours old has breached its first response: it leads the dashboard.
    let fresh = app.open(FE, "cw-ord1", "CN-ORD1-0104").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let late = app.open(FE, "cw-ord1", "CN-ORD1-0105").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    retime(&app, &late, now - Duration::hours(3), None).await;
    let fe = depot::services::tokens::authenticate(&app.db, app.token(FE))
        .await
        .unwrap();
    let board = depot::services::dashboard::build(&app.db, &fe).await.unwrap();
    assert_eq!(board.waiting[0].number, late, "breached first");
    assert!(board.waiting.iter().position(|r| r.number == fresh).unwrap() > 0);

    depot::jobs::run_once(&app.db, BASE_URL, Utc::now()).await.unwrap();
    let metrics = app.metrics().await;
    let breached = |count: u32| {
        format!("depot_sla_clocks{{organization=\"coreweave\",clock=\"first_response\",state=\"breached\"}} {count}")
    };
    let sla_lines = |metrics: &str| {
        metrics
            .lines()
            .filter(|l| l.contains("depot_sla"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(metrics.contains(&breached(1)), "{}", sla_lines(&metrics));

    // Once CoreWeave has no open RMA left, its gauges read 0, not their last count.
    for number in numbers.iter().chain([&fresh, &late]) {
        app.step(FE, number, "cancelled", json!({"reason": "duplicate"})).await;
    }
    depot::jobs::run_once(&app.db, BASE_URL, Utc::now()).await.unwrap();
    let metrics = app.metrics().await;
    assert!(metrics.contains(&breached(0)), "{}", sla_lines(&metrics));
}

/// Carries a CoreWeave C-node RMA to `triage` with `fault_code`.
async fn to_triage(app: &TestApp, serial: &str, fault_code: &str) -> String {
    let approval = json!({"fault_code": fault_code, "replacement_kind": "whole_unit"});
    let number = app.approved(FE, "cw-ord1", serial, Some(approval)).await;
    app.swapped(&number, CW_TECH, serial).await;
    app.back_at_triage(&number, CW_TECH, serial).await;
    number
}

#[tokio::test]
async fn fleet_figures_and_charts_match_hand_counts() {
    let app = spawn_app().await;
    let nff = to_triage(&app, "CN-ORD1-0101", "DIMM_UE").await;
    app.step(CAM, &nff, "testing", json!({"finding": "no fault found"}))
        .await;
    app.step(
        CAM,
        &nff,
        "returned_to_stock",
        json!({"test_results": [{"name": "burn-in", "passed": true}]}),
    )
    .await;
    let repaired = to_triage(&app, "CN-ORD1-0102", "DIMM_UE").await;
    app.step(CAM, &repaired, "repair", json!({"finding": "DIMM A1"})).await;
    let psu = app.open(FE, "cw-ord1", "CN-ORD1-0103").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &psu, "diagnosing", json!({})).await;
    app.step(
        FE,
        &psu,
        "approved",
        json!({"fault_code": "PSU_<b>FAIL</b>", "replacement_kind": "whole_unit"}),
    )
    .await;
    app.open(XAI_TECH, "xai-colossus", "DN-COL1-0101").await;

    let f = app.get(FE, "/api/v1/reports/fleet").await.expect(200);
    let bars = |key: &str| -> Vec<(String, f64)> {
        f[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["label"].as_str().unwrap().to_string(), b["value"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(
        bars("by_part"),
        [("CN-5000".to_string(), 3.0), ("DN-3000".to_string(), 1.0)]
    );
    assert_eq!(
        bars("by_fault_code"),
        [("DIMM_UE".to_string(), 2.0), ("PSU_<b>FAIL</b>".to_string(), 1.0)]
    );
    assert_eq!(
        bars("by_site"),
        [("cw-ord1".to_string(), 3.0), ("xai-colossus".to_string(), 1.0)]
    );
    assert_eq!(
        bars("no_fault_found_percent"),
        [("cw-ord1".to_string(), 50.0)],
        "one of two triaged units had no fault"
    );
    assert_eq!(
        bars("turnaround_days")[0],
        ("0".to_string(), 1.0),
        "one unit closed the day it arrived"
    );
    let weeks = bars("volume_per_week");
    assert_eq!((weeks.len(), weeks.last().unwrap().1), (12, 4.0));
    assert_eq!(bars("stock_by_depot").len(), 2);
    // This week CAM shipped two replacements and took one unit back: at the end of last week it
    // had one more than now.
    let cam_now = bars("stock_by_depot").into_iter().find(|b| b.0 == "CAM").unwrap().1;
    let cam = f["stock_over_time"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["depot"] == "CAM")
        .unwrap();
    let weeks: Vec<f64> = cam["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["value"].as_f64().unwrap())
        .collect();
    assert_eq!(weeks.len(), 12);
    assert_eq!(weeks[11], cam_now);
    assert_eq!(weeks[10], cam_now + 2.0 - 1.0);

    let xai = app.get(XAI_TECH, "/api/v1/reports/fleet").await.expect(200);
    assert_eq!(
        xai["by_part"],
        json!([{"label": "DN-3000", "value": 1.0}]),
        "a customer sees only its own fleet"
    );
    assert_eq!(xai["stock_by_depot"], json!([]));

    let by_fault: Vec<depot::services::charts::Bar> = serde_json::from_value(f["by_fault_code"].clone()).unwrap();
    let svg = depot::services::charts::bar_chart("Failures by fault code", "RMAs", &by_fault).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("DIMM_UE"), "{svg}");
    assert!(
        svg.contains("PSU_&lt;b&gt;FAIL&lt;/b&gt;") && !svg.contains("<b>"),
        "labels are escaped"
    );
}

/// The dashboard's ranking puts a sev1 nobody has answered first, above older cases and those of a
/// cluster that lost redundancy; once answered, it takes its place among the rest.
#[tokio::test]
async fn an_unanswered_sev1_is_always_first_by_impact() {
    let app = spawn_app().await;
    let mut others = vec![];
    for serial in ["CN-ORD1-0101", "CN-ORD1-0102", "CN-ORD1-0103"] {
        let body = json!({"site": "cw-ord1", "serial": serial, "severity": "sev2", "symptom": "down"});
        others.push(
            app.post(FE, "/api/v1/rmas", &body).await.expect(201)["number"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let body = json!({"site": "cw-lga1", "serial": "CN-LGA1-0201", "severity": "sev1", "symptom": "down"});
    let sev1 = app.post(FE, "/api/v1/rmas", &body).await.expect(201)["number"]
        .as_str()
        .unwrap()
        .to_string();
    let page = crate::support::signed_in(&app.base, FE).await;
    let ranking = || async {
        let html = crate::support::page_text(&page, format!("{}/", app.base)).await;
        let impact = html
            .split("class=\"impact\"")
            .nth(1)
            .unwrap()
            .split("</ol>")
            .next()
            .unwrap()
            .to_string();
        let mut found: Vec<(usize, String)> = others
            .iter()
            .chain([&sev1])
            .map(|n| (impact.find(&format!(">{n}<")).expect("ranked"), n.clone()))
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect::<Vec<String>>()
    };
    assert_eq!(ranking().await[0], sev1, "unanswered sev1 first");
    app.step(FE, &sev1, "diagnosing", json!({})).await;
    assert_eq!(
        ranking().await.last(),
        Some(&sev1),
        "answered, alone in its cluster: after the reduced redundancy"
    );
}

/// The RMA list shows breached and at-risk cases first, above what the filter matches, and keeps
/// to the filter.
#[tokio::test]
async fn the_list_page_puts_breached_cases_first() {
    let app = spawn_app().await;
    let mut numbers = vec![];
    for serial in ["CN-ORD1-0101", "CN-ORD1-0102"] {
        let body = json!({"site": "cw-ord1", "serial": serial, "severity": "sev2", "symptom": "down"});
        numbers.push(
            app.post(FE, "/api/v1/rmas", &body).await.expect(201)["number"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // The first one has waited a day for its first response.
    retime(&app, &numbers[0], Utc::now() - Duration::days(1), None).await;
    let page = crate::support::signed_in(&app.base, FE).await;
    let urgent = |query: &'static str| {
        let (page, base) = (&page, &app.base);
        async move {
            let html = crate::support::page_text(page, format!("{base}/rmas{query}")).await;
            html.split("id=\"urgent-h\"")
                .nth(1)
                .map(|s| s.split("</section>").next().unwrap().to_string())
        }
    };
    let strip = urgent("").await.expect("a breached case is shown first");
    assert!(strip.contains(&format!(">{}<", numbers[0])), "{strip}");
    assert!(!strip.contains(&format!(">{}<", numbers[1])), "only the breached one");
    assert!(strip.contains("countdown c-breached"), "its clock says so");
    assert!(urgent("?site=cw-lga1").await.is_none(), "the filter's site has none");
    assert!(
        urgent("?q=CN-ORD1-0102").await.is_none(),
        "a search shows what it found"
    );

    // Many breached: the strip shows the ten most urgent and says how many there are.
    for serial in [
        "CN-ORD1-0103",
        "CN-ORD1-0104",
        "CN-ORD1-0105",
        "CN-ORD1-0106",
        "CN-ORD1-0107",
        "CN-ORD1-0108",
        "CN-ORD1-0201",
        "CN-ORD1-0202",
        "CN-ORD1-0203",
        "CN-ORD1-0204",
        "CN-ORD1-0205",
        "CN-ORD1-0206",
    ] {
        let body = json!({"site": "cw-ord1", "serial": serial, "severity": "sev2", "symptom": "down"});
        let number = app.post(FE, "/api/v1/rmas", &body).await.expect(201)["number"]
            .as_str()
            .unwrap()
            .to_string();
        retime(&app, &number, Utc::now() - Duration::days(1), None).await;
    }
    let strip = urgent("").await.expect("breached cases are shown first");
    assert!(strip.contains("the 10 most urgent of 13"), "{strip}");
    assert_eq!(strip.matches(">RMA-").count(), 10, "{strip}");
    assert!(!strip.contains(&format!(">{}<", numbers[1])), "only breached ones");
}
