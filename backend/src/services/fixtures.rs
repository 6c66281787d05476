//! Loads the demo data of `fixtures/*.toml`. Records are keyed by their human identifiers (codes,
//! serials, emails); what already exists is left as it is, so loading twice changes nothing.
use crate::db::begin_write;
use crate::domain::{Condition, Location, Role};
use crate::entities::{cluster, depot, finding_code, organization, part, site, slot, slot_history, unit, user};
use crate::services::auth::{hash_password, verify_password};
use anyhow::{Context, bail};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixtures {
    #[serde(default)]
    organizations: Vec<OrganizationRow>,
    #[serde(default)]
    depots: Vec<DepotRow>,
    #[serde(default)]
    sites: Vec<SiteRow>,
    #[serde(default)]
    parts: Vec<PartRow>,
    #[serde(default)]
    clusters: Vec<ClusterRow>,
    #[serde(default)]
    frus: FruRows,
    #[serde(default)]
    stock: Vec<SerialsRow>,
    #[serde(default)]
    site_spares: Vec<SerialsRow>,
    #[serde(default)]
    users: Vec<UserRow>,
    #[serde(default)]
    oncall: Vec<OncallRow>,
    #[serde(default)]
    finding_codes: Vec<FindingCodeRow>,
    #[serde(default)]
    cases: Vec<CaseRow>,
}

/// A case of the demo: opened by someone and carried along the lifecycle by the steps given, as its
/// people would. Keyed by its ticket reference, which no other RMA carries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRow {
    ticket: String,
    site: String,
    serial: String,
    severity: String,
    symptom: String,
    opened_by: String,
    #[serde(default)]
    steps: Vec<StepRow>,
}

/// One transition of a case: who makes it, and the request's fields (`to` and what the row needs).
#[derive(Debug, Deserialize)]
struct StepRow {
    by: String,
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct FindingCodeRow {
    code: String,
    description: String,
    #[serde(default)]
    part_kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OncallRow {
    organization: String,
    members: Vec<String>,
    starts_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct OrganizationRow {
    code: String,
    name: String,
    kind: String,
    #[serde(default)]
    oncall: Vec<String>,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    calendar: Option<crate::domain::sla::Calendar>,
}

#[derive(Debug, Deserialize)]
struct Address {
    street: String,
    city: String,
    region: String,
    postal_code: String,
    country: String,
}

#[derive(Debug, Deserialize)]
struct DepotRow {
    code: String,
    name: String,
    #[serde(flatten)]
    address: Address,
}

#[derive(Debug, Deserialize)]
struct SiteRow {
    code: String,
    organization: String,
    name: String,
    #[serde(flatten)]
    address: Address,
    contact_emails: Vec<String>,
    coverage: String,
    default_depot: String,
}

#[derive(Debug, Deserialize)]
struct PartRow {
    number: String,
    kind: String,
    description: String,
    field_replaceable: bool,
    holds_media: bool,
}

#[derive(Debug, Deserialize)]
struct ClusterRow {
    site: String,
    name: String,
    kind: String,
    racks: Vec<RackRow>,
}

#[derive(Debug, Deserialize)]
struct RackRow {
    name: String,
    nodes: Vec<NodeRow>,
}

#[derive(Debug, Deserialize)]
struct NodeRow {
    u: i32,
    hostname: String,
    part: String,
    serial: String,
    #[serde(default)]
    lot: Option<String>,
    #[serde(default)]
    firmware: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FruRows {
    units: Vec<FruRow>,
}

#[derive(Debug, Deserialize)]
struct FruRow {
    node: String,
    bay: String,
    part: String,
    serial: String,
}

#[derive(Debug, Deserialize)]
struct SerialsRow {
    #[serde(default)]
    depot: Option<String>,
    #[serde(default)]
    site: Option<String>,
    part: String,
    condition: String,
    serials: Vec<String>,
    /// Manufacturing lot and firmware of every unit in the row.
    #[serde(default)]
    lot: Option<String>,
    #[serde(default)]
    firmware: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserRow {
    email: String,
    name: String,
    role: String,
    organization: String,
    #[serde(default)]
    depot: Option<String>,
    /// None for an integration, which has API tokens and no sign-in.
    #[serde(default)]
    password: Option<String>,
}

/// What a load added.
#[derive(Debug, Default)]
pub struct Loaded {
    pub units: usize,
    pub users: usize,
    pub cases: usize,
}

/// Loads every `*.toml` file of `dir`, in name order, each in one transaction.
pub async fn load_dir(db: &DatabaseConnection, dir: &Path) -> anyhow::Result<Loaded> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading fixtures from {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut total = Loaded::default();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let fixtures: Fixtures = toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let loaded = load(db, fixtures)
            .await
            .with_context(|| format!("loading {}", file.display()))?;
        total.units += loaded.units;
        total.users += loaded.users;
        total.cases += loaded.cases;
    }
    Ok(total)
}

/// The demo data of `fixtures/demo.toml`, compiled in for a `depot` run outside the checkout.
pub const DEMO: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo.toml"));

/// Loads fixtures from TOML text (tests add their own on top of the demo data this way).
pub async fn load_str(db: &DatabaseConnection, text: &str) -> anyhow::Result<Loaded> {
    load(db, toml::from_str(text).context("parsing fixtures")?).await
}

/// Loads fixtures given as a value of the fixture file's shape (the CSV importer builds one).
pub(crate) async fn load_value(db: &DatabaseConnection, value: serde_json::Value) -> anyhow::Result<Loaded> {
    load(db, serde_json::from_value(value).context("fixtures")?).await
}

/// Maps a human key to the id of an existing row.
fn lookup<'a>(map: &'a HashMap<String, Uuid>, what: &str, key: &str) -> anyhow::Result<&'a Uuid> {
    map.get(key).with_context(|| format!("unknown {what} `{key}`"))
}

async fn load(db: &DatabaseConnection, mut f: Fixtures) -> anyhow::Result<Loaded> {
    let cases = std::mem::take(&mut f.cases);
    let mut loaded = load_records(db, f).await?;
    // After the records they stand on have committed: each case goes through the services, as
    // its people would have carried it.
    for case in cases {
        let ticket = case.ticket.clone();
        loaded.cases += load_case(db, case).await.with_context(|| format!("case {ticket}"))? as usize;
    }
    Ok(loaded)
}

async fn actor_of(db: &DatabaseConnection, email: &str) -> anyhow::Result<crate::services::Actor> {
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?
        .with_context(|| format!("unknown user `{email}`"))?;
    Ok(crate::services::tokens::actor_for(db, user).await?)
}

/// Opens `case` and makes its steps, unless an RMA with its ticket exists; whether it did.
async fn load_case(db: &DatabaseConnection, case: CaseRow) -> anyhow::Result<bool> {
    use crate::services::rmas::{self, OpenRma, TransitionRequest};
    let ticket = case.ticket.to_uppercase();
    // Its `ticket` reference is its key, whatever other references people added since.
    let exists = crate::entities::rma::Entity::find()
        .filter(crate::entities::rma::Column::RefsText.contains(ticket.as_str()))
        .all(db)
        .await?
        .iter()
        .any(|r| r.external_refs.get("ticket").and_then(|t| t.as_str()) == Some(ticket.as_str()));
    if exists {
        return Ok(false);
    }
    let opener = actor_of(db, &case.opened_by).await?;
    let open = OpenRma {
        site: case.site,
        serial: case.serial,
        severity: case.severity,
        symptom: case.symptom,
        external_refs: Some(serde_json::json!({ "ticket": ticket })),
    };
    let mut rma = rmas::open(db, &opener, open).await?;
    for step in case.steps {
        let actor = actor_of(db, &step.by).await?;
        let mut fields = step.fields;
        fields.insert("version".into(), rma.version.into());
        let request: TransitionRequest = serde_json::from_value(fields.into())?;
        let to = request.to.clone();
        rma = rmas::transition(db, &actor, &rma.number, request)
            .await
            .with_context(|| format!("moving {} to {to}", rma.number))?;
    }
    Ok(true)
}

async fn load_records(db: &DatabaseConnection, f: Fixtures) -> anyhow::Result<Loaded> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    let mut loaded = Loaded::default();

    let mut orgs: HashMap<String, Uuid> = organization::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|o| (o.code, o.id))
        .collect();
    for o in f.organizations {
        if orgs.contains_key(&o.code) {
            continue;
        }
        let id = Uuid::now_v7();
        organization::ActiveModel {
            id: Set(id),
            code: Set(o.code.clone()),
            name: Set(o.name),
            kind: Set(o.kind),
            created_at: Set(now),
            webhook_url: Set(o.webhook_url),
            oncall_emails: Set((!o.oncall.is_empty()).then(|| serde_json::json!(o.oncall))),
            mandatory_checks: Set(None),
            severity_map: Set(None),
            sla_policy: Set(None),
            calendar: Set(o.calendar.map(|c| serde_json::to_value(c).unwrap_or_default())),
        }
        .insert(&txn)
        .await?;
        orgs.insert(o.code, id);
    }
    let mut depots: HashMap<String, Uuid> = depot::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| (d.code, d.id))
        .collect();
    for d in f.depots {
        if depots.contains_key(&d.code) {
            continue;
        }
        let id = Uuid::now_v7();
        let a = d.address;
        depot::ActiveModel {
            id: Set(id),
            code: Set(d.code.clone()),
            name: Set(d.name),
            street: Set(a.street),
            city: Set(a.city),
            region: Set(a.region),
            postal_code: Set(a.postal_code),
            country: Set(a.country),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        depots.insert(d.code, id);
    }
    let mut sites: HashMap<String, Uuid> = site::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|s| (s.code, s.id))
        .collect();
    for s in f.sites {
        if sites.contains_key(&s.code) {
            continue;
        }
        let id = Uuid::now_v7();
        let a = s.address;
        site::ActiveModel {
            id: Set(id),
            code: Set(s.code.clone()),
            organization_id: Set(*lookup(&orgs, "organization", &s.organization)?),
            name: Set(s.name),
            street: Set(a.street),
            city: Set(a.city),
            region: Set(a.region),
            postal_code: Set(a.postal_code),
            country: Set(a.country),
            contact_emails: Set(serde_json::json!(s.contact_emails)),
            coverage: Set(s.coverage),
            default_depot_id: Set(*lookup(&depots, "depot", &s.default_depot)?),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        sites.insert(s.code, id);
    }
    let mut parts: HashMap<String, Uuid> = part::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|p| (p.number, p.id))
        .collect();
    for p in f.parts {
        if parts.contains_key(&p.number) {
            continue;
        }
        let id = Uuid::now_v7();
        part::ActiveModel {
            id: Set(id),
            number: Set(p.number.clone()),
            kind: Set(p.kind),
            description: Set(p.description),
            field_replaceable: Set(p.field_replaceable),
            holds_media: Set(p.holds_media),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        parts.insert(p.number, id);
    }

    let known_codes: Vec<String> = finding_code::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    for c in f.finding_codes {
        let code = c.code.trim().to_uppercase();
        if known_codes.contains(&code) {
            continue;
        }
        finding_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            code: Set(code),
            description: Set(c.description),
            part_kind: Set(c.part_kind),
        }
        .insert(&txn)
        .await?;
    }

    let mut units = UnitBatch {
        known: unit::Entity::find()
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| (u.serial, u.id))
            .collect(),
        rows: Vec::new(),
        history: Vec::new(),
        now,
    };

    let mut clusters: HashMap<(Uuid, String), Uuid> = cluster::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| ((c.site_id, c.name), c.id))
        .collect();
    let mut slots: HashMap<(Uuid, String), Uuid> = slot::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|s| ((s.cluster_id, s.name), s.id))
        .collect();
    let mut new_slots: Vec<slot::ActiveModel> = Vec::new();
    // The slot of each node, so FRUs can be placed in bays beneath it.
    let mut node_slots: HashMap<String, (Uuid, Uuid, String, Uuid)> = HashMap::new();
    for c in f.clusters {
        let site_id = *lookup(&sites, "site", &c.site)?;
        let cluster_id = match clusters.get(&(site_id, c.name.clone())) {
            Some(id) => *id,
            None => {
                let id = Uuid::now_v7();
                cluster::ActiveModel {
                    id: Set(id),
                    site_id: Set(site_id),
                    name: Set(c.name.clone()),
                    kind: Set(c.kind),
                    created_at: Set(now),
                }
                .insert(&txn)
                .await?;
                clusters.insert((site_id, c.name), id);
                id
            }
        };
        for rack in c.racks {
            for node in rack.nodes {
                let name = format!("{}-U{:02}", rack.name, node.u);
                let slot_id = match slots.get(&(cluster_id, name.clone())) {
                    Some(id) => *id,
                    None => {
                        let id = Uuid::now_v7();
                        new_slots.push(slot::ActiveModel {
                            id: Set(id),
                            cluster_id: Set(cluster_id),
                            parent_slot_id: Set(None),
                            name: Set(name.clone()),
                            rack: Set(rack.name.clone()),
                            rack_unit: Set(Some(node.u)),
                            hostname: Set(Some(node.hostname.clone())),
                            bay: Set(None),
                            created_at: Set(now),
                        });
                        slots.insert((cluster_id, name.clone()), id);
                        id
                    }
                };
                let part = *lookup(&parts, "part", &node.part)?;
                units.add(
                    &node.serial,
                    part,
                    "new",
                    (Location::Site, Some(site_id), None),
                    Some(slot_id),
                    None,
                )?;
                units.set_origin(&node.serial, node.lot.clone(), node.firmware.clone());
                node_slots.insert(node.serial.clone(), (cluster_id, slot_id, name, site_id));
            }
        }
    }
    for fru in f.frus.units {
        let (cluster_id, node_slot, node_slot_name, site_id) = node_slots
            .get(&fru.node)
            .cloned()
            .with_context(|| format!("FRU {} names unknown node {}", fru.serial, fru.node))?;
        let name = format!("{node_slot_name}/{}", fru.bay);
        let slot_id = match slots.get(&(cluster_id, name.clone())) {
            Some(id) => *id,
            None => {
                let id = Uuid::now_v7();
                new_slots.push(slot::ActiveModel {
                    id: Set(id),
                    cluster_id: Set(cluster_id),
                    parent_slot_id: Set(Some(node_slot)),
                    name: Set(name.clone()),
                    rack: Set(node_slot_name.split('-').next().unwrap_or_default().to_string()),
                    rack_unit: Set(None),
                    hostname: Set(None),
                    bay: Set(Some(fru.bay.clone())),
                    created_at: Set(now),
                });
                slots.insert((cluster_id, name), id);
                id
            }
        };
        let part = *lookup(&parts, "part", &fru.part)?;
        let node = *units
            .known
            .get(&fru.node)
            .with_context(|| format!("unknown node {}", fru.node))?;
        units.add(
            &fru.serial,
            part,
            "new",
            (Location::Site, Some(site_id), None),
            Some(slot_id),
            Some(node),
        )?;
    }
    for row in f.stock.iter().chain(&f.site_spares) {
        let part = *lookup(&parts, "part", &row.part)?;
        let place = match (&row.depot, &row.site) {
            (Some(d), None) => (Location::Depot, None, Some(*lookup(&depots, "depot", d)?)),
            (None, Some(s)) => (Location::Site, Some(*lookup(&sites, "site", s)?), None),
            _ => bail!("a stock row names either a depot or a site: {:?}", row.serials),
        };
        for serial in &row.serials {
            units.add(serial, part, &row.condition, place, None, None)?;
            units.set_origin(serial, row.lot.clone(), row.firmware.clone());
        }
    }
    insert_chunked(&txn, new_slots).await?;
    loaded.units = units.rows.len();
    // Nodes go in before the FRUs that reference them: the list is in that order already.
    insert_chunked(&txn, units.rows).await?;
    insert_chunked(&txn, units.history).await?;

    let existing: Vec<String> = user::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect();
    for u in f.users {
        let email = u.email.trim().to_lowercase();
        if existing.contains(&email) {
            continue;
        }
        let role: Role = u.role.parse().map_err(anyhow::Error::msg)?;
        let depot_id = u
            .depot
            .as_deref()
            .map(|d| lookup(&depots, "depot", d).copied())
            .transpose()?;
        if (role == Role::DepotTech) != depot_id.is_some() {
            bail!("user {email}: a depot_tech needs a depot, and only a depot_tech has one");
        }
        user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email),
            name: Set(u.name),
            role: Set(role.as_str().into()),
            organization_id: Set(*lookup(&orgs, "organization", &u.organization)?),
            depot_id: Set(depot_id),
            // "!" is no hash: nothing verifies against it.
            password_hash: Set(u
                .password
                .as_deref()
                .map(hash_password)
                .transpose()?
                .unwrap_or_else(|| "!".into())),
            disabled: Set(false),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        loaded.users += 1;
    }
    for rotation in f.oncall {
        let org = *lookup(&orgs, "organization", &rotation.organization)?;
        let exists = crate::services::oncall::on_call(&txn, org, Utc::now()).await?.is_some();
        if !exists {
            crate::services::oncall::add_shift(
                &txn,
                org,
                crate::services::oncall::ROTATION,
                rotation.members,
                rotation.starts_at,
                None,
            )
            .await?;
        }
    }
    txn.commit().await?;
    Ok(loaded)
}

/// Units to insert, keyed by serial so that existing ones are skipped.
struct UnitBatch {
    known: HashMap<String, Uuid>,
    rows: Vec<unit::ActiveModel>,
    history: Vec<slot_history::ActiveModel>,
    now: chrono::DateTime<Utc>,
}

/// Where a new unit is: location, site, depot.
type Whereabouts = (Location, Option<Uuid>, Option<Uuid>);

impl UnitBatch {
    /// Sets the lot and firmware of a unit added to this batch (not of one that already existed).
    fn set_origin(&mut self, serial: &str, lot: Option<String>, firmware: Option<String>) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.serial.as_ref() == serial) {
            row.lot = Set(lot);
            row.firmware = Set(firmware);
        }
    }

    fn add(
        &mut self,
        serial: &str,
        part: Uuid,
        condition: &str,
        place: Whereabouts,
        slot: Option<Uuid>,
        parent: Option<Uuid>,
    ) -> anyhow::Result<()> {
        if self.known.contains_key(serial) {
            return Ok(());
        }
        let condition: Condition = condition.parse().map_err(anyhow::Error::msg)?;
        let id = Uuid::now_v7();
        self.known.insert(serial.to_string(), id);
        if let Some(slot_id) = slot {
            self.history.push(slot_history::ActiveModel {
                id: Set(Uuid::now_v7()),
                slot_id: Set(slot_id),
                unit_id: Set(id),
                rma_id: Set(None),
                installed_at: Set(self.now),
                removed_at: Set(None),
            });
        }
        self.rows.push(unit::ActiveModel {
            id: Set(id),
            serial: Set(serial.to_string()),
            part_id: Set(part),
            condition: Set(condition.as_str().into()),
            location: Set(place.0.as_str().into()),
            site_id: Set(place.1),
            depot_id: Set(place.2),
            slot_id: Set(slot),
            parent_unit_id: Set(parent),
            replaced_by_unit_id: Set(None),
            reserved_rma_id: Set(None),
            lot: Set(None),
            firmware: Set(None),
            created_at: Set(self.now),
            updated_at: Set(self.now),
        });
        Ok(())
    }
}

/// Inserts in chunks that stay under SQLite's bound-parameter limit.
async fn insert_chunked<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> anyhow::Result<()>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(200).collect();
        A::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// The enabled users whose password is still `password`: the demo sign-ins `depot serve` prints.
pub async fn users_with_password(db: &DatabaseConnection, password: &str) -> anyhow::Result<Vec<(String, String)>> {
    let users = user::Entity::find()
        .filter(user::Column::Disabled.eq(false))
        .all(db)
        .await?;
    Ok(users
        .into_iter()
        .filter(|u| verify_password(password, &u.password_hash))
        .map(|u| (u.email, u.role))
        .collect())
}
