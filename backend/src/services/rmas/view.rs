//! How an RMA is shown: its answer and page (with shipments, the depot record, flags and what the
//! viewer may do next) and the email a transition queued.
use crate::domain::lifecycle::{self, Status};
use crate::domain::sla::Entered;
use crate::domain::{RmaNumber, Severity};
use crate::entities::{event, organization, part, rma, shipment, site, tracking_scan, unit};
use crate::error::{AppError, AppResult};
use crate::mail::outbox;
use crate::services::genealogy::{self, Flag};
use crate::services::views::{self, NextTransition, RmaView};
use crate::services::{Actor, repairs, stock};
use chrono::Utc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryFilter,
    QueryOrder, QueryResult, QueryTrait, Select, SelectA, SelectB, SelectC,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// The RMA numbered `number` as `actor` may see it; another organization's RMA is "not found".
fn visible(actor: &Actor, number: &str) -> AppResult<Select<rma::Entity>> {
    let number = RmaNumber::parse(number).ok_or_else(|| not_found(number))?;
    let mut query = rma::Entity::find().filter(rma::Column::Number.eq(number.as_str()));
    if let Some(org) = actor.organization_scope() {
        query = query.filter(rma::Column::OrganizationId.eq(org));
    }
    Ok(query)
}

fn not_found(number: &str) -> AppError {
    AppError::not_found(format!("no RMA {}", number.trim()))
}

/// Finds an RMA by number as `actor` may see it.
pub async fn find_visible(db: &impl ConnectionTrait, actor: &Actor, number: &str) -> AppResult<rma::Model> {
    visible(actor, number)?.one(db).await?.ok_or_else(|| not_found(number))
}

/// An RMA with its site, organization and watchers, as a transition reads it first.
pub struct Placed {
    pub rma: rma::Model,
    pub site: site::Model,
    pub organization: organization::Model,
    /// The emails of the RMA's watchers who may still be told.
    pub watchers: Vec<String>,
    /// Its flags, as `actor` may see them (they rest on its unit, slot and opening, which no
    /// transition changes).
    pub flags: Vec<Flag>,
    /// Its own units (the failed one, the one returned and the replacement), each once, with its
    /// part.
    pub units: Vec<(unit::Model, part::Model)>,
}

impl Placed {
    /// What the RMA's answer needs of what was read with it.
    pub(super) fn at_hand(self) -> AtHand {
        AtHand {
            organization: Some(self.organization),
            flags: Some(self.flags),
        }
    }
}

/// [`find_visible`] with the RMA's site, organization, watchers, flags and own units, in one read.
pub(super) async fn find_visible_placed(db: &impl ConnectionTrait, actor: &Actor, number: &str) -> AppResult<Placed> {
    let mut query = visible(actor, number)?
        .find_also_related(site::Entity)
        .find_also_related(organization::Entity)
        .into_query();
    query.expr_as(outbox::watchers_emails(db.get_database_backend()), outbox::WATCHERS);
    query.expr_as(earlier_rmas(db, actor), genealogy::EARLIER);
    join_own_units(&mut query);
    // A row per unit of the RMA's own (one, two or three), the RMA's columns the same in each.
    let rows = db.query_all(&query).await?;
    let Some(row) = rows.first() else {
        return Err(not_found(number));
    };
    // Each model's columns carry the prefix sea-orm gives them in a select of several.
    let (rma, site, organization) = (
        rma::Model::from_query_result(row, SelectA.as_str())?,
        site::Model::from_query_result_optional(row, SelectB.as_str())?,
        organization::Model::from_query_result_optional(row, SelectC.as_str())?,
    );
    let (Some(site), Some(organization)) = (site, organization) else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "{number}: its site or organization is missing"
        )));
    };
    let mut units = Vec::with_capacity(rows.len());
    for row in &rows {
        let unit = unit::Model::from_query_result_optional(row, OWN_UNIT)?;
        let part = part::Model::from_query_result_optional(row, OWN_PART)?;
        units.extend(unit.zip(part));
    }
    Ok(Placed {
        flags: flags_in(row, &rma)?,
        watchers: outbox::watchers_in(row)?,
        rma,
        site,
        organization,
        units,
    })
}

/// The prefixes of the RMA's own units' and their parts' columns, after sea-orm's `A_`, `B_` and
/// `C_` of the RMA, its site and organization.
const OWN_UNIT: &str = "D_";
const OWN_PART: &str = "E_";

/// Joins the RMA's own units (failed, returned, replacement: one join, a row each, rather than a
/// join each, which PostgreSQL takes milliseconds to plan) and their parts to the RMA's read.
fn join_own_units(query: &mut SelectStatement) {
    let (own, own_part) = (Alias::new("own"), Alias::new("own_part"));
    let of_rma = [
        rma::Column::UnitId,
        rma::Column::ReturnedUnitId,
        rma::Column::ReplacementUnitId,
    ]
    .map(|column| Expr::col((rma::Entity, column)));
    query.join_as(
        JoinType::LeftJoin,
        unit::Entity,
        own.clone(),
        Expr::col((own.clone(), unit::Column::Id)).is_in(of_rma),
    );
    query.join_as(
        JoinType::LeftJoin,
        part::Entity,
        own_part.clone(),
        Expr::col((own_part.clone(), part::Column::Id)).equals((own.clone(), unit::Column::PartId)),
    );
    select_prefixed::<unit::Entity>(query, &own, OWN_UNIT);
    select_prefixed::<part::Entity>(query, &own_part, OWN_PART);
}

/// Selects `E`'s columns from the table joined as `table`, named as `from_query_result` with
/// `prefix` reads them.
fn select_prefixed<E: EntityTrait>(query: &mut SelectStatement, table: &Alias, prefix: &str) {
    for column in E::Column::iter() {
        query.expr_as(
            column.select_as(Expr::col((table.clone(), column))),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
    }
}

/// The RMAs the outer RMA's flags rest on, as `actor` may see them.
fn earlier_rmas(db: &impl ConnectionTrait, actor: &Actor) -> Expr {
    genealogy::earlier_rmas(db.get_database_backend(), actor.organization_scope().is_some())
}

/// The flags of `rma`, from the [`earlier_rmas`] read with it in `row`.
fn flags_in(row: &QueryResult, rma: &rma::Model) -> Result<Vec<Flag>, sea_orm::DbErr> {
    let earlier: Option<String> = row.try_get("", genealogy::EARLIER)?;
    Ok(genealogy::flags_from(&rma.number, rma.created_at, earlier.as_deref()))
}

/// One RMA with its shipments and what `actor` may do next.
pub async fn get(db: &DatabaseConnection, actor: &Actor, number: &str) -> AppResult<RmaView> {
    // The RMA with its flags in one read.
    let mut query = visible(actor, number)?.into_query();
    query.expr_as(earlier_rmas(db, actor), genealogy::EARLIER);
    let row = db.query_one(&query).await?.ok_or_else(|| not_found(number))?;
    let rma = rma::Model::from_query_result(&row, "")?;
    let at_hand = AtHand {
        flags: Some(flags_in(&row, &rma)?),
        ..AtHand::default()
    };
    detail(db, actor, rma, at_hand).await
}

/// What an RMA's answer shows that its caller may have read already.
#[derive(Default)]
pub(super) struct AtHand {
    pub organization: Option<organization::Model>,
    pub flags: Option<Vec<Flag>>,
}

/// The RMA's full answer; its organization and flags are read unless they are at hand.
pub(super) async fn detail(
    db: &impl ConnectionTrait,
    actor: &Actor,
    rma: rma::Model,
    at_hand: AtHand,
) -> AppResult<RmaView> {
    let AtHand { organization, flags } = at_hand;
    let status: Status = rma
        .status
        .parse()
        .map_err(|e: String| AppError::Internal(anyhow::anyhow!(e)))?;
    let organization_id = rma.organization_id;
    // Three independent reads: side by side on the pool (a connection each), one after another in
    // a transaction (the answer to a change of references).
    let flags = async {
        match flags {
            Some(flags) => Ok(flags),
            None => Ok::<_, AppError>(genealogy::rma_flags(db, &rma, actor.organization_scope()).await?),
        }
    };
    // Nothing is recorded at the depot before the unit arrives (or the customer keeps it).
    let repair = async {
        match status.is_at_depot_or_closed() {
            true => repairs::record_of(db, &rma).await,
            false => Ok(None),
        }
    };
    let shipments = async { Ok::<_, AppError>(with_shipments(db, rma.clone(), organization).await?) };
    let (flags, repair, mut view) = tokio::try_join!(flags, repair, shipments)?;
    view.flags = Some(flags);
    view.repair = repair;
    view.next_transitions = Some(NextTransition::for_role(status, actor.role, view.keep_your_drive));
    if view.severity == Severity::Sev1.as_str() && view.closed_at.is_none() {
        view.on_call = crate::services::oncall::on_call(db, organization_id, Utc::now()).await?;
    }
    Ok(view)
}

/// The RMA's view with its shipments, as its page, its API answer and its emails show it.
async fn with_shipments(
    db: &impl ConnectionTrait,
    rma: rma::Model,
    organization: Option<organization::Model>,
) -> Result<RmaView, sea_orm::DbErr> {
    // Only a row that ships makes a shipment: an RMA that never entered the status of one has none
    // (and one whose statuses do not read is looked up).
    let shipping: Vec<Status> = lifecycle::shipping_statuses().collect();
    let may_have_shipped = Entered::parse(&rma.status_entered).is_none_or(|entered| entered.first(&shipping).is_some());
    let shipments = match may_have_shipped {
        true => {
            shipment::Entity::find()
                .filter(shipment::Column::RmaId.eq(rma.id))
                .find_with_related(tracking_scan::Entity)
                .order_by_asc(shipment::Column::Id)
                .order_by_asc(tracking_scan::Column::At)
                .all(db)
                .await?
        }
        false => vec![],
    };
    // Only an approved RMA holds a spare: the page and API answers skip the lookup otherwise.
    let reserved = match rma.status == Status::Approved.as_str() {
        true => stock::reservation_of(db, rma.id).await?,
        false => None,
    };
    let orgs = match organization {
        Some(org) => HashMap::from([(org.id, org)]),
        None => views::load_map::<organization::Entity>(db, [rma.organization_id]).await?,
    };
    let mut view = views::rma_views_among(db, vec![rma], orgs).await?.remove(0);
    view.shipments = Some(views::shipment_views(db, shipments).await?);
    view.reserved = reserved.map(|(unit, depot)| views::ReservedSpare {
        serial: unit.serial,
        depot,
        condition: unit.condition,
    });
    Ok(view)
}

/// The message a transition queued, composed from the RMA as it is now (the dispatcher calls this
/// when it sends, so the request that made the transition never renders templates).
pub async fn compose_notice(
    db: &impl ConnectionTrait,
    rma_id: Uuid,
    event_id: Uuid,
    template: &str,
    base_url: &str,
) -> anyhow::Result<crate::mail::compose::Composed> {
    let rma = rma::Entity::find_by_id(rma_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("RMA {rma_id} is gone"))?;
    let fields = event::Entity::find_by_id(event_id)
        .one(db)
        .await?
        .map_or(Value::Null, |e| e.fields);
    let view = with_shipments(db, rma, None).await?;
    let kind_part = view.replacement_part.as_deref().unwrap_or(&view.part);
    let kind = part::Entity::find()
        .filter(part::Column::Number.eq(kind_part))
        .one(db)
        .await?
        .map(|p| p.kind)
        .unwrap_or_default();
    let shipment = view.shipments.iter().flatten().rfind(|s| s.direction == "outbound");
    let ctx = json!({
        "rma": view,
        "link": format!("{base_url}/rmas/{}", view.number),
        "base_url": base_url,
        "event": {"fields": fields},
        "shipment": shipment,
        "swap_steps": crate::domain::swap::swap_steps(&kind),
        "return_steps": crate::domain::swap::RETURN_STEPS,
    });
    crate::mail::compose::compose(template, &ctx)
}
