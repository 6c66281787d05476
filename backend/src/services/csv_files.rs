//! CSV in and out: importing sites, slots and units (every row checked and errors named by line,
//! then all rows in one transaction or none), exporting RMAs and stock with formula-safe cells.
use crate::domain::{Condition, Serial};
use crate::entities::{depot, organization, part, rma, site, slot, unit};
use crate::services::views::{self, load_map};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// What a CSV file holds (`depot import KIND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Sites,
    Slots,
    Units,
}

impl Kind {
    /// The header a file of this kind starts with.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Sites => &[
                "code",
                "organization",
                "name",
                "street",
                "city",
                "region",
                "postal_code",
                "country",
                "contact_emails",
                "coverage",
                "default_depot",
            ],
            Kind::Slots => &[
                "site",
                "cluster",
                "cluster_kind",
                "rack",
                "u",
                "hostname",
                "part",
                "serial",
            ],
            Kind::Units => &["serial", "part", "condition", "depot", "site"],
        }
    }
}

/// Optional last columns of a slots or units file: the unit's manufacturing lot and firmware, for
/// failure rates per lot.
pub const ORIGIN_COLUMNS: [&str; 2] = ["lot", "firmware"];

/// The non-empty lot and firmware cells of a row, each at most 64 characters.
fn origin(cell: &dyn Fn(&str) -> String) -> Result<Vec<(&'static str, String)>, String> {
    let mut found = vec![];
    for column in ORIGIN_COLUMNS {
        let value = cell(column);
        if value.chars().count() > 64 {
            return Err(format!("{column} is longer than 64 characters"));
        }
        if !value.is_empty() {
            found.push((column, value));
        }
    }
    Ok(found)
}

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Rows that are wrong, each with its line in the file (the header is line 1).
    #[error("{}", .0.iter().map(|(line, msg)| format!("line {line}: {msg}")).collect::<Vec<_>>().join("\n"))]
    Rows(Vec<(usize, String)>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What the database already knows, to check references and duplicates against.
struct Known {
    organizations: HashSet<String>,
    depots: HashSet<String>,
    sites: HashSet<String>,
    node_parts: HashSet<String>,
    parts: HashSet<String>,
    serials: HashSet<String>,
    slot_names: HashSet<(String, String, String)>,
}

async fn known(db: &DatabaseConnection) -> anyhow::Result<Known> {
    let codes = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>();
    let parts = part::Entity::find().all(db).await?;
    let sites = site::Entity::find().all(db).await?;
    let site_code: BTreeMap<Uuid, String> = sites.iter().map(|s| (s.id, s.code.clone())).collect();
    let clusters = crate::entities::cluster::Entity::find().all(db).await?;
    let cluster_of: BTreeMap<Uuid, (String, String)> = clusters
        .iter()
        .map(|c| {
            (
                c.id,
                (site_code.get(&c.site_id).cloned().unwrap_or_default(), c.name.clone()),
            )
        })
        .collect();
    let serials: Vec<String> = unit::Entity::find()
        .select_only()
        .column(unit::Column::Serial)
        .into_tuple()
        .all(db)
        .await?;
    Ok(Known {
        organizations: codes(
            organization::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|o| o.code)
                .collect(),
        ),
        depots: codes(
            depot::Entity::find()
                .all(db)
                .await?
                .into_iter()
                .map(|d| d.code)
                .collect(),
        ),
        sites: codes(sites.into_iter().map(|s| s.code).collect()),
        node_parts: codes(
            parts
                .iter()
                .filter(|p| matches!(p.kind.as_str(), "cnode" | "dnode"))
                .map(|p| p.number.clone())
                .collect(),
        ),
        parts: codes(parts.into_iter().map(|p| p.number).collect()),
        serials: codes(serials),
        slot_names: slot::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .filter_map(|s| {
                cluster_of
                    .get(&s.cluster_id)
                    .map(|(site, cluster)| (site.clone(), cluster.clone(), s.name))
            })
            .collect(),
    })
}

/// Checks every row of `text` and, when all are right, adds them in one transaction. Calls
/// `progress` with the number of rows read so far. Returns how many rows the file held.
pub async fn import(
    db: &DatabaseConnection,
    kind: Kind,
    text: &str,
    progress: &dyn Fn(u64),
) -> Result<usize, ImportError> {
    let mut known = known(db).await?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Rows(vec![(1, format!("not CSV: {e}"))]))?
        .iter()
        .map(str::to_string)
        .collect();
    let with_origin: Vec<&str> = kind.columns().iter().chain(ORIGIN_COLUMNS.iter()).copied().collect();
    let origin_allowed = matches!(kind, Kind::Slots | Kind::Units);
    if header != kind.columns() && !(origin_allowed && header == with_origin) {
        let optional = match origin_allowed {
            true => format!(" (optionally followed by `{}`)", ORIGIN_COLUMNS.join(",")),
            false => String::new(),
        };
        return Err(ImportError::Rows(vec![(
            1,
            format!("the header must be `{}`{optional}", kind.columns().join(",")),
        )]));
    }
    let mut errors = vec![];
    let mut fixtures = json!({"sites": [], "clusters": [], "stock": [], "site_spares": []});
    for (index, record) in reader.records().enumerate() {
        progress(index as u64 + 1);
        // The line the record starts on: a quoted cell may span lines.
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(index + 2, |p| p.line() as usize);
                errors.push((line, format!("not CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(index + 2, |p| p.line() as usize);
        let cell = |name: &str| {
            let at = header.iter().position(|c| c == name).unwrap_or(usize::MAX);
            record.get(at).unwrap_or_default().to_string()
        };
        if let Err(message) = check_row(kind, &cell, &mut known, &mut fixtures) {
            errors.push((line, message));
        }
        if errors.len() >= 100 {
            errors.push((line, "stopped after 100 errors".into()));
            break;
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Rows(errors));
    }
    let rows = fixtures_rows(&fixtures);
    crate::services::fixtures::load_value(db, fixtures).await?;
    Ok(rows)
}

fn fixtures_rows(f: &Value) -> usize {
    let count = |k: &str| f[k].as_array().map_or(0, Vec::len);
    let nodes: usize = f["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["racks"].as_array().into_iter().flatten())
        .map(|r| r["nodes"].as_array().map_or(0, Vec::len))
        .sum();
    let serials: usize = ["stock", "site_spares"]
        .iter()
        .flat_map(|k| f[*k].as_array().into_iter().flatten())
        .map(|r| r["serials"].as_array().map_or(0, Vec::len))
        .sum();
    count("sites") + nodes + serials
}

fn required(cell: &dyn Fn(&str) -> String, name: &str) -> Result<String, String> {
    let v = cell(name);
    if v.is_empty() {
        Err(format!("{name} is missing"))
    } else {
        Ok(v)
    }
}

fn one_of(value: &str, what: &str, set: &HashSet<String>) -> Result<(), String> {
    if set.contains(value) {
        Ok(())
    } else {
        let mut all: Vec<&String> = set.iter().collect();
        all.sort();
        let shown: Vec<&str> = all.iter().take(12).map(|s| s.as_str()).collect();
        Err(format!("unknown {what} `{value}` (known: {})", shown.join(", ")))
    }
}

fn new_serial(raw: &str, known: &mut Known) -> Result<String, String> {
    let serial = Serial::parse(raw)?.into_string();
    if !known.serials.insert(serial.clone()) {
        return Err(format!("serial {serial} exists already"));
    }
    Ok(serial)
}

/// Checks one row against what is known (the database and the rows above it) and adds it to
/// `fixtures`.
fn check_row(kind: Kind, cell: &dyn Fn(&str) -> String, known: &mut Known, fixtures: &mut Value) -> Result<(), String> {
    match kind {
        Kind::Sites => {
            let code = required(cell, "code")?.to_lowercase();
            if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("code `{code}`: letters, digits and dashes only"));
            }
            let organization = required(cell, "organization")?;
            one_of(&organization, "organization", &known.organizations)?;
            let depot = required(cell, "default_depot")?.to_uppercase();
            one_of(&depot, "depot", &known.depots)?;
            let emails: Vec<String> = required(cell, "contact_emails")?
                .split(';')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            if let Some(bad) = emails
                .iter()
                .find(|e| !e.contains('@') || e.contains(char::is_whitespace))
            {
                return Err(format!("contact_emails: `{bad}` is not an address"));
            }
            let mut row =
                json!({"code": code, "organization": organization, "default_depot": depot, "contact_emails": emails});
            for field in ["name", "street", "city", "region", "postal_code", "country", "coverage"] {
                row[field] = json!(required(cell, field)?);
            }
            if !known.sites.insert(code.clone()) {
                return Err(format!("site {code} exists already"));
            }
            fixtures["sites"].as_array_mut().unwrap().push(row);
        }
        Kind::Slots => {
            let site = required(cell, "site")?.to_lowercase();
            one_of(&site, "site", &known.sites)?;
            let cluster = required(cell, "cluster")?;
            let cluster_kind = required(cell, "cluster_kind")?;
            let rack = required(cell, "rack")?.to_uppercase();
            let u: i32 = required(cell, "u")?
                .parse()
                .ok()
                .filter(|u| (1..=60).contains(u))
                .ok_or("u must be a rack unit from 1 to 60")?;
            let hostname = required(cell, "hostname")?;
            let part = required(cell, "part")?.to_uppercase();
            one_of(&part, "node part", &known.node_parts)?;
            let name = format!("{rack}-U{u:02}");
            if !known.slot_names.insert((site.clone(), cluster.clone(), name.clone())) {
                return Err(format!("slot {name} of {site}/{cluster} exists already"));
            }
            let serial = new_serial(&required(cell, "serial")?, known)?;
            let mut node = json!({"u": u, "hostname": hostname, "part": part, "serial": serial});
            for (column, value) in origin(cell)? {
                node[column] = json!(value);
            }
            let clusters = fixtures["clusters"].as_array_mut().unwrap();
            let at = match clusters
                .iter()
                .position(|c| c["site"] == site.as_str() && c["name"] == cluster.as_str())
            {
                Some(at) => at,
                None => {
                    clusters.push(json!({"site": site, "name": cluster, "kind": cluster_kind, "racks": []}));
                    clusters.len() - 1
                }
            };
            let racks = clusters[at]["racks"].as_array_mut().unwrap();
            match racks.iter_mut().find(|r| r["name"] == rack.as_str()) {
                Some(r) => r["nodes"].as_array_mut().unwrap().push(node),
                None => racks.push(json!({"name": rack, "nodes": [node]})),
            }
        }
        Kind::Units => {
            let part = required(cell, "part")?.to_uppercase();
            one_of(&part, "part", &known.parts)?;
            let condition: Condition = required(cell, "condition")?.parse()?;
            if !condition.is_serviceable() {
                return Err("condition must be new or refurbished".into());
            }
            let (depot, site) = (cell("depot").to_uppercase(), cell("site").to_lowercase());
            let (list, key, place) = match (depot.is_empty(), site.is_empty()) {
                (false, true) => {
                    one_of(&depot, "depot", &known.depots)?;
                    ("stock", "depot", depot)
                }
                (true, false) => {
                    one_of(&site, "site", &known.sites)?;
                    ("site_spares", "site", site)
                }
                _ => return Err("name either a depot or a site".into()),
            };
            let serial = new_serial(&required(cell, "serial")?, known)?;
            let mut group = json!({key: place, "part": part, "condition": condition.as_str()});
            for (column, value) in origin(cell)? {
                group[column] = json!(value);
            }
            let rows = fixtures[list].as_array_mut().unwrap();
            // Units of one place, part, condition, lot and firmware share a row.
            let same = |r: &&mut Value| {
                ["lot", "firmware", key, "part", "condition"]
                    .iter()
                    .all(|k| r[*k] == group[*k])
            };
            match rows.iter_mut().find(same) {
                Some(r) => r["serials"].as_array_mut().unwrap().push(json!(serial)),
                None => {
                    group["serials"] = json!([serial]);
                    rows.push(group);
                }
            }
        }
    }
    Ok(())
}

/// A cell a spreadsheet cannot mistake for a formula: `=`, `+`, `-`, `@` (and tab or carriage
/// return) at the start get a leading apostrophe.
pub fn formula_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// Writes every RMA, oldest first, as CSV. Returns how many.
pub async fn export_rmas(db: &DatabaseConnection, out: impl std::io::Write) -> anyhow::Result<usize> {
    let mut w = writer(out);
    w.write_record([
        "number",
        "status",
        "severity",
        "organization",
        "site",
        "serial",
        "part",
        "replacement_serial",
        "return_depot",
        "created_at",
        "updated_at",
        "closed_at",
        "symptom",
        "external_refs",
    ])?;
    let mut after: Option<Uuid> = None;
    let mut written = 0;
    loop {
        let mut page = rma::Entity::find().order_by_asc(rma::Column::Id).limit(500);
        if let Some(id) = after {
            page = page.filter(rma::Column::Id.gt(id));
        }
        let rows = page.all(db).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        for v in views::rma_views(db, rows).await? {
            let record = [
                v.number,
                v.status,
                v.severity,
                v.organization,
                v.site,
                v.serial,
                v.part,
                v.replacement_serial.unwrap_or_default(),
                v.return_depot,
                v.created_at.to_rfc3339(),
                v.updated_at.to_rfc3339(),
                v.closed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                v.symptom,
                v.external_refs.to_string(),
            ];
            w.write_record(record.iter().map(|c| formula_safe(c)))?;
            written += 1;
        }
    }
    w.flush()?;
    Ok(written)
}

/// Writes the units on the depots' shelves as CSV. Returns how many.
pub async fn export_stock(db: &DatabaseConnection, out: impl std::io::Write) -> anyhow::Result<usize> {
    let units = crate::services::stock::on_shelves()
        .order_by_asc(unit::Column::Serial)
        .all(db)
        .await?;
    let parts = load_map::<part::Entity>(db, units.iter().map(|u| u.part_id)).await?;
    let depots = load_map::<depot::Entity>(db, units.iter().filter_map(|u| u.depot_id)).await?;
    let mut w = writer(out);
    w.write_record(["depot", "part", "condition", "serial", "since"])?;
    for u in &units {
        let depot = u
            .depot_id
            .and_then(|d| depots.get(&d))
            .map(|d| d.code.clone())
            .unwrap_or_default();
        let part = parts.get(&u.part_id).map(|p| p.number.clone()).unwrap_or_default();
        let record = [
            depot,
            part,
            u.condition.clone(),
            u.serial.clone(),
            u.updated_at.to_rfc3339(),
        ];
        w.write_record(record.iter().map(|c| formula_safe(c)))?;
    }
    w.flush()?;
    Ok(units.len())
}

/// A CSV of `rows` (JSON objects) with the given columns in order: text made formula-safe,
/// numbers as they are, nulls empty.
pub fn table(columns: &[&str], rows: &[serde_json::Value]) -> String {
    let mut out = writer(vec![]);
    let mut write = |cells: Vec<String>| out.write_record(cells).expect("writing CSV to memory");
    write(columns.iter().map(|c| c.to_string()).collect());
    for row in rows {
        write(
            columns
                .iter()
                .map(|c| match &row[*c] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => formula_safe(s),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    String::from_utf8(out.into_inner().expect("flushing CSV to memory")).expect("CSV of UTF-8 text")
}
