//! Units anywhere and the spare stock of the depots.
use crate::domain::{Condition, Role, Serial};
use crate::entities::{cluster, depot, part, rma, site, slot, slot_history, unit};
use crate::error::{AppError, AppResult};
use crate::services::views::{self, UnitView};
use crate::services::{Actor, Page, page_limit, paginate, stock};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select};
use serde::Deserialize;
use uuid::Uuid;

/// Filters of `GET /api/v1/units` and `GET /api/v1/stock`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct UnitFilter {
    /// Site code.
    pub site: Option<String>,
    /// Depot code.
    pub depot: Option<String>,
    /// Part number.
    pub part: Option<String>,
    /// `new`, `refurbished`, `failed` or `scrapped`.
    pub condition: Option<String>,
    /// A serial, or the start of one.
    pub q: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn filtered(mut query: Select<unit::Entity>, filter: &UnitFilter) -> AppResult<Select<unit::Entity>> {
    if let Some(code) = given(&filter.site) {
        let ids = site::Entity::find()
            .select_only()
            .column(site::Column::Id)
            .filter(site::Column::Code.eq(code));
        query = query.filter(unit::Column::SiteId.in_subquery(ids.into_query()));
    }
    if let Some(code) = given(&filter.depot) {
        let ids = depot::Entity::find()
            .select_only()
            .column(depot::Column::Id)
            .filter(depot::Column::Code.eq(code.to_uppercase()));
        query = query.filter(unit::Column::DepotId.in_subquery(ids.into_query()));
    }
    if let Some(number) = given(&filter.part) {
        let ids = part::Entity::find()
            .select_only()
            .column(part::Column::Id)
            .filter(part::Column::Number.eq(number.to_uppercase()));
        query = query.filter(unit::Column::PartId.in_subquery(ids.into_query()));
    }
    if let Some(condition) = given(&filter.condition) {
        let condition: Condition = condition.parse().map_err(AppError::invalid)?;
        query = query.filter(unit::Column::Condition.eq(condition.as_str()));
    }
    if let Some(q) = given(&filter.q) {
        // A serial prefix: the range keeps it on the unique index of serials.
        let prefix = Serial::parse(q).map_err(AppError::invalid)?.into_string();
        query = query
            .filter(unit::Column::Serial.gte(prefix.clone()))
            .filter(unit::Column::Serial.lt(format!("{prefix}\u{7f}")));
    }
    if let Some(cursor) = given(&filter.cursor) {
        query = query.filter(unit::Column::Serial.gt(cursor));
    }
    Ok(query)
}

async fn page(
    db: &DatabaseConnection,
    query: Select<unit::Entity>,
    limit: u64,
    scope: Option<Uuid>,
) -> AppResult<Page<UnitView>> {
    let rows = query
        .order_by_asc(unit::Column::Serial)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = paginate(rows, limit, |u| u.serial.clone(), |rows| rows);
    Ok(Page {
        items: views::unit_views(db, page.items, scope).await?,
        next_cursor: page.next_cursor,
    })
}

/// Units anywhere, by serial; a customer's technician sees only units at their organization's sites.
pub async fn list(db: &DatabaseConnection, actor: &Actor, filter: UnitFilter) -> AppResult<Page<UnitView>> {
    let limit = page_limit(filter.limit)?;
    let query = at_own_sites(filtered(unit::Entity::find(), &filter)?, actor);
    page(db, query, limit, actor.organization_scope()).await
}

/// The ids of an organization's sites, as a subquery.
fn site_ids_of(org: Uuid) -> sea_orm::sea_query::SelectStatement {
    site::Entity::find()
        .select_only()
        .column(site::Column::Id)
        .filter(site::Column::OrganizationId.eq(org))
        .into_query()
}

/// Limits `query` to the units now at the sites of a customer's technician's organization.
fn at_own_sites(query: Select<unit::Entity>, actor: &Actor) -> Select<unit::Entity> {
    match actor.organization_scope() {
        Some(org) => query.filter(unit::Column::SiteId.in_subquery(site_ids_of(org))),
        None => query,
    }
}

/// Serviceable units on the depots' shelves: new or refurbished, loose, at a depot.
pub async fn stock(db: &DatabaseConnection, actor: &Actor, filter: UnitFilter) -> AppResult<Page<UnitView>> {
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let limit = page_limit(filter.limit)?;
    let query = filtered(stock::on_shelves(), &filter)?;
    page(db, query, limit, None).await
}

/// One unit by serial, if `actor` may see it.
pub async fn get(db: &DatabaseConnection, actor: &Actor, serial: &str) -> AppResult<UnitView> {
    let not_found = || AppError::not_found(format!("no unit {}", serial.trim()));
    let serial = Serial::parse(serial).map_err(|_| not_found())?;
    let query = unit::Entity::find().filter(unit::Column::Serial.eq(serial.as_str()));
    let unit = at_own_sites(query, actor).one(db).await?.ok_or_else(not_found)?;
    Ok(views::unit_views(db, vec![unit], actor.organization_scope())
        .await?
        .remove(0))
}

/// A site as the pickers show it.
#[derive(Debug, serde::Serialize)]
pub struct SiteChoice {
    pub code: String,
    pub name: String,
}

/// The sites `actor` may open RMAs at (a customer's technician: their own organization's).
pub async fn visible_sites(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<SiteChoice>> {
    let mut query = site::Entity::find().order_by_asc(site::Column::Code);
    if let Some(org) = actor.organization_scope() {
        query = query.filter(site::Column::OrganizationId.eq(org));
    }
    Ok(query
        .all(db)
        .await?
        .into_iter()
        .map(|s| SiteChoice {
            code: s.code,
            name: s.name,
        })
        .collect())
}

/// Nodes installed in the slots of a visible site, by cluster and slot.
pub async fn nodes_at_site(db: &DatabaseConnection, actor: &Actor, site_code: &str) -> AppResult<Vec<UnitView>> {
    let mut sites = site::Entity::find().filter(site::Column::Code.eq(site_code.trim()));
    if let Some(org) = actor.organization_scope() {
        sites = sites.filter(site::Column::OrganizationId.eq(org));
    }
    let Some(site) = sites.one(db).await? else {
        return Ok(vec![]);
    };
    let rows = unit::Entity::find()
        .filter(unit::Column::SiteId.eq(site.id))
        .filter(unit::Column::SlotId.is_not_null())
        .filter(unit::Column::ParentUnitId.is_null())
        .order_by_asc(unit::Column::Serial)
        .all(db)
        .await?;
    let mut views = views::unit_views(db, rows, actor.organization_scope()).await?;
    views.sort_by(|a, b| (&a.cluster, &a.slot).cmp(&(&b.cluster, &b.slot)));
    Ok(views)
}

/// Spares on a depot's shelves for one part, by condition.
#[derive(Debug, serde::Serialize)]
pub struct StockLine {
    pub depot: String,
    pub part: String,
    pub kind: String,
    pub description: String,
    pub new: i64,
    pub refurbished: i64,
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct StockCount {
    depot_id: Uuid,
    part_id: Uuid,
    condition: String,
    count: i64,
}

/// Stock per depot and part with counts by condition, every part listed for every depot.
pub async fn stock_summary(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<StockLine>> {
    use sea_orm::sea_query::{Expr, Func};
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let counts = stock::on_shelves()
        .select_only()
        .column(unit::Column::DepotId)
        .column(unit::Column::PartId)
        .column(unit::Column::Condition)
        .column_as(Expr::from(Func::count(Expr::col(unit::Column::Id))), "count")
        .group_by(unit::Column::DepotId)
        .group_by(unit::Column::PartId)
        .group_by(unit::Column::Condition)
        .into_model::<StockCount>()
        .all(db)
        .await?;
    let depots = depot::Entity::find().order_by_asc(depot::Column::Code).all(db).await?;
    let parts = part::Entity::find().order_by_asc(part::Column::Number).all(db).await?;
    let count = |d: Uuid, p: Uuid, c: Condition| {
        counts
            .iter()
            .find(|x| x.depot_id == d && x.part_id == p && x.condition == c.as_str())
            .map_or(0, |x| x.count)
    };
    let mut lines = vec![];
    for d in &depots {
        for p in &parts {
            lines.push(StockLine {
                depot: d.code.clone(),
                part: p.number.clone(),
                kind: p.kind.clone(),
                description: p.description.clone(),
                new: count(d.id, p.id, Condition::New),
                refurbished: count(d.id, p.id, Condition::Refurbished),
            });
        }
    }
    Ok(lines)
}

/// A period a unit spent in a slot.
#[derive(Debug, serde::Serialize)]
pub struct SlotStay {
    pub slot_id: Uuid,
    pub slot: String,
    pub cluster: String,
    pub serial: String,
    pub part: String,
    pub rma: Option<String>,
    pub installed_at: chrono::DateTime<chrono::Utc>,
    pub removed_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn stays(db: &DatabaseConnection, rows: Vec<slot_history::Model>) -> AppResult<Vec<SlotStay>> {
    let slots = views::load_map::<slot::Entity>(db, rows.iter().map(|r| r.slot_id)).await?;
    let clusters = views::load_map::<cluster::Entity>(db, slots.values().map(|s| s.cluster_id)).await?;
    let units = views::load_map::<unit::Entity>(db, rows.iter().map(|r| r.unit_id)).await?;
    let parts = views::load_map::<part::Entity>(db, units.values().map(|u| u.part_id)).await?;
    let rmas = views::load_map::<rma::Entity>(db, rows.iter().filter_map(|r| r.rma_id)).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let slot = slots.get(&r.slot_id);
            let unit = units.get(&r.unit_id);
            SlotStay {
                slot_id: r.slot_id,
                slot: slot.map(|s| s.name.clone()).unwrap_or_default(),
                cluster: slot
                    .and_then(|s| clusters.get(&s.cluster_id))
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                serial: unit.map(|u| u.serial.clone()).unwrap_or_default(),
                part: unit
                    .and_then(|u| parts.get(&u.part_id))
                    .map(|p| p.number.clone())
                    .unwrap_or_default(),
                rma: r.rma_id.and_then(|id| rmas.get(&id)).map(|x| x.number.clone()),
                installed_at: r.installed_at,
                removed_at: r.removed_at,
            }
        })
        .collect())
}

/// A unit with every RMA it took part in and every slot it sat in.
#[derive(Debug, serde::Serialize)]
pub struct UnitHistory {
    #[serde(skip)]
    pub unit_id: Uuid,
    pub unit: UnitView,
    pub rmas: Vec<views::RmaView>,
    pub slots: Vec<SlotStay>,
    pub components: Vec<UnitView>,
    pub flags: Vec<crate::services::genealogy::Flag>,
}

pub async fn history(db: &DatabaseConnection, actor: &Actor, serial: &str) -> AppResult<UnitHistory> {
    let view = get(db, actor, serial).await?;
    let unit = unit::Entity::find()
        .filter(unit::Column::Serial.eq(&view.serial))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("no unit"))?;
    let mut rmas = rma::Entity::find().filter(
        sea_orm::Condition::any()
            .add(rma::Column::UnitId.eq(unit.id))
            .add(rma::Column::ReturnedUnitId.eq(unit.id))
            .add(rma::Column::ReplacementUnitId.eq(unit.id)),
    );
    if let Some(org) = actor.organization_scope() {
        rmas = rmas.filter(rma::Column::OrganizationId.eq(org));
    }
    let rmas = views::rma_views(db, rmas.order_by_desc(rma::Column::Id).all(db).await?).await?;
    let mut rows = slot_history::Entity::find().filter(slot_history::Column::UnitId.eq(unit.id));
    if let Some(org) = actor.organization_scope() {
        // Only its stays in this customer's racks: a unit may have served another customer before.
        let own_clusters = cluster::Entity::find()
            .select_only()
            .column(cluster::Column::Id)
            .filter(cluster::Column::SiteId.in_subquery(site_ids_of(org)));
        let own_slots = slot::Entity::find()
            .select_only()
            .column(slot::Column::Id)
            .filter(slot::Column::ClusterId.in_subquery(own_clusters.into_query()));
        rows = rows.filter(slot_history::Column::SlotId.in_subquery(own_slots.into_query()));
    }
    let rows = rows.order_by_asc(slot_history::Column::Id).all(db).await?;
    let components = unit::Entity::find()
        .filter(unit::Column::ParentUnitId.eq(unit.id))
        .order_by_asc(unit::Column::Serial)
        .all(db)
        .await?;
    Ok(UnitHistory {
        unit_id: unit.id,
        unit: view,
        rmas,
        slots: stays(db, rows).await?,
        components: views::unit_views(db, components, actor.organization_scope()).await?,
        flags: crate::services::genealogy::unit_flags(db, unit.id, actor.organization_scope()).await?,
    })
}

/// A slot and every unit that sat in it.
#[derive(Debug, serde::Serialize)]
pub struct SlotHistory {
    pub name: String,
    pub cluster: String,
    pub site: String,
    pub hostname: Option<String>,
    pub stays: Vec<SlotStay>,
    pub flags: Vec<crate::services::genealogy::Flag>,
}

pub async fn slot_history(db: &DatabaseConnection, actor: &Actor, slot_id: Uuid) -> AppResult<SlotHistory> {
    let not_found = || AppError::not_found("no such slot");
    let slot = slot::Entity::find_by_id(slot_id).one(db).await?.ok_or_else(not_found)?;
    let cluster = cluster::Entity::find_by_id(slot.cluster_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let site = site::Entity::find_by_id(cluster.site_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if actor
        .organization_scope()
        .is_some_and(|org| org != site.organization_id)
    {
        return Err(not_found());
    }
    let rows = slot_history::Entity::find()
        .filter(slot_history::Column::SlotId.eq(slot.id))
        .order_by_asc(slot_history::Column::Id)
        .all(db)
        .await?;
    Ok(SlotHistory {
        flags: crate::services::genealogy::slot_flags(db, slot.id, chrono::Utc::now()).await?,
        name: slot.name,
        cluster: cluster.name,
        site: site.code,
        hostname: slot.hostname,
        stays: stays(db, rows).await?,
    })
}
