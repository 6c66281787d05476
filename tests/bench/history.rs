//! Whether an RMA's cost grows with its history: two RMAs at the bench of CAM, one with the
//! history of its path (about ten events) and one given 2 000 more events and 1 000 repair records,
//! each cycled `testing → repair → testing` by a depot technician and read back, one client each.
use crate::load::{self, Bounds, Measured};
use crate::sql::{Conn, V};
use chrono::{Duration, Utc};
use depot::entities::{depot as depot_entity, rma, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use uuid::Uuid;

/// Events the long RMA is given, two per cycle.
const LONG_HISTORY: usize = 2_000;
/// Transitions and reads per RMA.
const REQUESTS: usize = 200;

/// Adds `LONG_HISTORY` events (and a repair record per cycle) to `target`, as the cycles before
/// would have left them.
async fn lengthen(db: &DatabaseConnection, target: &rma::Model, technician: &user::Model) -> anyhow::Result<()> {
    let start = Utc::now() - Duration::days(30);
    let mut events = Vec::with_capacity(LONG_HISTORY);
    let mut records = Vec::with_capacity(LONG_HISTORY / 2);
    for i in 0..LONG_HISTORY {
        let at = start + Duration::minutes(i as i64);
        let (from, to) = if i % 2 == 0 {
            ("testing", "repair")
        } else {
            ("repair", "testing")
        };
        let id = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        ));
        events.push(vec![
            V::Uuid(id),
            V::Uuid(target.id),
            V::Text("transition".into()),
            V::OptText(Some(from.into())),
            V::OptText(Some(to.into())),
            V::OptUuid(Some(technician.id)),
            V::Text(technician.email.clone()),
            V::Time(at),
            V::OptText(None),
            V::Json(json!({})),
        ]);
        if i % 2 == 0 {
            records.push(vec![
                V::Uuid(id),
                V::Uuid(target.id),
                V::Uuid(target.returned_unit_id),
                V::Text("test_run".into()),
                V::Json(json!({"test_results": [{"name": "burn-in", "passed": false}]})),
                V::Uuid(technician.id),
                V::Time(at),
            ]);
        }
    }
    let mut conn = Conn::acquire(db).await?;
    conn.exec("BEGIN", vec![]).await?;
    conn.insert("events", &crate::dataset::EVENT_COLUMNS, events).await?;
    let columns = ["id", "rma_id", "unit_id", "kind", "details", "actor_id", "created_at"];
    let added = records.len() as i32;
    conn.insert("repair_records", &columns, records).await?;
    let counted = "UPDATE rmas SET repair_entries = repair_entries + ? WHERE id = ?";
    conn.exec(counted, vec![V::Int(added), V::Uuid(target.id)]).await?;
    conn.exec("COMMIT", vec![]).await?;
    Ok(())
}

/// Cycles `number` from `testing` one transition at a time, keeping its version.
async fn cycle(url: &str, client: &reqwest::Client, number: &str, version: i32) -> Measured {
    let version = Arc::new(AtomicI32::new(version));
    let (url, client, number) = (url.to_string(), client.clone(), number.to_string());
    let bounds = Bounds {
        requests: REQUESTS,
        time: std::time::Duration::from_secs(60),
    };
    load::drive(1, bounds, move |_, i| {
        let (url, client, number, version) = (url.clone(), client.clone(), number.clone(), version.clone());
        async move {
            let v = version.load(Ordering::SeqCst);
            let body = match i % 2 {
                0 => json!({"to": "repair", "version": v, "test_results": [{"name": "burn-in", "passed": false}]}),
                _ => json!({"to": "testing", "version": v, "parts_consumed": []}),
            };
            let res = client
                .post(format!("{url}/api/v1/rmas/{number}/transitions"))
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            let text = res.text().await.map_err(|e| e.to_string())?;
            match status.as_u16() {
                200 => {
                    version.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
                _ => Err(format!("{status}: {}", &text[..text.len().min(300)])),
            }
        }
    })
    .await
}

async fn reads(url: &str, client: &reqwest::Client, number: &str) -> Measured {
    let (url, client, number) = (url.to_string(), client.clone(), number.to_string());
    let bounds = Bounds {
        requests: REQUESTS,
        time: std::time::Duration::from_secs(60),
    };
    load::drive(1, bounds, move |_, _| {
        let (url, client, number) = (url.clone(), client.clone(), number.clone());
        async move {
            let res = client
                .get(format!("{url}/api/v1/rmas/{number}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            res.bytes().await.map_err(|e| e.to_string())?;
            if status == 200 { Ok(()) } else { Err(status.to_string()) }
        }
    })
    .await
}

/// The transition and read latencies of a short and a long history, as rows of the table.
pub async fn long_and_short(db: &DatabaseConnection, url: &str) -> Vec<(String, Measured)> {
    let cam = depot_entity::Entity::find()
        .filter(depot_entity::Column::Code.eq("CAM"))
        .one(db)
        .await
        .unwrap()
        .expect("the demo depot CAM");
    let technician = user::Entity::find()
        .filter(user::Column::Email.eq("cam@vast.example"))
        .one(db)
        .await
        .unwrap()
        .expect("the demo technician of CAM");
    let pair = rma::Entity::find()
        .filter(rma::Column::Status.eq("testing"))
        .filter(rma::Column::ReturnDepotId.eq(cam.id))
        .limit(2)
        .all(db)
        .await
        .unwrap();
    let [short, long] = <[rma::Model; 2]>::try_from(pair).expect("two RMAs in testing at CAM in the dataset");
    lengthen(db, &long, &technician).await.unwrap();
    let token = depot::services::tokens::create(db, "cam@vast.example", "bench history")
        .await
        .unwrap();
    let client = crate::api_client(&token);
    let mut out = vec![];
    for (label, rma) in [("~10", &short), ("2 000", &long)] {
        out.push((
            format!("transition p50 / p99, RMA with {label} events (1 client)"),
            cycle(url, &client, &rma.number, rma.version).await,
        ));
        out.push((
            format!("RMA GET p50 / p99, RMA with {label} events"),
            reads(url, &client, &rma.number).await,
        ));
    }
    out
}
