//! The two golden paths of the foundation issue, with the unit bookkeeping checked at each step.
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn coreweave_cnode_dimm_fault_is_replaced_whole_and_refurbished_into_stock() {
    let app = spawn_app().await;
    let failed = "CN-ORD1-0103";
    let rma = app.open(CW_TECH, "cw-ord1", failed).await;
    let number = rma["number"].as_str().unwrap().to_string();
    assert_eq!(
        (
            rma["status"].as_str(),
            rma["organization"].as_str(),
            rma["slot"].as_str()
        ),
        (Some("reported"), Some("coreweave"), Some("R01-U05"))
    );
    assert_eq!(rma["return_depot"], "CAM");
    app.step(FE, &number, "diagnosing", json!({"note": "BMC shows DIMM A1 UE"}))
        .await;

    // Components are not swapped inside a C-node: a DIMM FRU replacement is refused with the reason.
    let err = app
        .try_move(
            FE,
            &number,
            "approved",
            json!({"fault_code": "DIMM_UE", "replacement_kind": "fru", "replacement_part": "DIMM-64G"}),
        )
        .await
        .expect(422);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("C-node") && message.contains("whole_unit"),
        "{message}"
    );
    let approved = app
        .step(
            FE,
            &number,
            "approved",
            json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"}),
        )
        .await;
    assert_eq!(approved["replacement_kind"], "whole_unit");

    let replacement = app.stock_unit("CAM", "CN-5000").await;
    let shipped = app
        .step(
            CAM,
            &number,
            "replacement_shipped",
            json!({"replacement_serial": replacement, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        )
        .await;
    assert_eq!(shipped["replacement_serial"], replacement.as_str());
    assert_eq!(shipped["shipments"][0]["direction"], "outbound");
    assert_eq!(app.unit(&replacement).await["location"], "in_transit");
    let stock = app
        .get(CAM, "/api/v1/stock?depot=CAM&part=CN-5000&limit=500")
        .await
        .expect(200);
    assert!(
        !stock["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["serial"] == replacement.as_str()),
        "shipped unit left stock"
    );

    app.step(CW_TECH, &number, "replacement_delivered", json!({})).await;
    let delivered = app.unit(&replacement).await;
    assert_eq!(
        (delivered["location"].as_str(), delivered["site"].as_str()),
        (Some("site"), Some("cw-ord1"))
    );

    app.step(
        CW_TECH,
        &number,
        "swapped",
        json!({"installed_serial": replacement, "pulled_serial": failed}),
    )
    .await;
    let installed = app.unit(&replacement).await;
    assert_eq!(installed["slot"], "R01-U05");
    let pulled = app.unit(failed).await;
    assert_eq!(
        (
            pulled["condition"].as_str(),
            pulled["slot"].as_str(),
            pulled["replaced_by"].as_str()
        ),
        (Some("failed"), None, Some(replacement.as_str()))
    );

    app.step(
        CW_TECH,
        &number,
        "return_shipped",
        json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "CAM"}),
    )
    .await;
    assert_eq!(app.unit(failed).await["location"], "in_transit");
    app.step(
        CAM,
        &number,
        "received",
        json!({"scanned_serial": failed.to_lowercase()}),
    )
    .await;
    let received = app.unit(failed).await;
    assert_eq!(
        (received["location"].as_str(), received["depot"].as_str()),
        (Some("depot"), Some("CAM"))
    );
    app.step(CAM, &number, "triage", json!({})).await;
    app.step(
        CAM,
        &number,
        "repair",
        json!({"finding": "DIMM A1 uncorrectable errors"}),
    )
    .await;
    let dimm = app.stock_unit("CAM", "DIMM-64G").await;
    app.step(CAM, &number, "testing", json!({"parts_consumed": [dimm]}))
        .await;
    assert_eq!(app.unit(&dimm).await["parent_serial"], failed);
    let closed = app
        .step(
            CAM,
            &number,
            "returned_to_stock",
            json!({"test_results": [{"name": "burn-in 24h", "passed": true}]}),
        )
        .await;
    assert!(closed["closed_at"].is_string());
    assert_eq!(closed["next_transitions"], json!([]));

    let refurbished = app.unit(failed).await;
    assert_eq!(
        (refurbished["condition"].as_str(), refurbished["depot"].as_str()),
        (Some("refurbished"), Some("CAM"))
    );
    let stock = app
        .get(CAM, "/api/v1/stock?depot=CAM&part=CN-5000&condition=refurbished")
        .await
        .expect(200);
    assert_eq!(
        stock["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["serial"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![failed]
    );

    // The loop closes: the refurbished node is the replacement of a later RMA.
    let later = app.open(FE, "cw-ord1", "CN-ORD1-0104").await;
    let later_number = later["number"].as_str().unwrap().to_string();
    app.step(FE, &later_number, "diagnosing", json!({})).await;
    app.step(
        FE,
        &later_number,
        "approved",
        json!({"fault_code": "BOOT_FAIL", "replacement_kind": "whole_unit"}),
    )
    .await;
    let shipped = app
        .step(
            CAM,
            &later_number,
            "replacement_shipped",
            json!({"replacement_serial": failed, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
        )
        .await;
    assert_eq!(shipped["replacement_serial"], failed);
    assert_eq!(app.unit(failed).await["location"], "in_transit");

    let kinds: Vec<String> = app
        .events(&number)
        .await
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "reported",
            "diagnosing",
            "approved",
            "replacement_shipped",
            "replacement_delivered",
            "swapped",
            "return_shipped",
            "received",
            "triage",
            "repair",
            "testing",
            "returned_to_stock"
        ]
    );
}

#[tokio::test]
async fn xai_dnode_fan_is_replaced_as_an_fru_from_sac_and_the_failed_fan_scrapped() {
    let app = spawn_app().await;
    let node = "DN-COL1-0101";
    let failed_fan = "FAN-COL1-0101-1";
    assert_eq!(app.unit(failed_fan).await["parent_serial"], node);
    let rma = app.open(XAI_TECH, "xai-colossus", node).await;
    let number = rma["number"].as_str().unwrap().to_string();
    assert_eq!(rma["return_depot"], "SAC");
    app.step(FE, &number, "diagnosing", json!({})).await;
    // A DIMM is not field-replaceable, even in a D-node.
    let err = app
        .try_move(
            FE,
            &number,
            "approved",
            json!({"fault_code": "X", "replacement_kind": "fru", "replacement_part": "DIMM-64G"}),
        )
        .await
        .expect(422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not field-replaceable"),
        "{err}"
    );
    let err = app
        .try_move(
            FE,
            &number,
            "approved",
            json!({"fault_code": "X", "replacement_kind": "fru"}),
        )
        .await
        .expect(422);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("replacement_part"),
        "{err}"
    );
    let approved = app
        .step(
            FE,
            &number,
            "approved",
            json!({"fault_code": "FAN_TACH_LOW", "replacement_kind": "fru", "replacement_part": "FAN-80MM"}),
        )
        .await;
    assert_eq!(approved["replacement_part"], "FAN-80MM");

    // SAC ships from its own stock; a whole D-node is refused as the replacement of a fan.
    let sac_node = app.stock_unit("SAC", "DN-3000").await;
    let ship =
        |serial: &str| json!({"replacement_serial": serial, "carrier": "FedEx", "tracking_number": "123456789012"});
    app.try_move(SAC, &number, "replacement_shipped", ship(&sac_node))
        .await
        .expect(422);
    let new_fan = app.stock_unit("SAC", "FAN-80MM").await;
    app.step(SAC, &number, "replacement_shipped", ship(&new_fan)).await;
    app.step(
        XAI_TECH,
        &number,
        "replacement_delivered",
        json!({"delivered_at": "2026-11-25T10:00:00Z"}),
    )
    .await;

    // The pulled serial must be the failed FRU inside the node, not the node itself.
    let err = app
        .try_move(
            XAI_TECH,
            &number,
            "swapped",
            json!({"installed_serial": new_fan, "pulled_serial": node}),
        )
        .await
        .expect(422);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FAN-80MM inside DN-COL1-0101"),
        "{err}"
    );
    let swapped = app
        .step(
            XAI_TECH,
            &number,
            "swapped",
            json!({"installed_serial": new_fan, "pulled_serial": failed_fan}),
        )
        .await;
    assert_eq!(
        (swapped["serial"].as_str(), swapped["returned_serial"].as_str()),
        (Some(node), Some(failed_fan))
    );
    let installed = app.unit(&new_fan).await;
    assert_eq!(
        (installed["parent_serial"].as_str(), installed["slot"].as_str()),
        (Some(node), Some("R01-U21/FAN1"))
    );
    let pulled = app.unit(failed_fan).await;
    assert_eq!(
        (pulled["parent_serial"].as_str(), pulled["condition"].as_str()),
        (None, Some("failed"))
    );
    assert_eq!(app.unit(node).await["slot"], "R01-U21", "the node stays in service");

    app.step(
        XAI_TECH,
        &number,
        "return_shipped",
        json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784", "depot": "SAC"}),
    )
    .await;
    let err = app
        .try_move(SAC, &number, "received", json!({"scanned_serial": node}))
        .await
        .expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains(failed_fan), "{err}");
    app.step(SAC, &number, "received", json!({"scanned_serial": failed_fan}))
        .await;
    app.step(SAC, &number, "triage", json!({})).await;
    let scrapped = app
        .step(SAC, &number, "scrapped", json!({"reason": "bearing seized"}))
        .await;
    assert!(scrapped["closed_at"].is_string());
    let fan = app.unit(failed_fan).await;
    assert_eq!(
        (fan["condition"].as_str(), fan["depot"].as_str()),
        (Some("scrapped"), Some("SAC"))
    );
    let stock = app
        .get(SAC, "/api/v1/stock?depot=SAC&part=FAN-80MM&limit=500")
        .await
        .expect(200);
    assert!(
        !stock["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["serial"] == failed_fan || u["serial"] == new_fan.as_str())
    );
}
