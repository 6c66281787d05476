//! Lifecycle properties: random sequences of attempted transitions, by random callers, with random
//! field sets (right values, wrong values, missing ones), never break the invariants. proptest
//! draws the sequences and shrinks a failure to the shortest sequence that breaks one.
use crate::helpers::*;
use depot::entities::{event, rma, unit};
use proptest::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

const CALLERS: [&str; 6] = [FE, CAM, SAC, CW_TECH, ADMIN, XAI_TECH];
const CASES: u32 = 40;

/// One server for every case; each case works on an RMA of its own.
struct World {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    statuses: Vec<String>,
    edges: HashSet<(String, String)>,
    /// (from, to) → the callers whose role may make that transition.
    callers: BTreeMap<(String, String), Vec<&'static str>>,
    next_serial: AtomicUsize,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (app, table) = rt.block_on(async {
            let app = spawn_app().await;
            let table = app.get(FE, "/api/v1/lifecycle").await.expect(200);
            (app, table)
        });
        let statuses = table["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().or_else(|| s["name"].as_str()).unwrap().to_string())
            .collect();
        let mut edges = HashSet::new();
        let mut callers = BTreeMap::new();
        for row in table["transitions"].as_array().unwrap() {
            let who: Vec<&'static str> = row["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| match r.as_str().unwrap() {
                    "field_engineer" => FE,
                    "depot_tech" => CAM,
                    "dc_tech" => CW_TECH,
                    _ => ADMIN,
                })
                .collect();
            for from in row["from"].as_array().unwrap() {
                let edge = (
                    from.as_str().unwrap().to_string(),
                    row["to"].as_str().unwrap().to_string(),
                );
                edges.insert(edge.clone());
                callers.insert(edge, who.clone());
            }
        }
        World {
            rt,
            app,
            statuses,
            edges,
            callers,
            next_serial: AtomicUsize::new(1),
        }
    }
}

/// The fields of one attempt: each field present or not (7 in 8) and right for the RMA or wrong
/// (7 in 8), by the bits of `pick`.
async fn fields(app: &TestApp, rma: &Value, pick: u128) -> Value {
    let failed = rma["serial"].as_str().unwrap_or_default().to_string();
    let replacement = rma["replacement_serial"].as_str().map(str::to_string);
    let stock = app.stock_unit("CAM", "CN-5000").await;
    let candidates: Vec<(&str, Value, Value)> = vec![
        ("note", json!("prop"), json!(42)),
        ("resolution", json!("reseated"), json!("")),
        ("fault_code", json!("PSU_FAIL"), json!("")),
        ("replacement_kind", json!("whole_unit"), json!("fru")),
        ("replacement_serial", json!(stock), json!("NO-SUCH-UNIT")),
        ("carrier", json!("UPS"), json!("pigeon")),
        ("tracking_number", json!("1Z999AA10123456784"), json!("123")),
        ("spare_serial", json!("CN-ORD1-TSP01"), json!(failed.clone())),
        (
            "installed_serial",
            json!(replacement.clone().unwrap_or_default()),
            json!("CN-T01-0099"),
        ),
        ("pulled_serial", json!(failed.clone()), json!("CN-ORD1-0101")),
        ("depot", json!("CAM"), json!("XYZ")),
        ("scanned_serial", json!(failed.clone()), json!("CN-ORD1-0102")),
        ("finding", json!("failed PSU"), json!("no fault found")),
        ("vendor", json!("Acme"), json!("")),
        ("vendor_reference", json!("V-1"), json!("")),
        ("vendor_return_reference", json!("VR-1"), json!("")),
        ("parts_consumed", json!([]), json!(["NO-SUCH-PART"])),
        (
            "test_results",
            json!([{"name": "burn-in", "passed": true}]),
            json!([{"name": "burn-in", "passed": false}]),
        ),
        ("reason", json!("prop"), json!("")),
    ];
    let mut out = json!({});
    for (k, (name, right, wrong)) in candidates.into_iter().enumerate() {
        let (present, use_right) = (pick >> (6 * k) & 7 != 0, pick >> (6 * k + 3) & 7 != 0);
        if present {
            out[name] = if use_right { right } else { wrong };
        }
    }
    out
}

/// Everything that must hold after any sequence of attempts.
async fn check_invariants(w: &World, number: &str, accepted: &[(String, String)], earlier: &BTreeMap<String, String>) {
    let db = &w.app.db;
    let rma = rma::Entity::find()
        .filter(rma::Column::Number.eq(number))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let events = event::Entity::find()
        .filter(event::Column::RmaId.eq(rma.id))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
        .unwrap();
    // The status only ever followed the table; the history holds exactly the accepted steps.
    let steps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == "transition")
        .map(|e| (e.from_status.clone().unwrap(), e.to_status.clone().unwrap()))
        .collect();
    assert_eq!(steps, accepted, "the history is the accepted transitions");
    for step in &steps {
        assert!(w.edges.contains(step), "{step:?} is not in the table");
    }
    let last = steps.last().map_or("reported".to_string(), |s| s.1.clone());
    assert_eq!(rma.status, last, "status is where the history ends");
    assert_eq!(rma.version as usize, 1 + steps.len(), "one version per transition");
    // End states are final: nothing follows them.
    for (k, (_, to)) in steps.iter().enumerate() {
        let is_end = !w.edges.iter().any(|(from, _)| from == to);
        assert!(!is_end || k + 1 == steps.len(), "{to} is final, yet the RMA moved on");
    }
    assert_eq!(
        rma.closed_at.is_some(),
        !w.edges.iter().any(|(from, _)| *from == rma.status)
    );
    // Every unit is in exactly one place, and no unit serves two RMAs as their replacement.
    for u in unit::Entity::find().all(db).await.unwrap() {
        let place = (u.location.as_str(), u.site_id.is_some(), u.depot_id.is_some());
        let ok = match place.0 {
            "site" => place.1 && !place.2,
            "depot" => !place.1 && place.2,
            _ => !place.1 && !place.2,
        };
        assert!(ok, "unit {} is {place:?}", u.serial);
        assert!(
            u.slot_id.is_none() || u.location == "site",
            "{} sits in a slot away from a site",
            u.serial
        );
    }
    let open = rma::Entity::find()
        .filter(rma::Column::ClosedAt.is_null())
        .all(db)
        .await
        .unwrap();
    let mut replacements = HashSet::new();
    for r in open.iter().filter_map(|r| r.replacement_unit_id) {
        assert!(replacements.insert(r), "unit {r} is the replacement of two open RMAs");
    }
    // Events are append-only: everything seen before is still there, unchanged.
    let now: BTreeMap<String, String> = event::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.id.to_string(),
                format!("{:?}{:?}{}", e.from_status, e.to_status, e.at),
            )
        })
        .collect();
    for (id, seen) in earlier {
        assert_eq!(now.get(id), Some(seen), "event {id} changed or vanished");
    }
}

async fn all_events(w: &World) -> BTreeMap<String, String> {
    event::Entity::find()
        .all(&w.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.id.to_string(),
                format!("{:?}{:?}{}", e.from_status, e.to_status, e.at),
            )
        })
        .collect()
}

#[test]
fn random_attempts_by_random_callers_keep_the_invariants() {
    let attempts = prop::collection::vec(
        (
            0u8..8,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<u128>(),
        ),
        1..30,
    );
    check_cases(World::new(), CASES, attempts, |w, attempts| {
        w.rt.block_on(async {
            let app = &w.app;
            let earlier = all_events(w).await;
            let serial = format!("CN-T01-{:04}", w.next_serial.fetch_add(1, Ordering::SeqCst));
            let opened = app.open(CW_TECH, "cw-ord1", &serial).await;
            let number = opened["number"].as_str().unwrap().to_string();
            let mut accepted = vec![];
            let attempts_len = attempts.len();
            for (mode, target, caller, pick) in attempts {
                let rma = app.get(FE, &format!("/api/v1/rmas/{number}")).await.expect(200);
                let from = rma["status"].as_str().unwrap().to_string();
                // Mostly a step the table allows, by a caller who may take it; sometimes anything.
                let next: Vec<&(String, String)> = w.edges.iter().filter(|(f, _)| *f == from).collect();
                let (to, caller) = if mode < 6 && !next.is_empty() {
                    let mut next = next;
                    next.sort();
                    let edge = target.get(&next);
                    (edge.1.clone(), *caller.get(&w.callers[*edge]))
                } else {
                    (target.get(&w.statuses).clone(), *caller.get(&CALLERS))
                };
                let mut body = fields(app, &rma, pick).await;
                body["to"] = json!(to);
                // A stale version now and then: it must be refused like everything else.
                body["version"] = if pick >> 120 & 15 == 0 {
                    json!(0)
                } else {
                    rma["version"].clone()
                };
                let answer = app
                    .post(caller, &format!("/api/v1/rmas/{number}/transitions"), &body)
                    .await;
                let status = answer.status.as_u16();
                assert!(
                    [200, 403, 404, 409, 422].contains(&status),
                    "{from} -> {to} by {caller} answered {status}: {}",
                    answer.body
                );
                if status == 200 {
                    accepted.push((from, to));
                } else {
                    assert!(answer.body["error"]["message"].is_string(), "a refusal says why");
                }
            }
            check_invariants(w, &number, &accepted, &earlier).await;
            eprintln!("{number}: {} attempts, accepted {accepted:?}", attempts_len);
        });
    });
}
