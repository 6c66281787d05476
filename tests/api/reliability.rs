//! Failure rates with exposure: the AFR endpoint of SPEC §10 against counts made here from the
//! database and intervals computed by SciPy.
use crate::helpers::*;
use depot::entities::{part, slot_history, unit};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

/// SciPy's exact Poisson interval for `failures` over `unit_years`, in percent.
fn scipy_interval(failures: u64, unit_years: f64) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/poisson_interval.py");
    let out = std::process::Command::new("python3")
        .args([script, &failures.to_string(), &unit_years.to_string()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "poisson_interval.py (pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every stay started `days` earlier than the fixtures loaded it, so the fleet has a history.
async fn age_the_fleet(app: &TestApp, days: i64) {
    for stay in slot_history::Entity::find().all(&app.db).await.unwrap() {
        let mut am: slot_history::ActiveModel = stay.clone().into();
        am.installed_at = Set(stay.installed_at - chrono::Duration::days(days));
        am.update(&app.db).await.unwrap();
    }
}

/// Unit-years of the units of `part_number` installed in slots, counted straight from the rows.
async fn exposure(app: &TestApp, part_number: &str) -> f64 {
    let part = part::Entity::find()
        .filter(part::Column::Number.eq(part_number))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let ids: std::collections::HashSet<uuid::Uuid> = unit::Entity::find()
        .filter(unit::Column::PartId.eq(part.id))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    let now = chrono::Utc::now();
    slot_history::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .filter(|s| ids.contains(&s.unit_id))
        .map(|s| (s.removed_at.unwrap_or(now) - s.installed_at).num_seconds() as f64 / 86_400.0 / 365.25)
        .sum()
}

fn row<'a>(page: &'a Value, key: &str) -> &'a Value {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {page}"))
}

#[tokio::test]
async fn afr_counts_failures_over_the_years_units_spent_installed() {
    let app = spawn_app().await;
    age_the_fleet(&app, 730).await;
    let whole = json!({"fault_code": "BOOT_FAIL", "replacement_kind": "whole_unit"});
    for serial in ["CN-T01-0001", "CN-T01-0002", "CN-T01-0003"] {
        app.approved(CW_TECH, "cw-ord1", serial, Some(whole.clone())).await;
    }
    // Opened but not approved, and cancelled: not failures.
    app.open(CW_TECH, "cw-ord1", "CN-T01-0004").await;
    let fan = json!({"fault_code": "FAN_FAIL", "replacement_kind": "fru", "replacement_part": "FAN-80MM"});
    app.approved(XAI_TECH, "xai-colossus", "DN-COL1-0101", Some(fan)).await;

    let by_part = app.get(FE, "/api/v1/reliability/afr?by=part").await.expect(200);
    assert_eq!(by_part["next_cursor"], Value::Null);
    let cn = row(&by_part, "CN-5000");
    assert_eq!(cn["failures"], 3);
    let years = exposure(&app, "CN-5000").await;
    let got = cn["unit_years"].as_f64().unwrap();
    assert!(
        (got - years).abs() < 0.01,
        "unit-years {got} vs {years} counted from the slot history"
    );
    assert!(years > 100.0, "units in service with no failure count as exposure");
    let fan_row = row(&by_part, "FAN-80MM");
    assert_eq!(
        fan_row["failures"], 1,
        "an FRU swap is a failure of the FRU, not of its node"
    );
    assert_eq!(row(&by_part, "DN-3000")["failures"], 0);

    for r in by_part["items"].as_array().unwrap() {
        let (k, t) = (r["failures"].as_u64().unwrap(), r["unit_years"].as_f64().unwrap());
        let scipy = scipy_interval(k, t);
        for (ours, theirs) in [("afr_percent", "afr"), ("ci_low", "low"), ("ci_high", "high")] {
            let (a, b) = (r[ours].as_f64().unwrap(), scipy[theirs].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-9),
                "{} {ours}: depot {a}, SciPy {b}",
                r["key"]
            );
        }
    }

    // Grouped by customer; a customer's technician sees its own fleet only.
    let by_org = app.get(FE, "/api/v1/reliability/afr?by=organization").await.expect(200);
    assert_eq!(
        (
            row(&by_org, "coreweave")["failures"].as_u64(),
            row(&by_org, "xai")["failures"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let mine = app
        .get(XAI_TECH, "/api/v1/reliability/afr?by=organization")
        .await
        .expect(200);
    let keys: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["xai"]);
    let mine = app.get(XAI_TECH, "/api/v1/reliability/afr?by=site").await.expect(200);
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"].as_str().unwrap().starts_with("xai-"))
    );
    let xai_cn = row(
        &app.get(XAI_TECH, "/api/v1/reliability/afr?by=part").await.expect(200),
        "CN-5000",
    )["failures"]
        .clone();
    assert_eq!(xai_cn, 0, "CoreWeave's failures are not xAI's");

    // By lot: units carry one.
    let failed = unit::Entity::find()
        .filter(unit::Column::Serial.eq("CN-T01-0001"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: unit::ActiveModel = failed.into();
    am.lot = Set(Some("LOT-2025-07".into()));
    am.update(&app.db).await.unwrap();
    let by_lot = app.get(FE, "/api/v1/reliability/afr?by=lot").await.expect(200);
    assert_eq!(row(&by_lot, "LOT-2025-07")["failures"], 1);
    assert_eq!(row(&by_lot, "(no lot)")["failures"], 3);

    app.get(FE, "/api/v1/reliability/afr?by=colour").await.expect(422);
    app.get(INTEGRATION, "/api/v1/reliability/afr").await.expect(403);
}
