//! Units anywhere and the spare stock of the depots.
use crate::domain::{Condition, Location, Role, Serial};
use crate::entities::{depot, part, site, unit};
use crate::error::{AppError, AppResult};
use crate::services::views::{self, UnitView};
use crate::services::{Actor, Page, page_limit, paginate};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select};
use serde::Deserialize;

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

async fn page(db: &DatabaseConnection, query: Select<unit::Entity>, limit: u64) -> AppResult<Page<UnitView>> {
    let rows = query
        .order_by_asc(unit::Column::Serial)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = paginate(rows, limit, |u| u.serial.clone(), |rows| rows);
    Ok(Page {
        items: views::unit_views(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// Units anywhere, by serial; a customer's technician sees only units at their organization's sites.
pub async fn list(db: &DatabaseConnection, actor: &Actor, filter: UnitFilter) -> AppResult<Page<UnitView>> {
    let limit = page_limit(filter.limit)?;
    let mut query = filtered(unit::Entity::find(), &filter)?;
    if let Some(org) = actor.organization_scope() {
        let own_sites = site::Entity::find()
            .select_only()
            .column(site::Column::Id)
            .filter(site::Column::OrganizationId.eq(org));
        query = query.filter(unit::Column::SiteId.in_subquery(own_sites.into_query()));
    }
    page(db, query, limit).await
}

/// Serviceable units on the depots' shelves: new or refurbished, loose, at a depot.
pub async fn stock(db: &DatabaseConnection, actor: &Actor, filter: UnitFilter) -> AppResult<Page<UnitView>> {
    actor.require(&[Role::DepotTech, Role::FieldEngineer, Role::Admin], "see depot stock")?;
    let limit = page_limit(filter.limit)?;
    let query = filtered(unit::Entity::find(), &filter)?
        .filter(unit::Column::Location.eq(Location::Depot.as_str()))
        .filter(unit::Column::Condition.is_in([Condition::New.as_str(), Condition::Refurbished.as_str()]))
        .filter(unit::Column::ParentUnitId.is_null());
    page(db, query, limit).await
}

/// One unit by serial, if `actor` may see it.
pub async fn get(db: &DatabaseConnection, actor: &Actor, serial: &str) -> AppResult<UnitView> {
    let not_found = || AppError::not_found(format!("no unit {}", serial.trim()));
    let serial = Serial::parse(serial).map_err(|_| not_found())?;
    let mut query = unit::Entity::find().filter(unit::Column::Serial.eq(serial.as_str()));
    if let Some(org) = actor.organization_scope() {
        let own_sites = site::Entity::find()
            .select_only()
            .column(site::Column::Id)
            .filter(site::Column::OrganizationId.eq(org));
        query = query.filter(unit::Column::SiteId.in_subquery(own_sites.into_query()));
    }
    let unit = query.one(db).await?.ok_or_else(not_found)?;
    Ok(views::unit_views(db, vec![unit]).await?.remove(0))
}
