//! The JSON shapes of SPEC §7 (an RMA, a unit, an event), built in batches so a page costs a fixed
//! number of queries whatever its length.
use crate::domain::Role;
use crate::domain::lifecycle::{self, Field, Status};
use crate::entities::{
    cluster, depot, event, organization, part, rma, shipment, site, slot, tracking_scan, unit, user,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, RwLock};
use uuid::Uuid;

/// Models addressed by a UUID `id` column.
pub trait HasId {
    fn id(&self) -> Uuid;
}

macro_rules! has_id {
    ($($m:ident),*) => { $(impl HasId for $m::Model { fn id(&self) -> Uuid { self.id } })* };
}
has_id!(
    cluster,
    depot,
    organization,
    part,
    rma,
    shipment,
    site,
    slot,
    unit,
    user
);

/// Loads the rows of `E` with the given ids, keyed by id, in one query.
///
/// The ids are collected before the future is built, so callers can pass borrowing iterators.
pub fn load_map<'a, E>(
    db: &'a impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> impl Future<Output = Result<HashMap<Uuid, E::Model>, DbErr>> + Send + 'a
where
    E: EntityTrait + Default,
    E::Model: HasId,
{
    let ids: HashSet<Uuid> = ids.into_iter().collect();
    async move {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = E::find()
            .filter(Expr::col((E::default(), Alias::new("id"))).is_in(ids))
            .all(db)
            .await?;
        Ok(rows.into_iter().map(|m| (m.id(), m)).collect())
    }
}

/// What is read from rows that never change once they exist, remembered by this process: the
/// codes of organizations, sites, depots and parts, the names of clusters and slots, the serials of
/// units (`names_of`), and the depots' addresses (`stock::depot_places`). No code path edits those
/// or reuses an id, so what this process has read once stays true, on every instance: the callers
/// ask the database only for ids they have not met yet. Bounded: past `REMEMBERED` entries it
/// starts over.
pub struct Remembered<T> {
    known: LazyLock<RwLock<HashMap<(&'static str, Uuid), T>>>,
}
const REMEMBERED: usize = 100_000;

impl<T: Clone + Send + Sync + 'static> Default for Remembered<T> {
    fn default() -> Self {
        Remembered::new()
    }
}

impl<T: Clone + Send + Sync + 'static> Remembered<T> {
    pub const fn new() -> Remembered<T> {
        Remembered {
            known: LazyLock::new(Default::default),
        }
    }

    /// Remembers `value` of rows of `E` a caller has read anyway, so the next `of` need not ask.
    pub fn note<'m, E>(&'static self, rows: impl IntoIterator<Item = &'m E::Model>, value: impl Fn(&E::Model) -> T)
    where
        E: EntityTrait + Default,
        E::Model: HasId + 'm,
    {
        let table = E::default().table_name();
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() > REMEMBERED {
            known.clear();
        }
        for row in rows {
            known.insert((table, row.id()), value(row));
        }
    }

    /// `value` of each row of `E` with the given ids, read in one query for those not met yet.
    ///
    /// Like `load_map`, the ids are looked up before the future is built.
    pub fn of<'a, E>(
        &'static self,
        db: &'a impl ConnectionTrait,
        ids: impl IntoIterator<Item = Uuid>,
        value: impl Fn(&E::Model) -> T + Send + 'a,
    ) -> impl Future<Output = Result<HashMap<Uuid, T>, DbErr>> + Send + 'a
    where
        E: EntityTrait + Default,
        E::Model: HasId,
    {
        let table = E::default().table_name();
        let mut found = HashMap::new();
        let mut missing = vec![];
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            for id in ids.into_iter().collect::<HashSet<_>>() {
                match known.get(&(table, id)) {
                    Some(v) => drop(found.insert(id, v.clone())),
                    None => missing.push(id),
                }
            }
        }
        async move {
            if missing.is_empty() {
                return Ok(found);
            }
            let rows = load_map::<E>(db, missing).await?;
            self.note::<E>(rows.values(), &value);
            found.extend(rows.values().map(|row| (row.id(), value(row))));
            Ok(found)
        }
    }
}

static NAMES: Remembered<String> = Remembered::new();

/// The immutable name of each row of `E` with the given ids (see [`Remembered`]).
pub fn names_of<'a, E>(
    db: &'a impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
    name: impl Fn(&E::Model) -> String + Send + 'a,
) -> impl Future<Output = Result<HashMap<Uuid, String>, DbErr>> + Send + 'a
where
    E: EntityTrait + Default,
    E::Model: HasId,
{
    NAMES.of::<E>(db, ids, name)
}

/// Remembers the names of rows of `E` read anyway, for [`names_of`] to find.
pub fn note_names<'m, E>(rows: impl IntoIterator<Item = &'m E::Model>, name: impl Fn(&E::Model) -> String)
where
    E: EntityTrait + Default,
    E::Model: HasId + 'm,
{
    NAMES.note::<E>(rows, name)
}

/// Every row of a small reference table (organizations, depots, sites, parts, clusters), as id → name.
pub async fn names_by_id<E>(
    db: &impl ConnectionTrait,
    name: impl Fn(E::Model) -> String,
) -> Result<HashMap<Uuid, String>, DbErr>
where
    E: EntityTrait + Default,
    E::Model: HasId,
{
    Ok(E::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id(), name(m)))
        .collect())
}

/// An RMA as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RmaView {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub version: i32,
    /// Organization code.
    pub organization: String,
    /// Site code.
    pub site: String,
    pub cluster: Option<String>,
    pub slot: Option<String>,
    pub severity: String,
    pub symptom: String,
    /// Serial of the failed unit the RMA was opened on.
    pub serial: String,
    /// Part number of the failed unit.
    pub part: String,
    /// Serial of the unit that goes back to the depot (the pulled FRU after an FRU swap).
    pub returned_serial: String,
    pub replacement_kind: Option<String>,
    pub replacement_part: Option<String>,
    pub replacement_serial: Option<String>,
    /// Depot code the failed unit returns to.
    pub return_depot: String,
    pub fault_code: Option<String>,
    pub resolution: Option<String>,
    #[schema(value_type = Object)]
    pub external_refs: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// When the replacement this RMA shipped was reported dead on arrival.
    pub dead_on_arrival_at: Option<DateTime<Utc>>,
    /// The customer keeps the failed drive: nothing ships back (SPEC §2, media custody).
    pub keep_your_drive: bool,
    /// The customer's certificate that the kept drive was destroyed.
    pub destruction_certificate: Option<String>,
    /// Technician time reported at the depot, in minutes.
    pub labor_minutes: i32,
    /// Service-level clocks (SPEC §4): `first_response` from the start, the others once started.
    pub clocks: Vec<crate::domain::sla::Clock>,
    /// Shipments, on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipments: Option<Vec<ShipmentView>>,
    /// Who is on call for a sev1, on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_call: Option<String>,
    /// What the requesting user may do next, on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_transitions: Option<Vec<NextTransition>>,
    /// The spare set aside for this RMA from approval until it ships, on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved: Option<ReservedSpare>,
    /// The depot's record (findings, parts, tests, sanitization, vendor), on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<crate::services::repairs::RepairRecord>,
    /// What a BMC event advised (action, part, fault code, why), when one opened or joined the RMA.
    #[schema(value_type = Option<Object>)]
    pub recommendation: Option<serde_json::Value>,
    /// Warnings from the unit's and the slot's history, on the single-RMA answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<crate::services::genealogy::Flag>>,
}

/// A spare reserved for an RMA.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReservedSpare {
    pub serial: String,
    /// Depot code.
    pub depot: String,
    /// `new` or `refurbished`.
    pub condition: String,
}

/// A transition the requesting user may make, with the fields it takes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextTransition {
    pub to: String,
    pub required: Vec<String>,
    pub optional: Vec<String>,
}

impl NextTransition {
    pub fn for_role(status: Status, role: Role, keep_your_drive: bool) -> Vec<NextTransition> {
        let names = |fields: &[Field]| fields.iter().map(|f| f.as_str().to_string()).collect();
        lifecycle::available(status, role, keep_your_drive)
            .map(|t| NextTransition {
                to: t.to.as_str().into(),
                required: names(t.required),
                optional: names(t.optional),
            })
            .collect()
    }
}

/// A shipment as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShipmentView {
    pub direction: String,
    pub serial: String,
    pub carrier: String,
    pub tracking_number: String,
    pub from_address: String,
    pub to_address: String,
    pub depot: Option<String>,
    pub packages: i32,
    pub weight_kg: Option<f64>,
    pub shipped_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The carrier's tracking page, when the carrier has one.
    pub tracking_url: Option<String>,
    /// The carrier's scans, oldest first (from EasyPost or the scan endpoint).
    pub scans: Vec<crate::services::tracking::ScanView>,
}

/// Builds the views of `rmas`, in order, with three queries in all (names come from the cache).
pub async fn rma_views(db: &impl ConnectionTrait, rmas: Vec<rma::Model>) -> Result<Vec<RmaView>, DbErr> {
    let orgs = load_map::<organization::Entity>(db, rmas.iter().map(|r| r.organization_id)).await?;
    rma_views_among(db, rmas, orgs).await
}

/// `rma_views` with the RMAs' organizations already at hand.
pub async fn rma_views_among(
    db: &impl ConnectionTrait,
    rmas: Vec<rma::Model>,
    orgs: HashMap<Uuid, organization::Model>,
) -> Result<Vec<RmaView>, DbErr> {
    let clocks = crate::services::sla::clocks_with(&orgs, &rmas, Utc::now());
    rma_views_with(db, rmas, &orgs, clocks).await
}

/// `rma_views` with the organizations and the clocks already at hand.
pub async fn rma_views_with(
    db: &impl ConnectionTrait,
    rmas: Vec<rma::Model>,
    orgs: &HashMap<Uuid, organization::Model>,
    mut clocks: HashMap<Uuid, Vec<crate::domain::sla::Clock>>,
) -> Result<Vec<RmaView>, DbErr> {
    let unit_ids = rmas
        .iter()
        .flat_map(|r| [Some(r.unit_id), Some(r.returned_unit_id), r.replacement_unit_id])
        .flatten();
    let part_ids = rmas
        .iter()
        .flat_map(|r| [Some(r.part_id), r.replacement_part_id])
        .flatten();
    // Side by side on the pool; those already remembered ask nothing.
    let (sites, clusters, slots, serials, parts, depots) = tokio::try_join!(
        names_of::<site::Entity>(db, rmas.iter().map(|r| r.site_id), |s| s.code.clone()),
        names_of::<cluster::Entity>(db, rmas.iter().filter_map(|r| r.cluster_id), |c| c.name.clone()),
        names_of::<slot::Entity>(db, rmas.iter().filter_map(|r| r.slot_id), |s| s.name.clone()),
        names_of::<unit::Entity>(db, unit_ids, |u| u.serial.clone()),
        names_of::<part::Entity>(db, part_ids, |p| p.number.clone()),
        names_of::<depot::Entity>(db, rmas.iter().map(|r| r.return_depot_id), |d| d.code.clone()),
    )?;
    let serial = |id: Uuid| serials.get(&id).cloned().unwrap_or_default();
    Ok(rmas
        .into_iter()
        .map(|r| RmaView {
            id: r.id,
            organization: orgs.get(&r.organization_id).map(|o| o.code.clone()).unwrap_or_default(),
            site: sites.get(&r.site_id).cloned().unwrap_or_default(),
            cluster: r.cluster_id.and_then(|id| clusters.get(&id)).cloned(),
            slot: r.slot_id.and_then(|id| slots.get(&id)).cloned(),
            serial: serial(r.unit_id),
            part: parts.get(&r.part_id).cloned().unwrap_or_default(),
            returned_serial: serial(r.returned_unit_id),
            replacement_part: r.replacement_part_id.and_then(|id| parts.get(&id)).cloned(),
            replacement_serial: r.replacement_unit_id.map(serial),
            return_depot: depots.get(&r.return_depot_id).cloned().unwrap_or_default(),
            number: r.number,
            status: r.status,
            version: r.version,
            severity: r.severity,
            symptom: r.symptom,
            replacement_kind: r.replacement_kind,
            fault_code: r.fault_code,
            resolution: r.resolution,
            external_refs: r.external_refs,
            created_at: r.created_at,
            updated_at: r.updated_at,
            status_changed_at: r.status_changed_at,
            closed_at: r.closed_at,
            dead_on_arrival_at: r.dead_on_arrival_at,
            keep_your_drive: r.keep_your_drive,
            destruction_certificate: r.destruction_certificate,
            labor_minutes: r.labor_minutes,
            recommendation: r.recommendation,
            clocks: clocks.remove(&r.id).unwrap_or_default(),
            shipments: None,
            on_call: None,
            next_transitions: None,
            reserved: None,
            repair: None,
            flags: None,
        })
        .collect())
}

/// Builds the views of an RMA's shipments, each with its carrier's scans (oldest first).
pub async fn shipment_views(
    db: &impl ConnectionTrait,
    rows: Vec<(shipment::Model, Vec<tracking_scan::Model>)>,
) -> Result<Vec<ShipmentView>, DbErr> {
    let serials = names_of::<unit::Entity>(db, rows.iter().map(|(s, _)| s.unit_id), |u| u.serial.clone()).await?;
    let depots = names_of::<depot::Entity>(db, rows.iter().filter_map(|(s, _)| s.depot_id), |d| d.code.clone()).await?;
    Ok(rows
        .into_iter()
        .map(|(s, scans)| ShipmentView {
            scans: scans.into_iter().map(Into::into).collect(),
            serial: serials.get(&s.unit_id).cloned().unwrap_or_default(),
            depot: s.depot_id.and_then(|id| depots.get(&id)).cloned(),
            tracking_url: crate::domain::carrier::tracking_url(&s.carrier, &s.tracking_number),
            direction: s.direction,
            carrier: s.carrier,
            tracking_number: s.tracking_number,
            from_address: s.from_address,
            to_address: s.to_address,
            packages: s.packages,
            weight_kg: s.weight_kg,
            shipped_at: s.shipped_at,
            delivered_at: s.delivered_at,
        })
        .collect())
}

/// A unit as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitView {
    pub serial: String,
    pub part: String,
    pub kind: String,
    pub condition: String,
    /// `site`, `depot`, `in_transit` or `vendor`.
    pub location: String,
    pub site: Option<String>,
    pub depot: Option<String>,
    pub cluster: Option<String>,
    pub slot: Option<String>,
    pub parent_serial: Option<String>,
    pub replaced_by: Option<String>,
    /// The RMA number a spare on the shelf is reserved for.
    pub reserved_for: Option<String>,
    /// Manufacturing lot and firmware, when imported.
    pub lot: Option<String>,
    pub firmware: Option<String>,
}

/// The units among `rows` whose `replaced_by` the viewer may see. `replaced_by` names the unit that
/// took this one's place at its last pull; a customer sees it only when that pull was one of its
/// own RMAs. A refurbished unit serving a second customer carries no trace of the first.
async fn replacements_visible_to(
    db: &impl ConnectionTrait,
    rows: &[unit::Model],
    scope: Option<Uuid>,
) -> Result<HashSet<Uuid>, DbErr> {
    use sea_orm::{ColumnTrait, QueryOrder, QuerySelect};
    let pulled: Vec<Uuid> = rows
        .iter()
        .filter(|u| u.replaced_by_unit_id.is_some())
        .map(|u| u.id)
        .collect();
    let Some(org) = scope else {
        return Ok(pulled.into_iter().collect());
    };
    if pulled.is_empty() {
        return Ok(HashSet::new());
    }
    // Read by name: an RMA's answer is read on the SQLite writer (see `db::write`).
    #[derive(sea_orm::FromQueryResult)]
    struct Pull {
        returned_unit_id: Uuid,
        organization_id: Uuid,
    }
    let pulls = rma::Entity::find()
        .select_only()
        .column(rma::Column::ReturnedUnitId)
        .column(rma::Column::OrganizationId)
        .filter(rma::Column::ReturnedUnitId.is_in(pulled))
        .order_by_asc(rma::Column::Id)
        .into_model::<Pull>()
        .all(db)
        .await?;
    // RMA ids are UUIDv7, so the last row of each unit is its latest pull.
    let latest: HashMap<Uuid, Uuid> = pulls
        .into_iter()
        .map(|p| (p.returned_unit_id, p.organization_id))
        .collect();
    Ok(latest
        .into_iter()
        .filter(|(_, o)| *o == org)
        .map(|(unit, _)| unit)
        .collect())
}

/// Builds the views of `units`, in order, with a fixed number of queries, as a viewer limited to
/// the organization `scope` (if any) may see them.
pub async fn unit_views(
    db: &impl ConnectionTrait,
    rows: Vec<unit::Model>,
    scope: Option<Uuid>,
) -> Result<Vec<UnitView>, DbErr> {
    let shown_replacements = replacements_visible_to(db, &rows, scope).await?;
    let parts = load_map::<part::Entity>(db, rows.iter().map(|u| u.part_id)).await?;
    let sites = names_of::<site::Entity>(db, rows.iter().filter_map(|u| u.site_id), |s| s.code.clone()).await?;
    let depots = names_of::<depot::Entity>(db, rows.iter().filter_map(|u| u.depot_id), |d| d.code.clone()).await?;
    let slots = load_map::<slot::Entity>(db, rows.iter().filter_map(|u| u.slot_id)).await?;
    let clusters = load_map::<cluster::Entity>(db, slots.values().map(|s| s.cluster_id)).await?;
    let related = load_map::<unit::Entity>(
        db,
        rows.iter()
            .flat_map(|u| [u.parent_unit_id, u.replaced_by_unit_id])
            .flatten(),
    )
    .await?;
    let reserved_for = load_map::<rma::Entity>(db, rows.iter().filter_map(|u| u.reserved_rma_id)).await?;
    let serial = |id: Option<Uuid>| id.and_then(|id| related.get(&id)).map(|u| u.serial.clone());
    Ok(rows
        .into_iter()
        .map(|u| {
            let part = parts.get(&u.part_id);
            let slot = u.slot_id.and_then(|id| slots.get(&id));
            UnitView {
                part: part.map(|p| p.number.clone()).unwrap_or_default(),
                kind: part.map(|p| p.kind.clone()).unwrap_or_default(),
                site: u.site_id.and_then(|id| sites.get(&id)).cloned(),
                depot: u.depot_id.and_then(|id| depots.get(&id)).cloned(),
                cluster: slot.and_then(|s| clusters.get(&s.cluster_id)).map(|c| c.name.clone()),
                slot: slot.map(|s| s.name.clone()),
                parent_serial: serial(u.parent_unit_id),
                replaced_by: serial(u.replaced_by_unit_id.filter(|_| shown_replacements.contains(&u.id))),
                reserved_for: u
                    .reserved_rma_id
                    .and_then(|id| reserved_for.get(&id))
                    .map(|r| r.number.clone()),
                serial: u.serial,
                condition: u.condition,
                location: u.location,
                lot: u.lot,
                firmware: u.firmware,
            }
        })
        .collect())
}

/// An event as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The acting user's email.
    pub actor: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    /// The fields the change carried.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
}

impl From<event::Model> for EventView {
    fn from(e: event::Model) -> Self {
        EventView {
            id: e.id,
            kind: e.kind,
            from: e.from_status,
            to: e.to_status,
            actor: e.actor_email,
            at: e.at,
            note: e.note,
            fields: e.fields,
        }
    }
}
