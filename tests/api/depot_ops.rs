//! Depot operations (issue #6): spares reserved at approval and consumed by the shipment, never
//! allocated twice; repairs that consume parts and turn the removed ones into failed units; media
//! that may not go back to stock unsanitized.
use crate::helpers::*;
use futures::future::join_all;
use serde_json::{Value, json};

fn whole_unit() -> Value {
    json!({"fault_code": "PSU", "replacement_kind": "whole_unit"})
}

async fn diagnosing(app: &TestApp, serial: &str) -> String {
    let number = app.open(FE, "cw-ord1", serial).await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    number
}

async fn approved(app: &TestApp, serial: &str, depot: Option<&str>) -> Value {
    let number = diagnosing(app, serial).await;
    let mut fields = whole_unit();
    if let Some(d) = depot {
        fields["depot"] = json!(d);
    }
    app.step(FE, &number, "approved", fields).await;
    app.rma(&number).await
}

async fn stock_of(app: &TestApp, depot: &str, part: &str) -> Vec<Value> {
    app.get(CAM, &format!("/api/v1/stock?depot={depot}&part={part}&limit=200"))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn approval_reserves_a_spare_at_the_chosen_depot_and_the_shipment_consumes_it() {
    let app = spawn_app().await;
    // cw-ord1's own depot is CAM: without a choice the spare is reserved there.
    let first = approved(&app, "CN-ORD1-0101", None).await;
    let reserved = &first["reserved"];
    assert_eq!(reserved["depot"], "CAM", "{first}");
    let serial = reserved["serial"].as_str().unwrap().to_string();
    let shelf = stock_of(&app, "CAM", "CN-5000").await;
    let on_shelf = shelf.iter().find(|u| u["serial"] == serial.as_str()).unwrap();
    assert_eq!(
        on_shelf["reserved_for"], first["number"],
        "the stock shows whom it is kept for"
    );
    let history = app.events(first["number"].as_str().unwrap()).await;
    assert_eq!(history.last().unwrap()["fields"]["reserved_serial"], serial.as_str());

    // Chosen: SAC, although CAM has stock.
    let second = approved(&app, "CN-ORD1-0102", Some("sac")).await;
    assert_eq!(second["reserved"]["depot"], "SAC", "{second}");
    assert_ne!(second["reserved"]["serial"], serial.as_str());

    // Shipping the reserved unit consumes the reservation.
    let number = first["number"].as_str().unwrap();
    let shipped = app
        .step(
            CAM,
            number,
            "replacement_shipped",
            json!({"replacement_serial": serial, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        )
        .await;
    assert!(shipped.get("reserved").is_none_or(Value::is_null), "{shipped}");
    let unit = app.unit(&serial).await;
    assert_eq!(unit["location"], "in_transit");
    assert_eq!(unit["reserved_for"], Value::Null);
    let still_held: Vec<Value> = stock_of(&app, "CAM", "CN-5000")
        .await
        .into_iter()
        .filter(|u| u["reserved_for"] == first["number"])
        .collect();
    assert!(
        still_held.is_empty(),
        "nothing stays reserved for a shipped RMA: {still_held:?}"
    );

    // Cancelling gives the reservation back to the shelf.
    let other = second["number"].as_str().unwrap();
    let kept = second["reserved"]["serial"].as_str().unwrap().to_string();
    app.step(FE, other, "cancelled", json!({"reason": "customer fixed it"}))
        .await;
    assert_eq!(app.unit(&kept).await["reserved_for"], Value::Null);
}

#[tokio::test]
async fn a_technician_may_ship_any_unit_of_the_part_and_the_reservation_moves() {
    let app = spawn_app().await;
    let a = approved(&app, "CN-ORD1-0101", None).await;
    let b = approved(&app, "CN-ORD1-0102", None).await;
    let a_unit = a["reserved"]["serial"].as_str().unwrap().to_string();
    // B ships with the unit kept for A: A is given another one, nothing is reserved twice.
    app.step(
        CAM,
        b["number"].as_str().unwrap(),
        "replacement_shipped",
        json!({"replacement_serial": a_unit, "carrier": "UPS", "tracking_number": "1Z999AA10123456785"}),
    )
    .await;
    let a_now = app.rma(a["number"].as_str().unwrap()).await;
    let moved_to = a_now["reserved"]["serial"].as_str().unwrap();
    assert_ne!(moved_to, a_unit);
    assert_eq!(app.unit(moved_to).await["reserved_for"], a["number"]);
    // B's own reservation was freed when it shipped (A may now hold that very unit).
    let b_now = app.rma(b["number"].as_str().unwrap()).await;
    assert!(b_now.get("reserved").is_none_or(Value::is_null), "{b_now}");
    let held: Vec<Value> = stock_of(&app, "CAM", "CN-5000")
        .await
        .into_iter()
        .filter(|u| !u["reserved_for"].is_null())
        .collect();
    assert_eq!(held.len(), 1, "one reservation on the shelf, A's: {held:?}");
    assert_eq!(held[0]["reserved_for"], a["number"]);
}

#[tokio::test]
async fn two_approvals_racing_for_the_last_spare_at_a_depot_get_one_winner_and_a_clear_409() {
    let app = spawn_app().await;
    // SAC holds three D-nodes: two are reserved first, two RMAs then race for the third.
    let spares = stock_of(&app, "SAC", "DN-3000").await.len();
    assert_eq!(spares, 3);
    approved(&app, "DN-ORD1-0101", Some("SAC")).await;
    approved(&app, "DN-ORD1-0102", Some("SAC")).await;
    let racers = [
        diagnosing(&app, "DN-ORD1-0103").await,
        diagnosing(&app, "DN-ORD1-0104").await,
    ];
    let mut body = whole_unit();
    body["to"] = json!("approved");
    body["version"] = json!(2);
    body["depot"] = json!("SAC");
    let (app, body) = (&app, &body);
    let answers = join_all(
        racers
            .iter()
            .map(|n| async move { app.post(FE, &format!("/api/v1/rmas/{n}/transitions"), body).await }),
    )
    .await;
    let mut codes: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    codes.sort();
    assert_eq!(
        codes,
        [200, 409],
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let loser = answers.iter().find(|a| a.status.as_u16() == 409).unwrap();
    assert_eq!(loser.body["error"]["code"], "conflict");
    let message = loser.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("SAC") && message.contains("reserve"), "{message}");
    let states: Vec<Value> = join_all(racers.iter().map(|n| app.rma(n))).await;
    let still: Vec<&Value> = states.iter().filter(|r| r["status"] == "diagnosing").collect();
    assert_eq!(still.len(), 1, "the loser changed nothing");
    assert_eq!(still[0]["version"], 2);
    let shelf = stock_of(app, "SAC", "DN-3000").await;
    let mut holders: Vec<&str> = shelf.iter().filter_map(|u| u["reserved_for"].as_str()).collect();
    holders.sort();
    holders.dedup();
    assert_eq!(holders.len(), 3, "three units, three different RMAs: {shelf:?}");

    // Nothing left at SAC: asking for it again is refused; leaving the depot out takes CAM's.
    let late = diagnosing(app, "DN-ORD1-0201").await;
    app.try_move(
        FE,
        &late,
        "approved",
        json!({"fault_code": "PSU", "replacement_kind": "whole_unit", "depot": "SAC"}),
    )
    .await
    .expect(409);
    app.step(FE, &late, "approved", whole_unit()).await;
    assert_eq!(app.rma(&late).await["reserved"]["depot"], "CAM");
}

/// An RMA on `serial` (whole-unit replacement) walked to `received` at CAM, packed in `bag` at the
/// pull when given; returns its number.
async fn received(app: &TestApp, serial: &str, bag: Option<&str>) -> String {
    let rma = approved(app, serial, None).await;
    let number = rma["number"].as_str().unwrap().to_string();
    let spare = rma["reserved"]["serial"].as_str().unwrap().to_string();
    app.step(
        CAM,
        &number,
        "replacement_shipped",
        json!({"replacement_serial": spare, "carrier": "UPS", "tracking_number": "1Z999AA10123456786"}),
    )
    .await;
    app.step(FE, &number, "replacement_delivered", json!({})).await;
    let mut swap = json!({"installed_serial": spare, "pulled_serial": serial});
    if let Some(bag) = bag {
        swap["bag_number"] = json!(bag);
    }
    app.step(FE, &number, "swapped", swap).await;
    app.step(
        FE,
        &number,
        "return_shipped",
        json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456787", "depot": "CAM"}),
    )
    .await;
    let scan = json!({"scanned_serial": serial});
    if let Some(bag) = bag {
        // The bag is checked at receiving: missing or different is refused, and changes nothing.
        let missing = app.try_move(CAM, &number, "received", scan.clone()).await.expect(422);
        assert!(missing["error"]["message"].as_str().unwrap().contains(bag), "{missing}");
        let mut wrong = scan.clone();
        wrong["bag_number"] = json!("BAG-OTHER");
        app.try_move(CAM, &number, "received", wrong).await.expect(422);
        assert_eq!(app.rma(&number).await["status"], "return_shipped");
        let mut right = scan;
        right["bag_number"] = json!(bag.to_lowercase());
        app.step(CAM, &number, "received", right).await;
    } else {
        app.step(CAM, &number, "received", scan).await;
    }
    app.step(CAM, &number, "triage", json!({})).await;
    number
}

#[tokio::test]
async fn a_unit_with_media_cannot_return_to_stock_without_its_sanitization_record() {
    let app = spawn_app().await;
    // A D-node holds customer data on its SSDs.
    let number = received(&app, "DN-ORD1-0101", Some("BAG-000417")).await;
    app.step(CAM, &number, "testing", json!({"finding": "no fault found"}))
        .await;
    let passed = json!({"test_results": [{"name": "burn-in 24h", "passed": true, "measurements": {"ssd_errors": 0}}]});
    let before = app.snapshot(&number).await;
    let refused = app
        .try_move(CAM, &number, "returned_to_stock", passed.clone())
        .await
        .expect(422);
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("sanitization"), "{message}");
    let mut bad_method = passed.clone();
    bad_method["sanitization_method"] = json!("wipe");
    bad_method["sanitization_certificate"] = json!("CERT-1");
    app.try_move(CAM, &number, "returned_to_stock", bad_method)
        .await
        .expect(422);
    assert_eq!(app.snapshot(&number).await, before, "refusals change nothing");
    assert_eq!(app.unit("DN-ORD1-0101").await["condition"], "failed");

    let mut sanitized = passed;
    sanitized["sanitization_method"] = json!("purge");
    sanitized["sanitization_certificate"] = json!("NIST-PURGE-2026-0042");
    app.step(CAM, &number, "returned_to_stock", sanitized).await;
    let unit = app.unit("DN-ORD1-0101").await;
    assert_eq!(
        (unit["condition"].as_str(), unit["depot"].as_str()),
        (Some("refurbished"), Some("CAM"))
    );
    let last = app.events(&number).await.pop().unwrap();
    assert_eq!(last["fields"]["sanitization_method"], "purge");
    assert_eq!(last["fields"]["sanitization_certificate"], "NIST-PURGE-2026-0042");
    assert_eq!(last["fields"]["test_results"][0]["measurements"]["ssd_errors"], 0);
}

#[tokio::test]
async fn a_c_node_without_customer_data_returns_to_stock_on_its_tests_alone() {
    let app = spawn_app().await;
    let number = received(&app, "CN-ORD1-0103", None).await;
    app.step(CAM, &number, "testing", json!({"finding": "no fault found"}))
        .await;
    app.step(
        CAM,
        &number,
        "returned_to_stock",
        json!({"test_results": [{"name": "burn-in", "passed": true}]}),
    )
    .await;
}

#[tokio::test]
async fn a_repaired_c_node_consumed_dimm_has_left_stock_and_the_removed_dimm_is_a_failed_unit() {
    let app = spawn_app().await;
    let number = received(&app, "CN-ORD1-0104", None).await;
    app.step(
        CAM,
        &number,
        "repair",
        json!({"finding": "DIMM B3 uncorrectable ECC errors"}),
    )
    .await;
    let dimms_before = stock_of(&app, "CAM", "DIMM-64G").await.len();
    let new_dimm = "DIMM-CAM-S001";
    // A spare reserved for a waiting RMA is not a repair part.
    let waiting = approved(&app, "CN-ORD1-0106", None).await;
    let kept = waiting["reserved"]["serial"].as_str().unwrap();
    app.try_move(CAM, &number, "testing", json!({"parts_consumed": [kept]}))
        .await
        .expect(409);
    // Something not inside this node cannot be "removed" from it, an unknown serial needs its part,
    // and the part just put in is not also taken out.
    for removed in [
        json!({"serial": "CN-ORD1-0105"}),
        json!({"serial": "DIMM-B3-OLD"}),
        json!({"serial": new_dimm}),
    ] {
        let body = json!({"parts_consumed": [new_dimm], "parts_removed": [removed]});
        app.try_move(CAM, &number, "testing", body).await.expect(422);
    }
    assert_eq!(
        stock_of(&app, "CAM", "DIMM-64G").await.len(),
        dimms_before,
        "refusals took nothing"
    );

    app.step(
        CAM,
        &number,
        "testing",
        json!({"parts_consumed": [new_dimm], "parts_removed": [{"serial": "DIMM-B3-OLD", "part": "DIMM-64G"}]}),
    )
    .await;
    let shelf = stock_of(&app, "CAM", "DIMM-64G").await;
    assert_eq!(shelf.len(), dimms_before - 1);
    assert!(
        shelf.iter().all(|u| u["serial"] != new_dimm),
        "the consumed DIMM left stock"
    );
    let installed = app.unit(new_dimm).await;
    assert_eq!(
        installed["parent_serial"], "CN-ORD1-0104",
        "and sits in the repaired node"
    );
    let removed = app.unit("DIMM-B3-OLD").await;
    assert_eq!(removed["condition"], "failed");
    assert_eq!(removed["depot"], "CAM");
    assert_eq!(removed["parent_serial"], Value::Null);
    assert_eq!(removed["replaced_by"], new_dimm);
    let last = app.events(&number).await.pop().unwrap();
    assert_eq!(last["fields"]["parts_removed"][0]["serial"], "DIMM-B3-OLD");
}
