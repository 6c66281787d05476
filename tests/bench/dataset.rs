//! The bench dataset: N RMAs over the demo sites, spread over three years, statuses and
//! severities, each with the event history of the path it took, its failed unit and the
//! replacement that went out; refurbished units flow back into stock and out again as later
//! replacements, so stock stays the size a depot really keeps. Bulk inserts, no ORM.
use crate::sql::{Conn, V};
use chrono::{DateTime, Datelike, Duration, Utc};
use depot::entities::{cluster, part, site, slot, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use uuid::{Timestamp, Uuid};

/// The columns of an event row, as the generator fills them.
pub const EVENT_COLUMNS: [&str; 10] = [
    "id",
    "rma_id",
    "kind",
    "from_status",
    "to_status",
    "actor_id",
    "actor_email",
    "at",
    "note",
    "fields",
];

/// The golden path; open RMAs stop somewhere along it.
const GOLDEN: [&str; 12] = [
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
    "returned_to_stock",
];

/// What the generator made that the load driver needs.
pub struct Dataset {
    pub rmas: usize,
    pub events: usize,
    pub units: usize,
    /// `reported` RMAs of the field engineer's customers kept for the write benchmarks, newest last.
    pub pool: Vec<String>,
    /// RMA numbers and failed serials to read, spread over the whole history.
    pub sample_numbers: Vec<String>,
    pub sample_serials: Vec<String>,
    pub site_codes: Vec<String>,
}

struct Site {
    id: Uuid,
    code: String,
    organization_id: Uuid,
    depot_id: Uuid,
    clusters: Vec<Uuid>,
    /// The site's node slots, where generated units spend their lives.
    slots: Vec<Uuid>,
}

#[derive(Clone)]
struct UnitRow {
    id: Uuid,
    serial: String,
    part: usize,
    condition: &'static str,
    location: &'static str,
    site_id: Option<Uuid>,
    depot_id: Option<Uuid>,
    at: DateTime<Utc>,
}

/// Prints how long each phase of the generation took, to see where the time goes.
struct Phases(std::time::Instant);

impl Phases {
    fn start() -> Phases {
        Phases(std::time::Instant::now())
    }
    fn done(&mut self, phase: &str) {
        println!("  {phase} in {:.1} s", self.0.elapsed().as_secs_f64());
        self.0 = std::time::Instant::now();
    }
}

fn v7(at: DateTime<Utc>) -> Uuid {
    let ts = Timestamp::from_unix(uuid::NoContext, at.timestamp() as u64, at.timestamp_subsec_nanos());
    Uuid::new_v7(ts)
}

/// The path RMA `i` of `n` took: the newest `open` ones are still on the golden path (the newest
/// `pool` of them in `reported`), older ones ended one of the ways the table allows.
fn path(i: usize, n: usize, open: usize, pool: usize) -> Vec<&'static str> {
    if i >= n - pool {
        return vec!["reported"];
    }
    if i >= n - open {
        let stage = (n - pool - 1 - i) * 11 / (open - pool).max(1);
        return GOLDEN[..=stage.min(10)].to_vec();
    }
    match i % 20 {
        0 => vec!["reported", "cancelled"],
        1 => vec!["reported", "diagnosing", "cancelled"],
        2..=4 => vec!["reported", "diagnosing", "restored"],
        5 => {
            let mut p = GOLDEN[..9].to_vec();
            p.push("scrapped");
            p
        }
        _ => GOLDEN.to_vec(),
    }
}

pub async fn generate(db: &DatabaseConnection, n: usize, pool: usize, now: DateTime<Utc>) -> anyhow::Result<Dataset> {
    let mut phases = Phases::start();
    let parts = part::Entity::find().all(db).await?;
    let clusters = cluster::Entity::find().all(db).await?;
    let slots = slot::Entity::find()
        .filter(slot::Column::ParentSlotId.is_null())
        .all(db)
        .await?;
    let engineer = user::Entity::find()
        .filter(user::Column::Role.eq("field_engineer"))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no field engineer in the fixtures"))?;
    let sites: Vec<Site> = site::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| Site {
            clusters: clusters.iter().filter(|c| c.site_id == s.id).map(|c| c.id).collect(),
            slots: {
                let here: Vec<Uuid> = clusters.iter().filter(|c| c.site_id == s.id).map(|c| c.id).collect();
                slots
                    .iter()
                    .filter(|x| here.contains(&x.cluster_id))
                    .map(|x| x.id)
                    .collect()
            },
            id: s.id,
            code: s.code,
            organization_id: s.organization_id,
            depot_id: s.default_depot_id,
        })
        .collect();
    // Half C-nodes, then D-nodes, then FRUs, as the fleet fails.
    let by_kind = |kind: &str| parts.iter().position(|p| p.kind == kind);
    let mix: Vec<usize> = [
        "cnode", "cnode", "cnode", "cnode", "cnode", "dnode", "dnode", "fan", "psu", "ssd",
    ]
    .iter()
    .filter_map(|k| by_kind(k))
    .collect();
    anyhow::ensure!(
        !mix.is_empty() && !sites.is_empty(),
        "the fixtures have no parts or sites"
    );

    let pool = pool.min(n);
    let open = (n / 100).max(pool + 50).min(n);
    let span = Duration::days(3 * 365);
    let mut units: Vec<UnitRow> = Vec::with_capacity(n + n / 10);
    // Refurbished units on the shelf, per part and depot, ready to go out again.
    let mut shelf: HashMap<(usize, Uuid), Vec<usize>> = HashMap::new();
    struct Plan {
        id: Uuid,
        number: String,
        site: usize,
        unit: usize,
        replacement: Option<usize>,
        times: Vec<DateTime<Utc>>,
        path: Vec<&'static str>,
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(n);
    let mut counters: BTreeMap<i32, i64> = BTreeMap::new();
    for i in 0..n {
        let created = now - span * ((n - i) as i32) / (n as i32) - Duration::minutes(5);
        let path = path(i, n, open, pool);
        let site_index = i % sites.len();
        let site = &sites[site_index];
        let part = mix[i % mix.len()];
        // Closed RMAs took two to four weeks; open ones are where they are now.
        let last = if i >= n - open {
            now - Duration::minutes(1)
        } else {
            (created + Duration::days(14 + (i % 15) as i64)).min(now - Duration::minutes(1))
        };
        let step = (last - created) / (path.len() as i32);
        let times: Vec<DateTime<Utc>> = (0..path.len()).map(|k| created + step * (k as i32)).collect();
        let end = *path.last().unwrap();
        let end_at = *times.last().unwrap();
        let stage = GOLDEN.iter().position(|s| *s == end);

        let unit = units.len();
        let (condition, location, at_site, at_depot) = match end {
            "cancelled" | "restored" => ("new", "site", true, false),
            "return_shipped" => ("failed", "in_transit", false, false),
            "received" | "triage" | "repair" | "testing" => ("failed", "depot", false, true),
            "scrapped" => ("scrapped", "depot", false, true),
            "returned_to_stock" => ("refurbished", "depot", false, true),
            _ => ("failed", "site", true, false),
        };
        units.push(UnitRow {
            id: v7(created - Duration::days(400)),
            serial: format!("GEN-{i:07}"),
            part,
            condition,
            location,
            site_id: at_site.then_some(site.id),
            depot_id: at_depot.then_some(site.depot_id),
            at: end_at,
        });
        if end == "returned_to_stock" {
            shelf.entry((part, site.depot_id)).or_default().push(unit);
        }
        // From replacement_shipped on, a replacement left the shelf (or came new from the factory).
        let replacement = match stage {
            Some(k) if k >= 3 => {
                let shipped_at = times[3];
                let delivered = k >= 4;
                let r = match shelf.get_mut(&(part, site.depot_id)).and_then(Vec::pop) {
                    Some(r) => r,
                    None => {
                        units.push(UnitRow {
                            id: v7(created),
                            serial: format!("NEW-{i:07}"),
                            part,
                            condition: "new",
                            location: "depot",
                            site_id: None,
                            depot_id: Some(site.depot_id),
                            at: created,
                        });
                        units.len() - 1
                    }
                };
                let u = &mut units[r];
                u.location = if delivered { "site" } else { "in_transit" };
                u.site_id = delivered.then_some(site.id);
                u.depot_id = None;
                u.at = shipped_at;
                Some(r)
            }
            _ => None,
        };
        let year = created.year();
        let sequence = counters.entry(year).or_default();
        *sequence += 1;
        plans.push(Plan {
            id: v7(created),
            number: format!("RMA-{year:04}-{sequence:06}"),
            site: site_index,
            unit,
            replacement,
            times,
            path,
        });
    }

    phases.done("planned");
    let mut conn = Conn::acquire(db).await?;
    // Loading only (the server that is measured runs with its own settings): no syncing, a large
    // cache, the secondary indexes built once at the end rather than row by row, and no per-row
    // foreign-key checks (the rows are consistent by construction; the constraints stay declared,
    // as a restore with pg_restore --disable-triggers leaves them).
    if conn.is_sqlite() {
        conn.exec("PRAGMA synchronous=OFF", vec![]).await?;
        conn.exec("PRAGMA cache_size=-1000000", vec![]).await?;
        conn.exec("PRAGMA foreign_keys=OFF", vec![]).await?;
    } else {
        conn.exec("SET synchronous_commit=off", vec![]).await?;
        conn.exec("SET maintenance_work_mem='1GB'", vec![]).await?;
        conn.exec("SET session_replication_role=replica", vec![]).await?;
    }
    let indexes = conn
        .secondary_indexes(&["units", "rmas", "events", "slot_history"])
        .await?;
    for (name, _) in &indexes {
        conn.exec(&format!("DROP INDEX \"{name}\""), vec![]).await?;
    }
    conn.exec("BEGIN", vec![]).await?;
    let unit_rows: Vec<Vec<V>> = units
        .iter()
        .map(|u| {
            vec![
                V::Uuid(u.id),
                V::Text(u.serial.clone()),
                V::Uuid(parts[u.part].id),
                V::Text(u.condition.into()),
                V::Text(u.location.into()),
                V::OptUuid(u.site_id),
                V::OptUuid(u.depot_id),
                V::OptUuid(None),
                V::OptUuid(None),
                V::OptUuid(None),
                V::Time(u.at),
                V::Time(u.at),
            ]
        })
        .collect();
    conn.bulk_load(
        "units",
        &[
            "id",
            "serial",
            "part_id",
            "condition",
            "location",
            "site_id",
            "depot_id",
            "slot_id",
            "parent_unit_id",
            "replaced_by_unit_id",
            "created_at",
            "updated_at",
        ],
        unit_rows,
    )
    .await?;
    conn.exec("COMMIT", vec![]).await?;
    phases.done("units loaded");

    let rma_columns = [
        "id",
        "number",
        "organization_id",
        "site_id",
        "cluster_id",
        "slot_id",
        "unit_id",
        "part_id",
        "returned_unit_id",
        "severity",
        "symptom",
        "status",
        "version",
        "external_refs",
        "fault_code",
        "resolution",
        "replacement_kind",
        "replacement_part_id",
        "replacement_unit_id",
        "return_depot_id",
        "created_by",
        "created_at",
        "updated_at",
        "status_changed_at",
        "closed_at",
        "refs_text",
        "status_entered",
    ];
    let mut events = 0;
    for (batch_no, batch) in plans.chunks(20_000).enumerate() {
        let mut rma_rows = Vec::with_capacity(batch.len());
        let mut event_rows = Vec::with_capacity(batch.len() * 12);
        for (k, p) in batch.iter().enumerate() {
            let i = batch_no * 20_000 + k;
            let site = &sites[p.site];
            let end = *p.path.last().unwrap();
            let end_at = *p.times.last().unwrap();
            let unit = &units[p.unit];
            let whole = matches!(parts[unit.part].kind.as_str(), "cnode" | "dnode");
            let approved = p.path.contains(&"approved");
            let severity = match i % 20 {
                0 => "sev1",
                1..=3 => "sev2",
                4..=11 => "sev3",
                _ => "sev4",
            };
            let severity = if i >= n - pool { "sev4" } else { severity };
            let refs = if i % 10 == 0 {
                json!({"ticket": format!("INC-{i:07}")})
            } else {
                json!({})
            };
            let refs_text = if i % 10 == 0 {
                format!("INC-{i:07}")
            } else {
                String::new()
            };
            rma_rows.push(vec![
                V::Uuid(p.id),
                V::Text(p.number.clone()),
                V::Uuid(site.organization_id),
                V::Uuid(site.id),
                V::OptUuid(site.clusters.get(i % site.clusters.len().max(1)).copied()),
                V::OptUuid(None),
                V::Uuid(unit.id),
                V::Uuid(parts[unit.part].id),
                V::Uuid(unit.id),
                V::Text(severity.into()),
                V::Text(format!("generated failure {i}: node unreachable, BMC reports fault")),
                V::Text(end.into()),
                V::Int(p.path.len() as i32),
                V::Json(refs),
                V::OptText(approved.then(|| "PSU_FAIL".to_string())),
                V::OptText((end == "restored").then(|| "reseated cables".to_string())),
                V::OptText(approved.then(|| if whole { "whole_unit" } else { "fru" }.to_string())),
                V::OptUuid((approved && !whole).then_some(parts[unit.part].id)),
                V::OptUuid(p.replacement.map(|r| units[r].id)),
                V::Uuid(site.depot_id),
                V::Uuid(engineer.id),
                V::Time(p.times[0]),
                V::Time(end_at),
                V::Time(end_at),
                V::OptTime(
                    ["cancelled", "restored", "scrapped", "returned_to_stock"]
                        .contains(&end)
                        .then_some(end_at),
                ),
                V::Text(refs_text),
                V::Json(json!(
                    p.path
                        .iter()
                        .zip(&p.times)
                        .rev()
                        .map(|(s, at)| (s.to_string(), json!(at)))
                        .collect::<serde_json::Map<_, _>>()
                )),
            ]);
            for (j, status) in p.path.iter().enumerate() {
                event_rows.push(vec![
                    V::Uuid(v7(p.times[j])),
                    V::Uuid(p.id),
                    V::Text(if j == 0 { "opened" } else { "transition" }.into()),
                    V::OptText((j > 0).then(|| p.path[j - 1].to_string())),
                    V::OptText(Some(status.to_string())),
                    V::OptUuid(Some(engineer.id)),
                    V::Text(engineer.email.clone()),
                    V::Time(p.times[j]),
                    V::OptText(None),
                    V::Json(json!({})),
                ]);
                // Half the cases also carry a diagnosis note, as field engineers leave them.
                if *status == "diagnosing" && i % 2 == 0 {
                    event_rows.push(vec![
                        V::Uuid(v7(p.times[j] + Duration::seconds(1))),
                        V::Uuid(p.id),
                        V::Text("check".into()),
                        V::OptText(None),
                        V::OptText(None),
                        V::OptUuid(Some(engineer.id)),
                        V::Text(engineer.email.clone()),
                        V::Time(p.times[j] + Duration::seconds(1)),
                        V::OptText(Some("BMC event log reviewed".into())),
                        V::Json(json!({"step": "bmc_log", "result": "fault"})),
                    ]);
                }
            }
        }
        events += event_rows.len();
        conn.exec("BEGIN", vec![]).await?;
        conn.bulk_load("rmas", &rma_columns, rma_rows).await?;
        conn.bulk_load("events", &EVENT_COLUMNS, event_rows).await?;
        conn.exec("COMMIT", vec![]).await?;
    }
    phases.done("RMAs and events loaded");
    // Every failed unit ran in a slot of its site from 30 days to four years before its failure until its swap
    // (or still runs); every replacement delivered and swapped in runs from its swap on: the
    // exposure failure rates are computed from.
    let swap_stage = GOLDEN.iter().position(|s| *s == "swapped").unwrap();
    let mut stays = Vec::with_capacity(n * 2);
    for (i, p) in plans.iter().enumerate() {
        let site = &sites[p.site];
        let Some(&slot) = site.slots.get(i % site.slots.len().max(1)) else {
            continue;
        };
        let swapped_at = (p.path.len() > swap_stage).then(|| p.times[swap_stage]);
        stays.push(vec![
            V::Uuid(v7(p.times[0])),
            V::Uuid(slot),
            V::Uuid(units[p.unit].id),
            V::OptUuid(None),
            V::Time(p.times[0] - Duration::days(30 + ((i * 7919) % 1460) as i64)),
            V::OptTime(swapped_at),
        ]);
        if let (Some(at), Some(r)) = (swapped_at, p.replacement) {
            stays.push(vec![
                V::Uuid(v7(at)),
                V::Uuid(slot),
                V::Uuid(units[r].id),
                V::OptUuid(Some(p.id)),
                V::Time(at),
                V::OptTime(None),
            ]);
        }
    }
    let stay_count = stays.len();
    conn.exec("BEGIN", vec![]).await?;
    for chunk in stays.chunks(50_000) {
        let columns = ["id", "slot_id", "unit_id", "rma_id", "installed_at", "removed_at"];
        conn.bulk_load("slot_history", &columns, chunk.to_vec()).await?;
    }
    conn.exec("COMMIT", vec![]).await?;
    phases.done(&format!("{stay_count} slot stays loaded"));
    for (year, last) in &counters {
        conn.exec("DELETE FROM rma_counters WHERE year = ?", vec![V::Int(*year)])
            .await?;
        conn.exec(
            "INSERT INTO rma_counters (year, last_number) VALUES (?, ?)",
            vec![V::Int(*year), V::Big(*last)],
        )
        .await?;
    }
    for (_, create) in &indexes {
        conn.exec(create, vec![]).await?;
    }
    phases.done("indexes built");
    if conn.is_sqlite() {
        conn.exec("PRAGMA synchronous=FULL", vec![]).await?;
        conn.exec("PRAGMA cache_size=-2000", vec![]).await?;
        conn.exec("PRAGMA foreign_keys=ON", vec![]).await?;
        // Statistics from a sample of each index, as `PRAGMA optimize` gathers them, not a full scan.
        conn.exec("PRAGMA analysis_limit=1000", vec![]).await?;
    } else {
        conn.exec("RESET synchronous_commit", vec![]).await?;
        conn.exec("RESET maintenance_work_mem", vec![]).await?;
        conn.exec("RESET session_replication_role", vec![]).await?;
    }
    // PostgreSQL: VACUUM too, as after any restore (autovacuum would get there later): it sets the
    // visibility map that index-only scans rely on.
    conn.exec(if conn.is_sqlite() { "ANALYZE" } else { "VACUUM ANALYZE" }, vec![])
        .await?;
    phases.done("analyzed");

    let sample = |k: usize| (0..200).map(move |j| (j * 7919 + k) % n);
    Ok(Dataset {
        rmas: n,
        events,
        units: units.len(),
        pool: plans[n - pool..].iter().map(|p| p.number.clone()).collect(),
        sample_numbers: sample(1).map(|i| plans[i].number.clone()).collect(),
        sample_serials: sample(3).map(|i| units[plans[i].unit].serial.clone()).collect(),
        site_codes: sites.iter().map(|s| s.code.clone()).collect(),
    })
}
