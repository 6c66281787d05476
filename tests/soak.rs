//! Crash safety: two clients drive transitions while `depot serve` is killed with SIGKILL at
//! random moments and restarted, round after round. Afterwards every transition acknowledged with
//! 200 is in the database, no status is without its event nor an event without its status,
//! versions count the transitions, every unit is in exactly one place and the stock the API
//! reports is the units on the shelves. `make test` runs a few rounds; `make soak` many
//! (`SOAK_ROUNDS`, `SOAK_ROUND_MS`).
// Shared with the other process-level tests, which use parts this one does not.
#[allow(dead_code)]
mod support;

use depot::entities::{event, rma, unit};
use rand::Rng;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use support::{depot, serve};

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one client was told: (RMA number, status it moved to, version after).
type Acked = Arc<Mutex<Vec<(String, String, i64)>>>;

/// One client: cycles its serials through open → diagnosing → approved → cancelled, re-reading
/// the RMA whenever an answer was lost to a crash.
async fn client(
    base: Arc<RwLock<String>>,
    token: String,
    serials: Vec<&'static str>,
    acked: Acked,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut open: Vec<Option<String>> = vec![None; serials.len()];
    let mut k = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        k = (k + 1) % serials.len();
        let url = base.read().unwrap().clone();
        let Some(number) = open[k].clone() else {
            let body = json!({"site": "cw-ord1", "serial": serials[k], "severity": "sev3", "symptom": "soak"});
            let res = http
                .post(format!("{url}/api/v1/rmas"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 201 => {
                    let v: Value = r.json().await.unwrap();
                    let number = v["number"].as_str().unwrap().to_string();
                    acked.lock().unwrap().push((number.clone(), "reported".into(), 1));
                    open[k] = Some(number);
                }
                // An open RMA of this serial exists already (the answer was lost): find it.
                Ok(r) if r.status() == 409 || r.status() == 422 => {
                    let q = http
                        .get(format!("{url}/api/v1/rmas?q={}&limit=5", serials[k]))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    if let Ok(q) = q {
                        let page: Value = q.json().await.unwrap_or_default();
                        open[k] = page["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|r| !["cancelled", "restored"].contains(&r["status"].as_str().unwrap_or("")))
                            .and_then(|r| r["number"].as_str())
                            .map(str::to_string);
                    }
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            continue;
        };
        let Ok(res) = http
            .get(format!("{url}/api/v1/rmas/{number}"))
            .bearer_auth(&token)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(rma) = res.json::<Value>().await else { continue };
        let (status, version) = (
            rma["status"].as_str().unwrap_or("").to_string(),
            rma["version"].as_i64().unwrap_or(0),
        );
        let body = match status.as_str() {
            "reported" => json!({"to": "diagnosing"}),
            "diagnosing" => json!({"to": "approved", "fault_code": "PSU_FAIL", "replacement_kind": "whole_unit"}),
            "approved" => json!({"to": "cancelled", "reason": "soak"}),
            _ => {
                open[k] = None;
                continue;
            }
        };
        let to = body["to"].as_str().unwrap().to_string();
        let mut body = body;
        body["version"] = json!(version);
        let res = http
            .post(format!("{url}/api/v1/rmas/{number}/transitions"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await;
        if let Ok(r) = res
            && r.status() == 200
        {
            let v: Value = r.json().await.unwrap_or_default();
            acked
                .lock()
                .unwrap()
                .push((number.clone(), to.clone(), v["version"].as_i64().unwrap_or(version + 1)));
            if to == "cancelled" {
                open[k] = None;
            }
        }
    }
}

/// The events of an RMA that changed its status, oldest first.
async fn status_history(db: &sea_orm::DatabaseConnection, rma_id: uuid::Uuid) -> Vec<event::Model> {
    event::Entity::find()
        .filter(event::Column::RmaId.eq(rma_id))
        .filter(event::Column::ToStatus.is_not_null())
        .order_by_asc(event::Column::Id)
        .all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn killed_servers_lose_no_acknowledged_transition() {
    let rounds = env_number("SOAK_ROUNDS", 3);
    let round_ms = env_number("SOAK_ROUND_MS", 1500);
    let scratch = support::ScratchDb::for_suite("soak").await;
    let url = scratch.url.clone();
    support::load_demo_records(&url);
    let token = support::token(depot(&url), "fe@vast.example");

    let (mut server, first_url) = serve(depot(&url));
    let base = Arc::new(RwLock::new(first_url));
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = [
        vec!["CN-ORD1-0101", "CN-ORD1-0102", "CN-ORD1-0103", "CN-ORD1-0104"],
        vec!["CN-ORD1-0105", "CN-ORD1-0106", "CN-ORD1-0107", "CN-ORD1-0108"],
    ]
    .into_iter()
    .map(|serials| {
        tokio::spawn(client(
            base.clone(),
            token.clone(),
            serials,
            acked.clone(),
            stop.clone(),
        ))
    })
    .collect();
    for _ in 0..rounds {
        let wait = rand::rng().random_range(round_ms / 3..=round_ms);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().unwrap(); // SIGKILL: no chance to finish anything
        server.wait().unwrap();
        let (next, next_url) = serve(depot(&url));
        server = next;
        *base.write().unwrap() = next_url;
    }
    tokio::time::sleep(Duration::from_millis(round_ms / 2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    let db = Database::connect(&url).await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let transitions = acked.iter().filter(|(_, to, _)| to != "reported").count();
    assert!(
        transitions >= 10 * rounds as usize / 3,
        "the clients made too little progress: {transitions}"
    );
    for (number, to, version) in &acked {
        let r = rma::Entity::find()
            .filter(rma::Column::Number.eq(number))
            .one(&db)
            .await
            .unwrap();
        let r = r.unwrap_or_else(|| panic!("acknowledged {number} is gone"));
        let events = status_history(&db, r.id).await;
        let at = events.get(*version as usize - 1).and_then(|e| e.to_status.clone());
        assert_eq!(
            at.as_deref(),
            Some(to.as_str()),
            "{number}: acknowledged {to} at version {version}"
        );
    }
    // Every RMA: its status is where its history ends, and its version counts the steps.
    for r in rma::Entity::find().all(&db).await.unwrap() {
        let events = status_history(&db, r.id).await;
        assert_eq!(
            events.last().and_then(|e| e.to_status.clone()).as_deref(),
            Some(r.status.as_str()),
            "{}",
            r.number
        );
        assert_eq!(
            events.len() as i32,
            r.version,
            "{}: one version per status event",
            r.number
        );
    }
    // Every unit in exactly one place; the stock the API shows is the units on the shelves.
    let units = unit::Entity::find().all(&db).await.unwrap();
    for u in &units {
        let ok = match u.location.as_str() {
            "site" => u.site_id.is_some() && u.depot_id.is_none(),
            "depot" => u.site_id.is_none() && u.depot_id.is_some(),
            _ => u.site_id.is_none() && u.depot_id.is_none(),
        };
        assert!(
            ok,
            "unit {} is in {} with site {:?} depot {:?}",
            u.serial, u.location, u.site_id, u.depot_id
        );
    }
    let shelved = units
        .iter()
        .filter(|u| {
            u.location == "depot"
                && u.parent_unit_id.is_none()
                && ["new", "refurbished"].contains(&u.condition.as_str())
        })
        .count();
    let url_now = base.read().unwrap().clone();
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut page_url = format!("{url_now}/api/v1/stock?limit=200");
        if let Some(c) = &cursor {
            page_url += &format!("&cursor={c}");
        }
        let page: Value = reqwest::Client::new()
            .get(page_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, shelved, "the stock list is the units on the shelves");
    eprintln!(
        "{rounds} SIGKILL rounds, {} acknowledged writes ({transitions} transitions) verified",
        acked.len()
    );
    server.kill().ok();
    server.wait().ok();
    db.close().await.ok();
}
