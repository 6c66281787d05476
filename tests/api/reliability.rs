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
    keyed(&page["items"], key)
}

/// The row of `rows` whose `key` is `key`.
fn keyed<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {rows}"))
}

/// The CAM shelf of CN-5000 in a spares plan.
fn cam_cn5000(plan: &Value) -> Value {
    plan["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["depot"] == "CAM" && l["part"] == "CN-5000")
        .unwrap()
        .clone()
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

    // As CSV, with a lot name that a spreadsheet would run as a formula defused.
    let mut am: unit::ActiveModel = unit::Entity::find()
        .filter(unit::Column::Serial.eq("CN-T01-0002"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .into();
    am.lot = Set(Some("=HYPERLINK(1)".into()));
    am.update(&app.db).await.unwrap();
    let (status, body) = app.download(FE, "/api/v1/reliability/afr?by=lot&format=csv").await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(body).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("key,failures,unit_years,afr_percent,ci_low,ci_high"));
    assert!(csv.contains("'=HYPERLINK(1),1,"), "{csv}");
    assert!(csv.contains("LOT-2025-07,1,"), "{csv}");

    app.get(FE, "/api/v1/reliability/afr?by=colour").await.expect(422);
    app.get(INTEGRATION, "/api/v1/reliability/afr").await.expect(403);
}

/// lifelines' fits of the same lives.
fn lifelines_fit(lives: &[(f64, bool)]) -> Value {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/weibull_fit.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input: Vec<Value> = lives.iter().map(|(d, f)| json!({"days": d, "failed": f})).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "weibull_fit.py (pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A fleet whose lives are drawn from a known Weibull (β = 1.8, η = 400 days) and censored at a
/// uniform age: depot's fit and Kaplan–Meier curve agree with lifelines on the same lives, and the
/// fit finds the parameters the fleet was drawn from.
#[tokio::test]
async fn weibull_and_kaplan_meier_match_lifelines_on_a_fleet_drawn_from_a_known_weibull() {
    use rand::{Rng, SeedableRng};
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let (beta, eta) = (1.8f64, 400.0f64);
    // Every installed CN-5000 with its site's code.
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT u.serial, st.code, h.id FROM units u \
             JOIN parts p ON p.id = u.part_id JOIN slot_history h ON h.unit_id = u.id AND h.removed_at IS NULL \
             JOIN slots s ON s.id = h.slot_id JOIN clusters c ON c.id = s.cluster_id JOIN sites st ON st.id = c.site_id \
             WHERE p.number = 'CN-5000' ORDER BY u.serial",
        ))
        .await
        .unwrap();
    assert!(rows.len() >= 60, "{} CN-5000 in service", rows.len());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = chrono::Utc::now();
    let mut lives = vec![];
    let mut failing = vec![];
    for row in &rows {
        let serial: String = row.try_get_by_index(0).unwrap();
        let site: String = row.try_get_by_index(1).unwrap();
        let stay: uuid::Uuid = row.try_get_by_index(2).unwrap();
        let life = eta * (-(1.0 - rng.random::<f64>()).ln()).powf(1.0 / beta);
        let censored_at = rng.random_range(30.0..700.0);
        let (days, failed) = if life < censored_at {
            (life, true)
        } else {
            (censored_at, false)
        };
        let mut am: slot_history::ActiveModel = slot_history::Entity::find_by_id(stay)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .into();
        am.installed_at = Set(now - chrono::Duration::milliseconds((days * 86_400_000.0) as i64));
        am.update(&app.db).await.unwrap();
        lives.push((days, failed));
        if failed {
            failing.push((serial, site));
        }
    }
    for (serial, site) in &failing {
        app.approved(FE, site, serial, None).await;
    }
    let theirs = lifelines_fit(&lives);

    let fits = app.get(FE, "/api/v1/reliability/weibull").await.expect(200);
    let ours = fits["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["part"] == "CN-5000")
        .unwrap()
        .clone();
    assert_eq!(ours["failures"].as_u64(), Some(failing.len() as u64));
    assert_eq!(ours["lives"].as_u64(), Some(rows.len() as u64));
    let close = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance * b.abs();
    let (our_beta, our_eta) = (ours["beta"].as_f64().unwrap(), ours["eta_days"].as_f64().unwrap());
    let (their_beta, their_eta) = (theirs["beta"].as_f64().unwrap(), theirs["eta"].as_f64().unwrap());
    // The requests take seconds; lives are hundreds of days, so 1e-3 covers the clock and
    // lifelines' optimiser tolerance.
    assert!(
        close(our_beta, their_beta, 1e-3),
        "β: depot {our_beta}, lifelines {their_beta}"
    );
    assert!(
        close(our_eta, their_eta, 1e-3),
        "η: depot {our_eta}, lifelines {their_eta}"
    );
    // The interval is β·exp(±1.96·se/β) with lifelines' standard error.
    let se = theirs["beta_se"].as_f64().unwrap();
    let low = their_beta * (-1.959_964 * se / their_beta).exp();
    assert!(
        close(ours["beta_ci_low"].as_f64().unwrap(), low, 1e-2),
        "β low: depot {}, from lifelines' se {low}",
        ours["beta_ci_low"]
    );
    // The fleet was drawn with β = 1.8 and η = 400 days: the interval holds β and the pattern says wear-out.
    assert!(
        ours["beta_ci_low"].as_f64().unwrap() < beta && beta < ours["beta_ci_high"].as_f64().unwrap(),
        "{ours}"
    );
    assert!((our_eta - eta).abs() < 0.25 * eta, "{ours}");

    let curve = app
        .get(FE, "/api/v1/reliability/survival?part=cn-5000")
        .await
        .expect(200);
    let steps = curve["kaplan_meier"].as_array().unwrap();
    let their_steps = theirs["km"].as_array().unwrap();
    assert_eq!(steps.len(), their_steps.len());
    for (a, b) in steps.iter().zip(their_steps) {
        assert_eq!(a["at_risk"], b["at_risk"], "{a} vs {b}");
        assert!(
            (a["survival"].as_f64().unwrap() - b["survival"].as_f64().unwrap()).abs() < 1e-9,
            "{a} vs {b}"
        );
        assert!(close(a["days"].as_f64().unwrap(), b["days"].as_f64().unwrap(), 1e-4));
    }
    // Censored lives grow between the two requests, so the fits agree to the clock.
    assert!(close(curve["weibull"]["beta"].as_f64().unwrap(), our_beta, 1e-6));
    app.get(FE, "/api/v1/reliability/survival?part=NOPE-1")
        .await
        .expect(404);
    app.get(INTEGRATION, "/api/v1/reliability/weibull").await.expect(403);
    // A customer's fit is of its own fleet only.
    let xai = app.get(XAI_TECH, "/api/v1/reliability/weibull").await.expect(200);
    let xai_cn = xai["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["part"] == "CN-5000")
        .unwrap();
    assert!(xai_cn["lives"].as_u64().unwrap() < rows.len() as u64, "{xai_cn}");
}

/// Moves an RMA's opening and its restore (or its swap) back in time.
async fn backdate(app: &TestApp, number: &str, opened_days_ago: f64, fixed_days_ago: Option<f64>) {
    use depot::entities::{event, rma};
    let ago = |days: f64| chrono::Utc::now() - chrono::Duration::seconds((days * 86_400.0) as i64);
    let r = rma::Entity::find()
        .filter(rma::Column::Number.eq(number))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let id = r.id;
    let mut am: rma::ActiveModel = r.into();
    am.created_at = Set(ago(opened_days_ago));
    am.update(&app.db).await.unwrap();
    let Some(fixed) = fixed_days_ago else { return };
    for e in event::Entity::find()
        .filter(event::Column::RmaId.eq(id))
        .filter(event::Column::ToStatus.eq("restored"))
        .all(&app.db)
        .await
        .unwrap()
    {
        let mut am: event::ActiveModel = e.into();
        am.at = Set(ago(fixed));
        am.update(&app.db).await.unwrap();
    }
    for h in slot_history::Entity::find()
        .filter(slot_history::Column::RmaId.eq(id))
        .all(&app.db)
        .await
        .unwrap()
    {
        let mut am: slot_history::ActiveModel = h.into();
        am.installed_at = Set(ago(fixed));
        am.update(&app.db).await.unwrap();
    }
}

async fn restored(app: &TestApp, serial: &str, resolution: &str) -> String {
    let number = app.open(CW_TECH, "cw-ord1", serial).await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &number, "diagnosing", json!({})).await;
    app.step(FE, &number, "restored", json!({"resolution": resolution}))
        .await;
    number
}

fn held(row: &Value) -> Vec<(u64, u64)> {
    row["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["eligible"].as_u64().unwrap(), h["failed_again"].as_u64().unwrap()))
        .collect()
}

/// Did the fix hold: a reseat that failed again five days later, a firmware fix that held, a power
/// cycle too recent to judge, and a node swap whose slot failed again after twenty days.
#[tokio::test]
async fn fixes_count_repeats_of_the_same_serial_or_slot_within_closed_windows() {
    let app = spawn_app().await;
    let reseat = restored(&app, "CN-T01-0001", "Reseated the node; link up").await;
    backdate(&app, &reseat, 100.0 + 2.0 / 24.0, Some(100.0)).await;
    let firmware = restored(&app, "CN-T01-0001", "BIOS and BMC firmware updated").await;
    backdate(&app, &firmware, 95.0, Some(94.0)).await;
    restored(&app, "CN-T01-0002", "AC power cycle").await;
    let whole = json!({"fault_code": "DIMM_UE", "replacement_kind": "whole_unit"});
    let swap = app.approved(CW_TECH, "cw-ord1", "CN-T01-0003", Some(whole)).await;
    let replacement = app.swapped(&swap, CW_TECH, "CN-T01-0003").await;
    backdate(&app, &swap, 41.0, Some(40.0)).await;
    // The replacement in the same slot is reported twenty days after the swap.
    let again = app.open(CW_TECH, "cw-ord1", &replacement).await["number"]
        .as_str()
        .unwrap()
        .to_string();
    backdate(&app, &again, 20.0, None).await;

    let page = app.get(FE, "/api/v1/reliability/fixes?by=action").await.expect(200);
    assert_eq!(held(row(&page, "reseat")), [(1, 1), (1, 1), (1, 1)]);
    let hours = row(&page, "reseat")["median_hours_to_restore"].as_f64().unwrap();
    assert!((hours - 2.0).abs() < 0.01, "{hours}");
    assert_eq!(held(row(&page, "firmware")), [(1, 0), (1, 0), (1, 0)]);
    assert_eq!(held(row(&page, "power cycle")), [(0, 0), (0, 0), (0, 0)]);
    assert_eq!(
        row(&page, "power cycle")["held"][0]["percent_failed_again"],
        Value::Null
    );
    assert_eq!(held(row(&page, "replace node")), [(1, 0), (1, 1), (0, 0)]);
    assert_eq!(row(&page, "replace node")["held"][1]["percent_failed_again"], 100.0);

    let by_code = app.get(FE, "/api/v1/reliability/fixes?by=fault_code").await.expect(200);
    assert_eq!(row(&by_code, "DIMM_UE")["fixes"], 1);
    assert_eq!(row(&by_code, "(no fault code)")["fixes"], 3);
    let of_part = app.get(FE, "/api/v1/reliability/fixes?part=DN-3000").await.expect(200);
    assert_eq!(of_part["items"], json!([]));
    app.get(FE, "/api/v1/reliability/fixes?part=NOPE").await.expect(404);
    let (_, csv) = app.download(FE, "/api/v1/reliability/fixes?format=csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("key,fixes,eligible_7d,failed_again_7d,eligible_30d,failed_again_30d,eligible_90d,failed_again_90d,median_hours_to_restore\n"), "{csv}");
    assert!(csv.contains("\nreplace node,1,1,0,1,1,0,0,"), "{csv}");
    app.get(FE, "/api/v1/reliability/fixes?by=mood").await.expect(422);
    let xai = app.get(XAI_TECH, "/api/v1/reliability/fixes").await.expect(200);
    assert_eq!(xai["items"], json!([]), "CoreWeave's fixes are not xAI's");

    // The field engineer sees the record while choosing what to do on a new CN-5000 case.
    let next = app.open(CW_TECH, "cw-ord1", "CN-T01-0004").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    app.step(FE, &next, "diagnosing", json!({})).await;
    let browser = crate::support::signed_in(&app.base, FE).await;
    let html = crate::support::page(&browser, &format!("{}/rmas/{next}", app.base)).await;
    assert!(html.contains("What held before on CN-5000"), "{html}");
    let row_of = |key: &str| {
        let at = html
            .find(&format!("<td>{key}</td>"))
            .unwrap_or_else(|| panic!("no {key} row"));
        html[at..at + html[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row_of("reseat").contains("100 % <small>(1 of 1)</small>"),
        "{}",
        row_of("reseat")
    );
    assert!(row_of("power cycle").contains("no fix is 7 days old yet"));
    assert!(
        row_of("firmware").contains("0 % <small>(0 of 1)</small>"),
        "{}",
        row_of("firmware")
    );
}

/// A replacement reported dead on arrival, one that failed the day it was swapped in, one that
/// held, and a refurbished one dead on arrival that points back at the test run that passed it.
#[tokio::test]
async fn dead_on_arrival_and_early_failures_count_against_the_depot_and_its_test_run() {
    use depot::entities::notification;
    let app = spawn_app().await;
    let first = app.approved(CW_TECH, "cw-ord1", "CN-T01-0001", None).await;
    app.post(
        CW_TECH,
        &format!("/api/v1/rmas/{first}/dead-on-arrival"),
        &json!({"note": "too early"}),
    )
    .await
    .expect(409);
    let dead = app.swapped(&first, CW_TECH, "CN-T01-0001").await;
    let before = app.rma(&first).await;
    let reported = app
        .post(
            CW_TECH,
            &format!("/api/v1/rmas/{first}/dead-on-arrival"),
            &json!({"note": "no POST, BMC unreachable"}),
        )
        .await
        .expect(200);
    assert!(reported["dead_on_arrival_at"].is_string());
    assert_eq!(reported["version"], before["version"].as_i64().unwrap() + 1);
    let event = app.events(&first).await.pop().unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["note"].as_str()),
        (Some("dead_on_arrival"), Some("no POST, BMC unreachable"))
    );
    let mail = notification::Entity::find()
        .filter(notification::Column::Template.eq("dead_on_arrival"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(mail.len(), 1, "one email, to the depot only (no customer webhook)");
    let to: Vec<String> = serde_json::from_value(mail[0].recipients.clone()).unwrap();
    assert!(
        to.contains(&CAM.to_string()) && !to.contains(&SAC.to_string()) && !to.contains(&CW_TECH.to_string()),
        "{to:?}"
    );
    assert!(
        mail[0].subject.as_deref().unwrap().contains(&dead),
        "{:?}",
        mail[0].subject
    );
    // Once only; nobody else's; not the depot's to say; a body that is not JSON changes nothing.
    let path = format!("/api/v1/rmas/{first}/dead-on-arrival");
    app.post(CW_TECH, &path, &json!({})).await.expect(409);
    app.post(XAI_TECH, &path, &json!({})).await.expect(404);
    app.post(CAM, &path, &json!({})).await.expect(403);
    app.post(CW_TECH, &path, &json!({"note": 5})).await.expect(422);
    app.post_raw(CW_TECH, &path, "{not json").await.expect(400);

    // Failed again the day it went in.
    let second = app.approved(CW_TECH, "cw-ord1", "CN-T01-0002", None).await;
    let failed_early = app.swapped(&second, CW_TECH, "CN-T01-0002").await;
    let failure = app.open(CW_TECH, "cw-ord1", &failed_early).await["number"]
        .as_str()
        .unwrap()
        .to_string();
    // Held.
    let third = app.approved(CW_TECH, "cw-ord1", "CN-T01-0003", None).await;
    app.swapped(&third, CW_TECH, "CN-T01-0003").await;

    // The first RMA's failed node comes back, triage finds nothing, it passes its tests and ships again.
    app.back_at_triage(&first, CW_TECH, "CN-T01-0001").await;
    app.step(CAM, &first, "testing", json!({"finding": "no fault found"}))
        .await;
    app.step(
        CAM,
        &first,
        "returned_to_stock",
        json!({"test_results": [{"name": "burn-in 24h", "passed": true}]}),
    )
    .await;
    let fourth = app.approved(CW_TECH, "cw-ord1", "CN-T01-0004", None).await;
    let ship = json!({"replacement_serial": "CN-T01-0001", "carrier": "UPS", "tracking_number": tracking_for(&fourth)});
    app.step(CAM, &fourth, "replacement_shipped", ship).await;
    app.step(CW_TECH, &fourth, "replacement_delivered", json!({})).await;
    app.post(CW_TECH, &format!("/api/v1/rmas/{fourth}/dead-on-arrival"), &json!({}))
        .await
        .expect(200);

    let q = app.get(FE, "/api/v1/reliability/quality").await.expect(200);
    let cam = keyed(&q["by_depot"], "CAM");
    assert_eq!(
        (
            cam["shipped"].as_u64(),
            cam["early_failures"].as_u64(),
            cam["shipped_refurbished"].as_u64(),
            cam["early_failures_refurbished"].as_u64()
        ),
        (Some(4), Some(3), Some(1), Some(1)),
        "{cam}"
    );
    assert_eq!(cam["early_failure_percent"], 75.0);
    let early = q["early_failures"].as_array().unwrap();
    let of = |rma: &str| {
        early
            .iter()
            .find(|e| e["rma"] == rma)
            .unwrap_or_else(|| panic!("{rma} not in {early:?}"))
    };
    assert_eq!(of(&first)["how"], "dead on arrival");
    assert_eq!(
        (of(&second)["how"].as_str(), of(&second)["failure_rma"].as_str()),
        (Some("failed after 0 days"), Some(failure.as_str()))
    );
    assert!(early.iter().all(|e| e["rma"] != third.as_str()));
    let refurbished = of(&fourth);
    assert_eq!(
        (
            refurbished["refurbished"].as_bool(),
            refurbished["replacement_serial"].as_str()
        ),
        (Some(true), Some("CN-T01-0001"))
    );
    assert_eq!(
        (
            refurbished["passed_by"]["rma"].as_str(),
            refurbished["passed_by"]["operator"].as_str()
        ),
        (Some(first.as_str()), Some(CAM))
    );
    let nff = keyed(&q["no_fault_found_by_part"], "CN-5000");
    assert_eq!(
        (
            nff["triaged"].as_u64(),
            nff["no_fault_found"].as_u64(),
            nff["percent"].as_f64()
        ),
        (Some(1), Some(1), Some(100.0))
    );
    assert_eq!(q["no_fault_found_by_site"][0]["key"], "cw-ord1");

    let (_, csv) = app.download(FE, "/api/v1/reliability/quality?format=csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with(
        "rma,replacement_serial,part,depot,refurbished,how,failure_rma,passed_by_rma,passed_by_operator\n"
    ));
    assert!(
        csv.contains(&format!(
            "{fourth},CN-T01-0001,CN-5000,CAM,true,dead on arrival,,{first},{CAM}"
        )),
        "{csv}"
    );
    let xai = app.get(XAI_TECH, "/api/v1/reliability/quality").await.expect(200);
    assert_eq!(
        (xai["by_depot"].clone(), xai["early_failures"].clone()),
        (json!([]), json!([])),
        "CoreWeave's replacements are not xAI's"
    );

    // The RMA page shows the report, and offers it only where it can be made.
    let browser = crate::support::signed_in(&app.base, CW_TECH).await;
    let html = crate::support::page(&browser, &format!("{}/rmas/{first}", app.base)).await;
    assert!(html.contains("<dt>Dead on arrival</dt>") && !html.contains("form-dead-on-arrival"));
    let html = crate::support::page(&browser, &format!("{}/rmas/{third}", app.base)).await;
    assert!(html.contains("form-dead-on-arrival"));
    let csrf = crate::support::form_csrf(&browser, &format!("{}/rmas/{third}", app.base)).await;
    let res = browser
        .post(format!("{}/rmas/{third}/dead-on-arrival", app.base))
        .form(&[("csrf", csrf.as_str()), ("note", "dead fans")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "post/redirect/get");
    assert_eq!(res.headers()["location"], format!("/rmas/{third}").as_str());
    assert!(app.rma(&third).await["dead_on_arrival_at"].is_string());
}

/// SciPy's Poisson quantile and CDF for the recommended spares.
fn scipy_base_stock(mean: f64, fill: f64) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/base_stock.py");
    let out = std::process::Command::new("python3")
        .args([script, &mean.to_string(), &fill.to_string()])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Units of `part` installed at the sites whose default depot is `depot`, counted in SQL.
async fn installed_base(app: &TestApp, depot: &str, part: &str) -> u64 {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = format!(
        "SELECT COUNT(*) FROM slot_history h JOIN units u ON u.id = h.unit_id JOIN parts p ON p.id = u.part_id \
         JOIN slots s ON s.id = h.slot_id JOIN clusters c ON c.id = s.cluster_id JOIN sites st ON st.id = c.site_id \
         JOIN depots d ON d.id = st.default_depot_id WHERE h.removed_at IS NULL AND p.number = '{part}' AND d.code = '{depot}'"
    );
    let row = app
        .db
        .query_one_raw(Statement::from_string(app.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap() as u64
}

/// Spares from the numbers: failure rate × installed base × (lead time + turnaround) gives the
/// Poisson pipeline; the minimum is the smallest stock whose fill rate reaches the target (SciPy).
#[tokio::test]
async fn recommended_spares_follow_the_failure_rate_and_the_fill_rate_target() {
    let app = spawn_app().await;
    age_the_fleet(&app, 365).await;
    for serial in ["CN-T01-0001", "CN-T01-0002", "CN-T01-0003", "CN-T01-0004"] {
        app.approved(CW_TECH, "cw-ord1", serial, None).await;
    }
    let afr = row(
        &app.get(FE, "/api/v1/reliability/afr?by=part").await.expect(200),
        "CN-5000",
    )["afr_percent"]
        .as_f64()
        .unwrap();
    let check = |plan: &Value, fill: f64, lead: f64, base: u64| {
        let line = cam_cn5000(plan);
        assert_eq!(line["installed_base"].as_u64(), Some(base));
        assert!(
            (line["afr_percent"].as_f64().unwrap() - afr).abs() < 1e-3 * afr,
            "{line}"
        );
        assert_eq!(
            line["turnaround_source"], "default",
            "nothing has come back through CAM yet"
        );
        let mean = afr / 100.0 * base as f64 * (lead + 7.0) / 365.25;
        let got = line["pipeline_mean"].as_f64().unwrap();
        assert!((got - mean).abs() < 1e-3 * mean, "pipeline {got} vs {mean}");
        let scipy = scipy_base_stock(got, fill / 100.0);
        let s = line["recommended_minimum"].as_u64().unwrap();
        assert_eq!(s, scipy["quantile"].as_u64().unwrap() + 1, "{line} vs {scipy}");
        // The fill rate with s on the shelf reaches the target; with one fewer it does not.
        let cdf = scipy["cdf"].as_array().unwrap();
        assert!(cdf[s as usize - 1].as_f64().unwrap() >= fill / 100.0);
        if s >= 2 {
            assert!(cdf[s as usize - 2].as_f64().unwrap() < fill / 100.0);
        }
        s
    };
    let base = installed_base(&app, "CAM", "CN-5000").await;
    assert!(base > 10, "{base}");
    let plan = app.get(FE, "/api/v1/reliability/spares").await.expect(200);
    assert_eq!(
        plan["policy"],
        json!({"fill_rate_percent": 95.0, "lead_time_days": 14.0})
    );
    let at_95 = check(&plan, 95.0, 14.0, base);
    assert!(at_95 >= 1);

    let policy = json!({"fill_rate_percent": 99.5, "lead_time_days": 30.0});
    app.put(FE, "/api/v1/reliability/spares/policy", &policy)
        .await
        .expect(403);
    let err = app
        .put(
            ADMIN,
            "/api/v1/reliability/spares/policy",
            &json!({"fill_rate_percent": 120, "lead_time_days": -1}),
        )
        .await
        .expect(422);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fill_rate_percent") && message.contains("lead_time_days"),
        "both errors at once: {message}"
    );
    app.put(ADMIN, "/api/v1/reliability/spares/policy", &policy)
        .await
        .expect(200);
    let plan = app.get(FE, "/api/v1/reliability/spares").await.expect(200);
    let at_995 = check(&plan, 99.5, 30.0, base);
    assert!(at_995 > at_95, "{at_995} vs {at_95}");
    app.get(CW_TECH, "/api/v1/reliability/spares").await.expect(403);
    let (_, csv) = app.download(FE, "/api/v1/reliability/spares?format=csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("CAM,CN-5000,{base},")) && l.contains(&format!(",{at_995},,"))),
        "{csv}"
    );

    // Beside today's thresholds on the Stock page, with one button to adopt it.
    let browser = crate::support::signed_in(&app.base, ADMIN).await;
    let html = crate::support::page(&browser, &format!("{}/stock", app.base)).await;
    assert!(
        html.contains(&format!("Adopt {at_995}")),
        "no adopt button: {}",
        &html[html.find("id=\"spares\"").unwrap()..]
    );
    let line = cam_cn5000(&plan);
    let available = line["available"].as_u64().unwrap();
    let sentence = format!("holds {available} × CN-5000, below the {at_995} the failure rate calls for");
    assert_eq!(
        html.contains(&sentence),
        available < at_995,
        "the restock plan: {sentence}"
    );
    let csrf = crate::support::form_csrf(&browser, &format!("{}/stock", app.base)).await;
    let minimum = at_995.to_string();
    let res = browser
        .post(format!("{}/stock/thresholds", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("depot", "CAM"),
            ("part", "CN-5000"),
            ("minimum", minimum.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let thresholds = app.get(ADMIN, "/api/v1/stock/thresholds").await.expect(200);
    let cam = thresholds["items"]
        .as_array()
        .or(thresholds.as_array())
        .unwrap()
        .iter()
        .find(|t| t["depot"] == "CAM" && t["part"] == "CN-5000")
        .cloned()
        .unwrap();
    assert_eq!(cam["minimum"].as_u64(), Some(at_995));
    let plan = app.get(FE, "/api/v1/reliability/spares").await.expect(200);
    let line = cam_cn5000(&plan);
    assert_eq!(line["minimum"].as_u64(), Some(at_995));
}

/// Precomputed figures: within the refresh interval the same figures are served (and say when they
/// were computed); once it has passed they are recomputed in the background and catch up.
#[tokio::test]
async fn precomputed_figures_are_served_until_recomputed() {
    let failures = |page: &Value| row(page, "CN-5000")["failures"].as_u64().unwrap();
    let slow = spawn_app_with(&[("DEPOT_RELIABILITY_REFRESH_S", "3600".into())]).await;
    let before = slow.get(FE, "/api/v1/reliability/afr").await.expect(200);
    slow.approved(CW_TECH, "cw-ord1", "CN-T01-0001", None).await;
    let after = slow.get(FE, "/api/v1/reliability/afr").await.expect(200);
    assert_eq!(
        failures(&after),
        failures(&before),
        "served from the figures computed at start"
    );
    let browser = crate::support::signed_in(&slow.base, FE).await;
    let html = crate::support::page(&browser, &format!("{}/reports/reliability", slow.base)).await;
    assert!(
        html.contains("Figures as of") && html.contains("recomputed every 60 minutes"),
        "page says how old"
    );

    let quick = spawn_app_with(&[("DEPOT_RELIABILITY_REFRESH_S", "1".into())]).await;
    let before = failures(&quick.get(FE, "/api/v1/reliability/afr").await.expect(200));
    quick.approved(CW_TECH, "cw-ord1", "CN-T01-0001", None).await;
    let mut seen = before;
    for _ in 0..100 {
        seen = failures(&quick.get(FE, "/api/v1/reliability/afr").await.expect(200));
        if seen == before + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, before + 1, "recomputed within seconds of growing stale");
}
