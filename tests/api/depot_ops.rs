//! Depot operations (issue #6): spares reserved at approval and consumed by the shipment, never
//! allocated twice; repairs that consume parts and turn the removed ones into failed units; media
//! that may not go back to stock unsanitized.
use crate::helpers::*;
use futures::future::join_all;
use serde_json::{Value, json};

/// The `key` of each object in the JSON array `list`, as text.
fn column<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

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
    let number = on_its_way_back(app, serial, bag).await;
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

/// Ships the spare reserved for approved RMA `number` from CAM, and `who` at the site takes
/// delivery and swaps it for `pulled` (sealed in `bag` when given). Returns the spare's serial.
async fn ship_and_swap(app: &TestApp, who: &str, number: &str, pulled: &str, bag: Option<&str>) -> String {
    let spare = app.rma(number).await["reserved"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(
        CAM,
        number,
        "replacement_shipped",
        json!({"replacement_serial": spare, "carrier": "UPS", "tracking_number": "1Z999AA10123456786"}),
    )
    .await;
    app.step(who, number, "replacement_delivered", json!({})).await;
    let mut swap = json!({"installed_serial": spare, "pulled_serial": pulled});
    if let Some(bag) = bag {
        swap["bag_number"] = json!(bag);
    }
    app.step(who, number, "swapped", swap).await;
    spare
}

/// An RMA on `serial` (whole-unit replacement) walked to `swapped`, the pulled unit sealed in
/// `bag` when given.
async fn swapped(app: &TestApp, serial: &str, bag: Option<&str>) -> String {
    let number = approved(app, serial, None).await["number"]
        .as_str()
        .unwrap()
        .to_string();
    ship_and_swap(app, FE, &number, serial, bag).await;
    number
}

/// The same, on its way back to CAM.
async fn on_its_way_back(app: &TestApp, serial: &str, bag: Option<&str>) -> String {
    let number = swapped(app, serial, bag).await;
    app.step(
        FE,
        &number,
        "return_shipped",
        json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456787", "depot": "CAM"}),
    )
    .await;
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

/// An FRU RMA on D-node `node` for its SSD `ssd`, walked to `swapped` with the customer keeping
/// the failed drive; returns its number.
async fn kept_drive_swapped(app: &TestApp, node: &str, ssd: &str) -> String {
    let number = diagnosing(app, node).await;
    let fru = json!({"fault_code": "SSD_WEAR", "replacement_kind": "fru", "replacement_part": "SSD-30T"});
    // Keep-your-drive is for parts that hold customer data: a fan ships back.
    let mut fan = json!({"fault_code": "FAN", "replacement_kind": "fru", "replacement_part": "FAN-80MM"});
    fan["keep_your_drive"] = json!(true);
    let refused = app.try_move(FE, &number, "approved", fan).await.expect(422);
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("FAN-80MM"),
        "{refused}"
    );
    let mut kept = fru;
    kept["keep_your_drive"] = json!(true);
    let approved = app.step(FE, &number, "approved", kept).await;
    assert_eq!(approved["keep_your_drive"], true);
    ship_and_swap(app, CW_TECH, &number, ssd, None).await;
    number
}

#[tokio::test]
async fn a_keep_your_drive_rma_closes_on_the_destruction_certificate_and_ships_nothing_back() {
    let app = spawn_app().await;
    let number = kept_drive_swapped(&app, "DN-ORD1-0101", "SSD-ORD1-0101-2").await;
    // Offered only what applies to it: the certificate, not a return shipment.
    let offered = app.get(CW_TECH, &format!("/api/v1/rmas/{number}")).await.expect(200);
    assert_eq!(column(&offered["next_transitions"], "to"), ["scrapped"]);
    let before = app.snapshot(&number).await;
    // Nothing ships back: no return shipment, no return label.
    let ship_back = json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456789", "depot": "CAM"});
    let refused = app
        .try_move(CW_TECH, &number, "return_shipped", ship_back)
        .await
        .expect(409);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keep-your-drive"),
        "{refused}"
    );
    app.get(CW_TECH, &format!("/api/v1/rmas/{number}/label.pdf"))
        .await
        .expect(409);
    app.try_move(CW_TECH, &number, "scrapped", json!({})).await.expect(422);
    assert_eq!(app.snapshot(&number).await, before, "refusals change nothing");

    let closed = app
        .step(
            CW_TECH,
            &number,
            "scrapped",
            json!({"destruction_certificate": "DESTR-CW-2026-118"}),
        )
        .await;
    assert_eq!(closed["destruction_certificate"], "DESTR-CW-2026-118");
    assert!(closed["closed_at"].is_string());
    let drive = app.unit("SSD-ORD1-0101-2").await;
    assert_eq!(
        (drive["condition"].as_str(), drive["location"].as_str()),
        (Some("scrapped"), Some("site"))
    );
    let clock = closed["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "return_shipped")
        .unwrap()
        .clone();
    assert_eq!(clock["state"], "met", "the certificate stops the return clock: {clock}");
    let entries = closed["repair"]["entries"].as_array().unwrap();
    assert_eq!(entries[0]["kind"], "destroyed_by_customer");
    assert_eq!(entries[0]["details"]["destruction_certificate"], "DESTR-CW-2026-118");

    // An RMA whose unit ships back cannot close that way, and is not offered it.
    let plain = swapped(&app, "CN-ORD1-0104", None).await;
    let offered = app.get(CW_TECH, &format!("/api/v1/rmas/{plain}")).await.expect(200);
    assert_eq!(column(&offered["next_transitions"], "to"), ["return_shipped"]);
    let refused = app
        .try_move(FE, &plain, "scrapped", json!({"destruction_certificate": "X"}))
        .await
        .expect(409);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keep-your-drive"),
        "{refused}"
    );
}

#[tokio::test]
async fn depot_findings_use_the_catalog_and_technician_time_adds_up() {
    let app = spawn_app().await;
    let catalog = app.get(CAM, "/api/v1/finding-codes").await.expect(200);
    let codes: Vec<&str> = column(&catalog["items"], "code");
    assert!(codes.contains(&"DIMM-UE") && codes.contains(&"NFF"), "{codes:?}");

    let number = received(&app, "CN-ORD1-0104", None).await;
    let before = app.snapshot(&number).await;
    let unknown = json!({"finding": "bad DIMM", "finding_codes": ["DIMM-UE", "NOT-A-CODE"]});
    let refused = app.try_move(CAM, &number, "repair", unknown).await.expect(422);
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("NOT-A-CODE"), "{refused}");
    assert!(
        !message.contains("/admin"),
        "no pointer to a page technicians may not open: {message}"
    );
    for minutes in [-5, 100_000] {
        let body = json!({"finding": "bad DIMM", "labor_minutes": minutes});
        app.try_move(CAM, &number, "repair", body).await.expect(422);
    }
    assert_eq!(app.snapshot(&number).await, before, "refusals change nothing");

    app.step(
        CAM,
        &number,
        "repair",
        json!({"finding": "DIMM B3 uncorrectable", "finding_codes": ["dimm_ue", "DIMM-UE", "Dimm Ue"], "labor_minutes": 25}),
    )
    .await;
    app.step(
        CAM,
        &number,
        "testing",
        json!({"parts_consumed": ["DIMM-CAM-S001"], "labor_minutes": 40}),
    )
    .await;
    let done = app
        .step(
            CAM,
            &number,
            "returned_to_stock",
            json!({"test_results": [{"name": "memtest", "passed": true}], "labor_minutes": 15}),
        )
        .await;
    assert_eq!(done["labor_minutes"], 80);
    let repair = &done["repair"];
    assert_eq!(repair["labor_minutes"], 80);
    let kinds: Vec<&str> = column(&repair["entries"], "kind");
    assert_eq!(kinds, ["finding", "parts_consumed", "test_run"]);
    let finding = &repair["entries"][0];
    assert_eq!(
        finding["details"]["codes"],
        json!(["DIMM-UE"]),
        "the catalog's spelling, whatever the case and separators typed, once"
    );
    assert_eq!(finding["operator"], CAM);
    assert!(finding["at"].is_string());
}

#[tokio::test]
async fn a_vendor_escalation_records_both_shipments_and_the_time_at_the_vendor() {
    let app = spawn_app().await;
    let number = received(&app, "CN-ORD1-0104", None).await;
    // A shipment to the vendor needs a valid tracking number when one is given.
    let bad = json!({"vendor": "Supermicro", "vendor_reference": "SMC-RMA-7781", "carrier": "UPS", "tracking_number": "nope"});
    app.try_move(CAM, &number, "vendor_escalated", bad).await.expect(422);
    app.step(
        CAM,
        &number,
        "vendor_escalated",
        json!({"vendor": "Supermicro", "vendor_reference": "SMC-RMA-7781", "carrier": "FedEx", "tracking_number": "123456789012", "labor_minutes": 10}),
    )
    .await;
    let away = app.unit("CN-ORD1-0104").await;
    assert_eq!(away["location"], "vendor");
    let there = app.rma(&number).await;
    let visit = &there["repair"]["vendor"];
    assert_eq!(visit["vendor"], "Supermicro");
    assert_eq!(visit["back_at"], Value::Null);
    assert!(visit["days_at_vendor"].as_f64().unwrap() >= 0.0);
    let back = app
        .step(
            CAM,
            &number,
            "testing",
            json!({"vendor_return_reference": "SMC-RET-0091", "carrier": "FedEx", "tracking_number": "123456789013"}),
        )
        .await;
    let visit = &back["repair"]["vendor"];
    assert_eq!(visit["vendor_return_reference"], "SMC-RET-0091");
    assert!(visit["back_at"].is_string());
    let directions: Vec<&str> = column(&back["shipments"], "direction");
    assert!(directions.ends_with(&["to_vendor", "from_vendor"]), "{directions:?}");
    assert!(
        back["shipments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["delivered_at"].is_null())
    );
    assert_eq!(app.unit("CN-ORD1-0104").await["location"], "depot");
    // The visit stays on the record once newer entries push its own out of the latest 50.
    for i in 0..26 {
        let failed = json!({"test_results": [{"name": format!("burn-in {i}"), "passed": false}]});
        app.step(CAM, &number, "repair", failed).await;
        app.step(CAM, &number, "testing", json!({"parts_consumed": []})).await;
    }
    let record = &app.rma(&number).await["repair"];
    let kinds: Vec<&str> = column(&record["entries"], "kind");
    assert_eq!(kinds.len(), 50);
    assert!(!kinds.iter().any(|k| k.starts_with("vendor")), "{kinds:?}");
    assert_eq!(record["vendor"]["vendor"], "Supermicro");
    assert_eq!(record["vendor"]["vendor_return_reference"], "SMC-RET-0091");
}

#[tokio::test]
async fn a_pallet_is_received_in_one_session_with_unexpected_serials_listed() {
    let app = spawn_app().await;
    let first = on_its_way_back(&app, "CN-ORD1-0103", None).await;
    let second = on_its_way_back(&app, "DN-ORD1-0101", Some("BAG-77")).await;
    let third = on_its_way_back(&app, "CN-ORD1-0104", None).await;

    // Only a depot technician opens one, at their own depot.
    app.post(FE, "/api/v1/receiving/sessions", &json!({})).await.expect(403);
    let session = app
        .post(
            CAM,
            "/api/v1/receiving/sessions",
            &json!({"reference": "PALLET-UPS-0412"}),
        )
        .await
        .expect(201);
    let id = session["id"].as_str().unwrap().to_string();
    let expected: Vec<&str> = column(&session["still_expected"], "rma");
    assert_eq!(expected, [first.as_str(), second.as_str(), third.as_str()]);
    let scans = format!("/api/v1/receiving/sessions/{id}/scans");
    app.post(SAC, &scans, &json!({"serial": "CN-ORD1-0103"}))
        .await
        .expect(403);
    app.post(CAM, &scans, &json!({"serial": ""})).await.expect(422);

    let scan = |serial: &str, bag: Option<&str>| {
        let body = json!({"serial": serial, "bag_number": bag});
        let (app, scans) = (&app, scans.clone());
        async move { app.post(CAM, &scans, &body).await.expect(201) }
    };
    let got = scan("cn-ord1-0103", None).await;
    assert_eq!(
        (got["outcome"].as_str(), got["rma"].as_str()),
        (Some("received"), Some(first.as_str()))
    );
    assert_eq!(scan("CN-ORD1-0103", None).await["outcome"], "repeated");
    let stranger = scan("CN-ORD1-0105", None).await;
    assert_eq!(stranger["outcome"], "unexpected", "{stranger}");
    let unknown = scan("ZZ-NEVER-SEEN-1", None).await;
    assert_eq!(unknown["outcome"], "unexpected");
    // A unit with media needs its bag: refused (and left on its way) until scanned with it.
    let no_bag = scan("DN-ORD1-0101", None).await;
    assert_eq!(no_bag["outcome"], "refused");
    assert!(no_bag["message"].as_str().unwrap().contains("BAG-77"), "{no_bag}");
    assert_eq!(app.rma(&second).await["status"], "return_shipped");
    assert_eq!(scan("DN-ORD1-0101", Some("BAG-77")).await["outcome"], "received");

    let now = app
        .get(CAM, &format!("/api/v1/receiving/sessions/{id}"))
        .await
        .expect(200);
    assert_eq!(
        (
            now["received"].as_u64(),
            now["unexpected"].as_u64(),
            now["refused"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    let missing: Vec<&str> = column(&now["still_expected"], "rma");
    assert_eq!(missing, [third.as_str()], "the box that did not turn up");
    assert_eq!(app.rma(&first).await["status"], "received");
    assert_eq!(app.unit("CN-ORD1-0103").await["depot"], "CAM");
    let note = app.events(&first).await.pop().unwrap()["note"].clone();
    assert!(note.as_str().unwrap().contains("PALLET-UPS-0412"), "{note}");

    let closed = app
        .post(CAM, &format!("/api/v1/receiving/sessions/{id}/close"), &json!({}))
        .await
        .expect(200);
    assert!(closed["closed_at"].is_string());
    app.post(CAM, &scans, &json!({"serial": "CN-ORD1-0104"}))
        .await
        .expect(409);
    assert_eq!(app.rma(&third).await["status"], "return_shipped");
    let listed = app.get(CAM, "/api/v1/receiving/sessions").await.expect(200);
    assert_eq!(listed["items"][0]["id"], id.as_str());
    app.get(CW_TECH, &format!("/api/v1/receiving/sessions/{id}"))
        .await
        .expect(403);
    app.get(CAM, "/api/v1/receiving/sessions/not-a-session")
        .await
        .expect(404);
}

#[tokio::test]
async fn a_unit_back_within_90_days_and_a_slot_that_eats_two_units_are_flagged() {
    let app = spawn_app().await;
    // CN-ORD1-0101 fails, is restored in the field, then fails again: a repeat.
    let first = diagnosing(&app, "CN-ORD1-0101").await;
    app.step(FE, &first, "restored", json!({"resolution": "reseated DIMMs"}))
        .await;
    let again = diagnosing(&app, "CN-ORD1-0101").await;
    let flags = app.rma(&again).await["flags"].clone();
    assert_eq!(flags[0]["code"], "repeat_failure", "{flags}");
    assert_eq!(flags[0]["rmas"], json!([first]));
    let unit = app.get(FE, "/units/CN-ORD1-0101").await;
    assert_eq!(unit.status.as_u16(), 200);

    assert!(
        flags[0]["message"].as_str().unwrap().contains("0 days earlier"),
        "{flags}"
    );

    // A transition's answer shows the same flags as the RMA's page.
    let approved = app.step(FE, &again, "approved", whole_unit()).await;
    assert_eq!(approved["flags"], flags);

    // Its slot: the node is replaced, and the replacement fails in the same slot.
    let spare = ship_and_swap(&app, FE, &again, "CN-ORD1-0101", None).await;
    let next = diagnosing(&app, &spare).await;
    let flags = app.rma(&next).await["flags"].clone();
    let slot_flag = flags
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "slot_eats_units")
        .unwrap_or_else(|| panic!("{flags}"));
    assert_eq!(slot_flag["rmas"], json!([again, next]));
    // The restored RMA ate no unit and the spare has no history: only the slot flag.
    assert_eq!(flags.as_array().unwrap().len(), 1, "{flags}");
    // Another customer's technician sees none of it; this customer's sees its own.
    app.get(XAI_TECH, &format!("/api/v1/rmas/{next}")).await.expect(404);
    assert_eq!(
        app.get(CW_TECH, &format!("/api/v1/rmas/{next}")).await.expect(200)["flags"],
        flags
    );

    // Looking back from when an RMA was opened: with the first RMA opened 100 days before the
    // second, the second is no repeat (the window is 90 days); at 89 days it is, and says so.
    let opened_days_before = |days: i64| {
        let (app, first, again) = (&app, first.clone(), again.clone());
        async move {
            use depot::entities::rma;
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
            let again_opened = rma::Entity::find()
                .filter(rma::Column::Number.eq(again.as_str()))
                .one(&app.db)
                .await
                .unwrap()
                .unwrap()
                .created_at;
            rma::Entity::update_many()
                .col_expr(
                    rma::Column::CreatedAt,
                    Expr::value(again_opened - chrono::Duration::days(days)),
                )
                .filter(rma::Column::Number.eq(first.as_str()))
                .exec(&app.db)
                .await
                .unwrap();
            app.rma(&again).await["flags"].clone()
        }
    };
    let flags = opened_days_before(100).await;
    assert!(
        flags.as_array().unwrap().iter().all(|f| f["code"] != "repeat_failure"),
        "{flags}"
    );
    let flags = opened_days_before(89).await;
    assert_eq!(flags[0]["code"], "repeat_failure", "{flags}");
    assert!(
        flags[0]["message"].as_str().unwrap().contains("89 days earlier"),
        "{flags}"
    );
}

#[tokio::test]
async fn low_stock_thresholds_alert_once_per_crossing_and_the_restock_view_says_what_to_move() {
    use depot::entities::notification;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    let set = |who: &'static str, body: Value| {
        let app = &app;
        async move { app.put(who, "/api/v1/stock/thresholds", &body).await }
    };
    // Who may set what, and bad input.
    set(CW_TECH, json!({"depot": "SAC", "part": "DN-3000", "minimum": 3}))
        .await
        .expect(403);
    set(CAM, json!({"depot": "SAC", "part": "DN-3000", "minimum": 3}))
        .await
        .expect(403);
    set(SAC, json!({"depot": "SAC", "part": "DN-9", "minimum": 3}))
        .await
        .expect(422);
    set(SAC, json!({"depot": "SAC", "part": "DN-3000", "minimum": -1}))
        .await
        .expect(422);
    set(SAC, json!({"depot": "SAC", "part": "DN-3000"})).await.expect(422);
    let line = set(SAC, json!({"depot": "sac", "part": "DN-3000", "minimum": 2}))
        .await
        .expect(200);
    assert_eq!(
        (line["available"].as_i64(), line["short"].as_bool()),
        (Some(3), Some(false))
    );
    set(ADMIN, json!({"depot": "CAM", "part": "DN-3000", "minimum": 1}))
        .await
        .expect(200);
    let alerts = || async {
        notification::Entity::find()
            .filter(notification::Column::Template.eq("low_stock"))
            .all(&app.db)
            .await
            .unwrap()
    };
    let sac_line = || async {
        let lines = app.get(SAC, "/api/v1/stock/thresholds").await.expect(200);
        lines["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["depot"] == "SAC")
            .unwrap()
            .clone()
    };

    // Reservations take SAC's D-nodes: 3 → 2 stays at the minimum, 2 → 1 crosses it: one alert to
    // SAC's technicians and the admins, recorded with the event; 1 → 0 sends nothing more.
    approved(&app, "DN-ORD1-0101", Some("SAC")).await;
    assert!(alerts().await.is_empty());
    let crossing = approved(&app, "DN-ORD1-0102", Some("SAC")).await;
    let queued = alerts().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipients, json!([ADMIN, SAC]), "not the customer, not CAM");
    assert_eq!(queued[0].channel, "email", "and no customer webhook");
    let event = app.events(crossing["number"].as_str().unwrap()).await.pop().unwrap();
    assert_eq!(event["fields"]["low_stock"][0]["available"], 1, "{event}");
    let last = approved(&app, "DN-ORD1-0103", Some("SAC")).await;
    assert_eq!(alerts().await.len(), 1, "one alert per crossing");
    let sac = sac_line().await;
    assert_eq!(
        (sac["available"].as_i64(), sac["short"].as_bool()),
        (Some(0), Some(true))
    );
    assert!(sac["short_since"].is_string());

    // The restock view: SAC is 2 short; CAM can give what it holds above its own minimum.
    let plan = app.get(SAC, "/api/v1/stock/restock").await.expect(200);
    let cam_spares = stock_of(&app, "CAM", "DN-3000").await.len() as i64;
    assert_eq!(
        plan["moves"],
        json!([{"part": "DN-3000", "from": "CAM", "to": "SAC", "quantity": 2.min(cam_spares - 1)}]),
        "{plan}"
    );
    assert_eq!(plan["short"][0]["depot"], "SAC");
    app.get(CW_TECH, "/api/v1/stock/restock").await.expect(403);

    // Cancelling gives spares back: the shelf recovers, and the next drop alerts again.
    for rma in [&crossing, &last] {
        app.step(
            FE,
            rma["number"].as_str().unwrap(),
            "cancelled",
            json!({"reason": "duplicate"}),
        )
        .await;
    }
    let sac = sac_line().await;
    assert_eq!(
        (sac["available"].as_i64(), sac["short"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(sac["short_since"], Value::Null);
    approved(&app, "DN-ORD1-0104", Some("SAC")).await;
    assert_eq!(alerts().await.len(), 2);
    assert_eq!(
        set(SAC, json!({"depot": "SAC", "part": "DN-3000", "minimum": 0}))
            .await
            .status
            .as_u16(),
        204
    );
    assert!(
        app.get(SAC, "/api/v1/stock/thresholds").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["depot"] != "SAC")
    );
}

/// An RMA's answer and page cost the same however long its history: the answer carries the latest
/// 50 repair entries and their total, the page the latest 50 events and a link to all of them.
#[tokio::test]
async fn a_long_history_is_answered_by_its_latest_entries_and_their_total() {
    let app = spawn_app().await;
    let serial = "CN-ORD1-0101";
    let number = app.approved(FE, "cw-ord1", serial, None).await;
    app.swapped(&number, CW_TECH, serial).await;
    app.back_at_triage(&number, CW_TECH, serial).await;
    app.step(CAM, &number, "testing", json!({"finding": "no fault found yet"}))
        .await;
    const CYCLES: usize = 30;
    for i in 0..CYCLES {
        let failed = json!({"test_results": [{"name": format!("burn-in {i}"), "passed": false}]});
        app.step(CAM, &number, "repair", failed).await;
        app.step(CAM, &number, "testing", json!({"parts_consumed": []})).await;
    }
    let rma = app.rma(&number).await;
    let repair = &rma["repair"];
    let entries = repair["entries"].as_array().unwrap();
    assert_eq!(
        repair["entries_total"],
        1 + 2 * CYCLES,
        "the finding and two records a cycle"
    );
    assert_eq!(entries.len(), 50, "the latest 50 only");
    assert_eq!(
        entries.last().unwrap()["kind"],
        "parts_consumed",
        "oldest first, ending with the latest"
    );
    assert_eq!(
        entries[entries.len() - 2]["details"]["test_results"][0]["name"],
        format!("burn-in {}", CYCLES - 1)
    );
    assert_eq!(rma["clocks"][0]["name"], "first_response");
    assert_eq!(rma["clocks"][0]["state"], "met");
    let all_events = app.events(&number).await.len();
    assert!(all_events > 60 + 8, "{all_events}");

    let page = crate::support::signed_in(&app.base, CAM).await;
    let html = |url: String| crate::support::page_text(&page, url);
    // The entries of the History section, the page's last.
    let history = |page: &str| {
        page.split("id=\"hist-h\"")
            .nth(1)
            .unwrap()
            .matches("<time datetime=")
            .count()
    };
    let recent = html(format!("{}/rmas/{number}", app.base)).await;
    assert!(recent.contains("The latest 50 entries."), "the page says it shows part");
    assert!(
        recent.contains("The latest 50 of 61 entries"),
        "and of the depot record"
    );
    assert_eq!(history(&recent), 50);
    // The history reads in words: a test run is its name and result, not JSON.
    let section = recent.split("id=\"hist-h\"").nth(1).unwrap();
    assert!(section.contains("passed no"), "results in words");
    assert!(
        !section.contains("{&quot;") && !section.contains("dedupe_key"),
        "no JSON or internal keys"
    );
    let whole = html(format!("{}/rmas/{number}?history=all", app.base)).await;
    assert_eq!(history(&whole), all_events);
    assert!(!whole.contains("The latest 50 entries."));
}
