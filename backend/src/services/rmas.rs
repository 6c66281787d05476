//! Opening, listing, reading and moving RMAs. [`transition`] is the only code that writes an RMA's status.
use crate::db::begin_write;
use crate::domain::carrier::Carrier;
use crate::domain::lifecycle::{self, Field, Notice, Status, Transition, UnitEffect};
use crate::domain::policy::{self, Facts, PartFacts, ReplacementKind, TestResult, UnitFacts};
use crate::domain::{Condition, Location, RmaNumber, Role, Serial, Severity};
use crate::entities::{
    depot, event, part, repair_record, rma, rma_counter, rma_watcher, shipment, site, slot, slot_history, unit,
};
use crate::error::{AppError, AppResult};
use crate::mail::outbox;
use crate::services::views::{self, EventView, NextTransition, RmaView, load_map, names_of};
use crate::services::{Actor, Page, page_limit, paginate, parse_cursor};
use crate::services::{history, repairs, stock};
use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition as Where, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Unchanged,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// `POST /api/v1/rmas`: open a case.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OpenRma {
    /// Site code, e.g. `cw-ord1`.
    pub site: String,
    /// Serial of the failed unit, in service at that site.
    pub serial: String,
    /// `sev1` .. `sev4`.
    pub severity: String,
    pub symptom: String,
    /// CS ticket, engineering ticket, chat thread link: names to strings.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub external_refs: Option<Value>,
}

/// `POST /api/v1/rmas/{number}/transitions`: the target status, the version read, and the fields it needs.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TransitionRequest {
    pub to: String,
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_code: Option<String>,
    /// `whole_unit` or `fru`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_part: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_serial: Option<String>,
    /// RFC 3339; defaults to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_serial: Option<String>,
    /// Depot code the failed unit ships to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_return_reference: Option<String>,
    /// Serials taken from the depot's stock; may be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_consumed: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_results: Option<Vec<TestResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Boxes in the shipment (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    /// The sealed bag a unit holding customer data was packed in (at the pull; checked at receiving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bag_number: Option<String>,
    /// Components taken out of the repaired unit; each becomes a failed unit at the depot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_removed: Option<Vec<RemovedPart>>,
    /// `clear`, `purge` or `destroy` (NIST SP 800-88); required to restock a unit holding media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitization_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitization_certificate: Option<String>,
    /// At approval: the customer keeps the failed drive; the RMA later closes on
    /// `destruction_certificate` instead of a return shipment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_your_drive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destruction_certificate: Option<String>,
    /// Codes from the findings catalog (`GET /api/v1/finding-codes`), with the free-text `finding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_codes: Option<Vec<String>>,
    /// Technician time this step took, in minutes (0 to 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labor_minutes: Option<i32>,
}

/// A component removed in a repair: a unit known inside the repaired one, or a new serial with its
/// part number.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RemovedPart {
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

impl TransitionRequest {
    /// A text field, trimmed; empty counts as absent.
    pub fn text(&self, field: Field) -> Option<&str> {
        let value = match field {
            Field::Note => &self.note,
            Field::Resolution => &self.resolution,
            Field::FaultCode => &self.fault_code,
            Field::ReplacementKind => &self.replacement_kind,
            Field::ReplacementPart => &self.replacement_part,
            Field::ReplacementSerial => &self.replacement_serial,
            Field::Carrier => &self.carrier,
            Field::TrackingNumber => &self.tracking_number,
            Field::SpareSerial => &self.spare_serial,
            Field::InstalledSerial => &self.installed_serial,
            Field::PulledSerial => &self.pulled_serial,
            Field::Depot => &self.depot,
            Field::ScannedSerial => &self.scanned_serial,
            Field::Finding => &self.finding,
            Field::Vendor => &self.vendor,
            Field::VendorReference => &self.vendor_reference,
            Field::VendorReturnReference => &self.vendor_return_reference,
            Field::Reason => &self.reason,
            Field::BagNumber => &self.bag_number,
            Field::SanitizationMethod => &self.sanitization_method,
            Field::SanitizationCertificate => &self.sanitization_certificate,
            Field::DestructionCertificate => &self.destruction_certificate,
            Field::DeliveredAt
            | Field::KeepYourDrive
            | Field::FindingCodes
            | Field::LaborMinutes
            | Field::PartsConsumed
            | Field::PartsRemoved
            | Field::TestResults
            | Field::Packages
            | Field::WeightKg => &None,
        };
        value.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// Whether a required field is given.
    pub fn has(&self, field: Field) -> bool {
        match field {
            Field::DeliveredAt => self.delivered_at.is_some(),
            Field::PartsConsumed => self.parts_consumed.is_some(),
            Field::PartsRemoved => self.parts_removed.is_some(),
            Field::TestResults => self.test_results.as_ref().is_some_and(|t| !t.is_empty()),
            Field::Packages => self.packages.is_some(),
            Field::WeightKg => self.weight_kg.is_some(),
            Field::KeepYourDrive => self.keep_your_drive.is_some(),
            Field::FindingCodes => self.finding_codes.is_some(),
            Field::LaborMinutes => self.labor_minutes.is_some(),
            other => self.text(other).is_some(),
        }
    }

    /// The fields this request set, as recorded in the event.
    fn recorded_fields(&self, row: &Transition) -> Value {
        let all = serde_json::to_value(self).unwrap_or_default();
        let keep: Vec<&str> = row.required.iter().chain(row.optional).map(|f| f.as_str()).collect();
        match all {
            Value::Object(map) => Value::Object(map.into_iter().filter(|(k, _)| keep.contains(&k.as_str())).collect()),
            _ => json!({}),
        }
    }
}

/// Filters of `GET /api/v1/rmas`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct RmaFilter {
    pub status: Option<String>,
    /// Site code.
    pub site: Option<String>,
    pub severity: Option<String>,
    /// Organization code.
    pub organization: Option<String>,
    /// Return depot code.
    pub depot: Option<String>,
    /// An RMA number or a serial (failed, returned or replacement unit).
    pub q: Option<String>,
    /// `newest` (default) or `oldest` first.
    pub sort: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

fn parse<T: std::str::FromStr<Err = String>>(value: &str) -> AppResult<T> {
    value.trim().parse().map_err(AppError::invalid)
}

fn serial(raw: &str) -> AppResult<Serial> {
    Serial::parse(raw).map_err(AppError::invalid)
}

/// Finds an RMA by number as `actor` may see it; another organization's RMA is "not found".
pub async fn find_visible(db: &impl ConnectionTrait, actor: &Actor, number: &str) -> AppResult<rma::Model> {
    let not_found = || AppError::not_found(format!("no RMA {}", number.trim()));
    let number = RmaNumber::parse(number).ok_or_else(not_found)?;
    let mut query = rma::Entity::find().filter(rma::Column::Number.eq(number.as_str()));
    if let Some(org) = actor.organization_scope() {
        query = query.filter(rma::Column::OrganizationId.eq(org));
    }
    query.one(db).await?.ok_or_else(not_found)
}

/// Opens an RMA in `reported`, numbered gap-free within its year.
#[tracing::instrument(skip(db, input), fields(actor = %actor.email))]
pub async fn open(db: &DatabaseConnection, actor: &Actor, input: OpenRma) -> AppResult<RmaView> {
    let txn = begin_write(db).await?;
    let view = open_in(&txn, actor, input).await?;
    txn.commit().await?;
    metrics::counter!("depot_rmas_opened_total").increment(1);
    Ok(view)
}

/// Opens an RMA inside the caller's write transaction.
pub async fn open_in(txn: &DatabaseTransaction, actor: &Actor, input: OpenRma) -> AppResult<RmaView> {
    // An integration opens one from a signal it reports (a BMC event); the API refuses it otherwise.
    actor.require(
        &[Role::FieldEngineer, Role::DcTech, Role::Admin, Role::Integration],
        "open an RMA",
    )?;
    let severity: Severity = parse(&input.severity)?;
    let symptom = input.symptom.trim();
    if symptom.is_empty() {
        return Err(AppError::invalid("symptom is required: what failed and how it shows"));
    }
    let external_refs = external_refs(input.external_refs)?;
    let serial = serial(&input.serial)?;
    let site_code = input.site.trim();
    let mut site_query = site::Entity::find().filter(site::Column::Code.eq(site_code));
    if let Some(org) = actor.organization_scope() {
        site_query = site_query.filter(site::Column::OrganizationId.eq(org));
    }
    let site = site_query
        .one(txn)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown site `{site_code}`")))?;
    // One answer whether the serial is unknown or elsewhere: which serials exist at other
    // customers' sites is not for a customer to learn.
    let unit = unit::Entity::find()
        .filter(unit::Column::Serial.eq(serial.as_str()))
        .filter(unit::Column::Location.eq(Location::Site.as_str()))
        .filter(unit::Column::SiteId.eq(site.id))
        .one(txn)
        .await?
        .ok_or_else(|| {
            AppError::invalid(format!(
                "{} is not a unit in service at site {}",
                serial.as_str(),
                site.code
            ))
        })?;
    let slot = match unit.slot_id {
        Some(id) => slot::Entity::find_by_id(id).one(txn).await?,
        None => None,
    };

    let now = Utc::now();
    let number = next_number(txn, now.year()).await?;
    let id = Uuid::now_v7();
    rma::ActiveModel {
        id: Set(id),
        number: Set(number.as_str().to_string()),
        organization_id: Set(site.organization_id),
        site_id: Set(site.id),
        cluster_id: Set(slot.as_ref().map(|s| s.cluster_id)),
        slot_id: Set(slot.as_ref().map(|s| s.id)),
        unit_id: Set(unit.id),
        part_id: Set(unit.part_id),
        returned_unit_id: Set(unit.id),
        severity: Set(severity.as_str().into()),
        symptom: Set(symptom.to_string()),
        status: Set(Status::Reported.as_str().into()),
        version: Set(1),
        refs_text: Set(refs_text(&external_refs)),
        recommendation: Set(None),
        dead_on_arrival_at: Set(None),
        external_refs: Set(external_refs),
        fault_code: Set(None),
        resolution: Set(None),
        replacement_kind: Set(None),
        replacement_part_id: Set(None),
        replacement_unit_id: Set(None),
        return_depot_id: Set(site.default_depot_id),
        created_by: Set(actor.user_id),
        created_at: Set(now),
        updated_at: Set(now),
        status_changed_at: Set(now),
        closed_at: Set(None),
        bag_number: Set(None),
        keep_your_drive: Set(false),
        destruction_certificate: Set(None),
        labor_minutes: Set(0),
    }
    .insert(txn)
    .await?;
    rma_watcher::ActiveModel {
        rma_id: Set(id),
        user_id: Set(actor.user_id),
    }
    .insert(txn)
    .await?;
    let fields =
        json!({"site": site.code, "serial": serial.as_str(), "severity": severity.as_str(), "symptom": symptom});
    record_event(txn, id, actor, None, Status::Reported, None, fields, now).await?;
    let created = rma::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("RMA vanished"))?;
    Ok(views::rma_views(txn, vec![created]).await?.remove(0))
}

/// The references' values, upper-cased and joined, for search.
fn refs_text(refs: &Value) -> String {
    let values: Vec<String> = refs
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .map(str::to_uppercase)
        .collect();
    values.join(" ")
}

fn external_refs(raw: Option<Value>) -> AppResult<Value> {
    match raw {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(map)) => {
            if let Some((k, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                return Err(AppError::invalid(format!(
                    "external_refs.{k} must be a string (a ticket id or a link)"
                )));
            }
            Ok(Value::Object(map))
        }
        Some(_) => Err(AppError::invalid("external_refs must be an object of names to strings")),
    }
}

/// Takes the next number of `year`. The counter row stays locked until the transaction ends, so
/// concurrent opens queue behind it and a rolled-back open gives its number back.
async fn next_number(txn: &DatabaseTransaction, year: i32) -> AppResult<RmaNumber> {
    rma_counter::Entity::insert(rma_counter::ActiveModel {
        year: Set(year),
        last_number: Set(0),
    })
    .on_conflict_do_nothing_on([rma_counter::Column::Year])
    .exec(txn)
    .await?;
    let bump = Query::update()
        .table(rma_counter::Entity)
        .value(
            rma_counter::Column::LastNumber,
            Expr::col(rma_counter::Column::LastNumber).add(1),
        )
        .and_where(Expr::col(rma_counter::Column::Year).eq(year))
        .returning_col(rma_counter::Column::LastNumber)
        .to_owned();
    let row = txn
        .query_one(&bump)
        .await?
        .ok_or_else(|| anyhow::anyhow!("RMA counter row for {year} is missing"))?;
    let last: i64 = row.try_get("", "last_number")?;
    Ok(RmaNumber::new(year, last))
}

/// A LIKE pattern matching text that contains `text` as typed: `%`, `_` and the escape character
/// itself are literal, not wildcards.
fn containing(text: &str) -> sea_orm::sea_query::LikeExpr {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    sea_orm::sea_query::LikeExpr::new(escaped).escape('\\')
}

/// Lists RMAs visible to `actor`, newest first.
pub async fn list(db: &DatabaseConnection, actor: &Actor, filter: RmaFilter) -> AppResult<Page<RmaView>> {
    let limit = page_limit(filter.limit)?;
    let cursor = parse_cursor(filter.cursor.as_deref())?;
    let mut query = rma::Entity::find();
    if let Some(org) = actor.organization_scope() {
        query = query.filter(rma::Column::OrganizationId.eq(org));
    }
    if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(rma::Column::Status.eq(parse::<Status>(status)?.as_str()));
    }
    if let Some(severity) = filter.severity.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(rma::Column::Severity.eq(parse::<Severity>(severity)?.as_str()));
    }
    // Codes become ids first: an equality on a known value lets the planner pick the composite
    // index (a subquery made SQLite walk a whole site, a second at a million RMAs). An unknown
    // code matches nothing.
    let nothing = Uuid::nil();
    if let Some(code) = filter.site.as_deref().filter(|s| !s.is_empty()) {
        let id = site::Entity::find()
            .filter(site::Column::Code.eq(code.trim()))
            .one(db)
            .await?;
        query = query.filter(rma::Column::SiteId.eq(id.map_or(nothing, |s| s.id)));
    }
    if let Some(code) = filter.organization.as_deref().filter(|s| !s.is_empty()) {
        use crate::entities::organization;
        let id = organization::Entity::find()
            .filter(organization::Column::Code.eq(code.trim()))
            .one(db)
            .await?;
        query = query.filter(rma::Column::OrganizationId.eq(id.map_or(nothing, |o| o.id)));
    }
    if let Some(code) = filter.depot.as_deref().filter(|s| !s.is_empty()) {
        let id = depot::Entity::find()
            .filter(depot::Column::Code.eq(code.trim().to_uppercase()))
            .one(db)
            .await?;
        query = query.filter(rma::Column::ReturnDepotId.eq(id.map_or(nothing, |d| d.id)));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // An RMA number; else a serial of any of the RMA's units; else part of an external
        // reference (the only search that cannot use an index, so it comes last).
        let serial_ids: Vec<Uuid> = match Serial::parse(q) {
            Ok(serial) => {
                unit::Entity::find()
                    .select_only()
                    .column(unit::Column::Id)
                    .filter(unit::Column::Serial.eq(serial.as_str()))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            Err(_) => vec![],
        };
        let any = match RmaNumber::parse(q) {
            Some(number) => Where::any().add(rma::Column::Number.eq(number.as_str())),
            None if !serial_ids.is_empty() => Where::any()
                .add(rma::Column::UnitId.is_in(serial_ids.clone()))
                .add(rma::Column::ReturnedUnitId.is_in(serial_ids.clone()))
                .add(rma::Column::ReplacementUnitId.is_in(serial_ids)),
            None => Where::any().add(rma::Column::RefsText.like(containing(&q.to_uppercase()))),
        };
        query = query.filter(any);
    }
    let oldest_first = match filter.sort.as_deref().unwrap_or("newest") {
        "newest" | "" => false,
        "oldest" => true,
        other => return Err(AppError::invalid(format!("sort `{other}`: use newest or oldest"))),
    };
    query = match (cursor, oldest_first) {
        (Some(c), true) => query.filter(rma::Column::Id.gt(c)).order_by_asc(rma::Column::Id),
        (Some(c), false) => query.filter(rma::Column::Id.lt(c)).order_by_desc(rma::Column::Id),
        (None, true) => query.order_by_asc(rma::Column::Id),
        (None, false) => query.order_by_desc(rma::Column::Id),
    };
    let rows = query.limit(limit + 1).all(db).await?;
    let page = paginate(rows, limit, |r| r.id.to_string(), |rows| rows);
    Ok(Page {
        items: views::rma_views(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// One RMA with its shipments and what `actor` may do next.
pub async fn get(db: &DatabaseConnection, actor: &Actor, number: &str) -> AppResult<RmaView> {
    let rma = find_visible(db, actor, number).await?;
    detail(db, actor, rma).await
}

async fn detail(db: &impl ConnectionTrait, actor: &Actor, rma: rma::Model) -> AppResult<RmaView> {
    let status: Status = parse(&rma.status)?;
    let organization_id = rma.organization_id;
    // Three independent reads, side by side (each on a connection of its own outside a transaction).
    let flags =
        async { Ok::<_, AppError>(crate::services::genealogy::rma_flags(db, &rma, actor.organization_scope()).await?) };
    // Nothing is recorded at the depot before the unit arrives (or the customer keeps it).
    let repair = async {
        match status.is_at_depot_or_closed() {
            true => repairs::record_of(db, rma.id, rma.labor_minutes).await,
            false => Ok(None),
        }
    };
    let shipments = async { Ok::<_, AppError>(with_shipments(db, rma.clone()).await?) };
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
async fn with_shipments(db: &impl ConnectionTrait, rma: rma::Model) -> Result<RmaView, sea_orm::DbErr> {
    let shipments = shipment::Entity::find()
        .filter(shipment::Column::RmaId.eq(rma.id))
        .order_by_asc(shipment::Column::Id)
        .all(db)
        .await?;
    // Only an approved RMA holds a spare: the page and API answers skip the lookup otherwise.
    let reserved = match rma.status == Status::Approved.as_str() {
        true => stock::reservation_of(db, rma.id).await?,
        false => None,
    };
    let mut view = views::rma_views(db, vec![rma]).await?.remove(0);
    view.shipments = Some(views::shipment_views(db, shipments).await?);
    view.reserved = reserved.map(|(unit, depot)| views::ReservedSpare {
        serial: unit.serial,
        depot,
        condition: unit.condition,
    });
    Ok(view)
}

/// Pagination of `GET .../events` and other id-ordered lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// An RMA's history, oldest first.
pub async fn events(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    page: PageParams,
) -> AppResult<Page<EventView>> {
    let limit = page_limit(page.limit)?;
    let cursor = parse_cursor(page.cursor.as_deref())?;
    let rma = find_visible(db, actor, number).await?;
    let mut query = event::Entity::find().filter(event::Column::RmaId.eq(rma.id));
    if let Some(cursor) = cursor {
        query = query.filter(event::Column::Id.gt(cursor));
    }
    let rows = query.order_by_asc(event::Column::Id).limit(limit + 1).all(db).await?;
    Ok(paginate(
        rows,
        limit,
        |e| e.id.to_string(),
        |rows| rows.into_iter().map(EventView::from).collect(),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn record_event(
    txn: &DatabaseTransaction,
    rma_id: Uuid,
    actor: &Actor,
    from: Option<Status>,
    to: Status,
    note: Option<&str>,
    fields: Value,
    at: DateTime<Utc>,
) -> AppResult<Uuid> {
    let kind = if from.is_some() { "transition" } else { "opened" };
    let note = note.map(str::to_string);
    let entry = history::Entry {
        rma_id,
        kind,
        from,
        to: Some(to),
        actor: Some(actor),
        note,
        fields,
        at,
    };
    Ok(history::append(txn, entry).await?)
}

/// The template of the alert a transition queues when it leaves a shelf below its threshold.
const LOW_STOCK: &str = "low_stock";

/// The units a transition touches, loaded once.
struct Loaded {
    failed: unit::Model,
    returned: unit::Model,
    replacement: Option<unit::Model>,
    by_serial: HashMap<String, unit::Model>,
    facts: HashMap<Uuid, UnitFacts>,
}

/// Moves an RMA along one row of the lifecycle table, in one transaction: the status and version
/// (compare-and-set on `version`), the units, shipments and repair records, the event and the queued
/// notifications commit together or not at all.
#[tracing::instrument(skip(db, req), fields(actor = %actor.email, to = %req.to))]
pub async fn transition(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    req: TransitionRequest,
) -> AppResult<RmaView> {
    // What the checks read is read before the write lock, which is held only for the writes and
    // the reads that race with them: the RMA is re-checked at the same version under the lock
    // (each change bumps it), and the rest is reference data or settings a moment old.
    let rma = find_visible(db, actor, number).await?;
    let from: Status = parse(&rma.status)?;
    let to: Status = parse(&req.to)?;
    let row = lifecycle::authorize(from, to, actor.role, rma.keep_your_drive, |f| req.has(f))?;
    if req.version != rma.version {
        return Err(AppError::VersionConflict(format!(
            "{} is at version {}, not {}; reload it and try again",
            rma.number, rma.version, req.version
        )));
    }
    let uses = |f: Field| row.required.contains(&f) || row.optional.contains(&f);
    let labor_minutes = req.labor_minutes.filter(|_| uses(Field::LaborMinutes));
    if labor_minutes.is_some_and(|m| !(0..=repairs::MAX_LABOR_MINUTES).contains(&m)) {
        return Err(AppError::invalid(format!(
            "labor_minutes must be between 0 and {} (one day)",
            repairs::MAX_LABOR_MINUTES
        )));
    }
    let finding_codes = match (uses(Field::FindingCodes), &req.finding_codes) {
        (true, Some(codes)) => repairs::normalize_codes(codes),
        _ => vec![],
    };
    let unknown_finding_codes = repairs::unknown_codes(db, &finding_codes).await?;

    // Resolve every name the request uses; an unknown one is a 422 naming it.
    let mut serials: Vec<Serial> = Vec::new();
    for field in [
        Field::ReplacementSerial,
        Field::SpareSerial,
        Field::InstalledSerial,
        Field::PulledSerial,
        Field::ScannedSerial,
    ] {
        if let (true, Some(raw)) = (uses(field), req.text(field)) {
            serials.push(serial(raw).map_err(|e| AppError::invalid(format!("{field}: {e}")))?);
        }
    }
    let parts_consumed: Vec<Serial> = match (uses(Field::PartsConsumed), &req.parts_consumed) {
        (true, Some(list)) => list.iter().map(|s| serial(s)).collect::<AppResult<_>>()?,
        _ => vec![],
    };
    serials.extend(parts_consumed.iter().cloned());

    let approving = row.effects.contains(&UnitEffect::RecordDecision);
    let keep_your_drive = match approving {
        true => req.keep_your_drive.unwrap_or(false),
        false => rma.keep_your_drive,
    };
    let replacement_kind: Option<ReplacementKind> = if approving {
        req.text(Field::ReplacementKind).map(parse).transpose()?
    } else {
        rma.replacement_kind.as_deref().map(parse).transpose()?
    };
    let replacement_part = match (approving, req.text(Field::ReplacementPart)) {
        (true, Some(number)) => Some(find_part(db, number).await?),
        (true, None) => None,
        (false, _) => match rma.replacement_part_id {
            Some(id) => part::Entity::find_by_id(id).one(db).await?,
            None => None,
        },
    };
    // The code from the names every view uses; the address is read only where a shipment needs it.
    let return_depot_code = names_of::<depot::Entity>(db, [rma.return_depot_id], |d| d.code.clone())
        .await?
        .remove(&rma.return_depot_id)
        .ok_or_else(|| anyhow::anyhow!("return depot missing"))?;
    let site = site::Entity::find_by_id(rma.site_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("site missing"))?;
    // The depot the request names: where the return ships, or where approval reserves the spare.
    let named_depot = match (uses(Field::Depot), req.text(Field::Depot)) {
        (true, Some(code)) => Some(
            depot::Entity::find()
                .filter(depot::Column::Code.eq(code.to_uppercase()))
                .one(db)
                .await?
                .ok_or_else(|| AppError::invalid(format!("unknown depot `{code}`; depots are CAM and SAC")))?,
        ),
        _ => None,
    };

    let missing_checks = if row.guards.contains(&crate::domain::Guard::MandatoryChecks) {
        crate::services::diagnosis::missing_mandatory(db, &rma).await?
    } else {
        vec![]
    };
    let (recipients, webhook) = match row.notice {
        Some(_) => (
            outbox::recipients(db, rma.id, &site).await?,
            outbox::webhook_of(db, rma.organization_id).await?,
        ),
        None => (vec![], None),
    };

    let txn = begin_write(db).await?;
    let current = rma::Entity::find_by_id(rma.id)
        .select_only()
        .column(rma::Column::Version)
        .into_tuple::<i32>()
        .one(&txn)
        .await?;
    if current != Some(rma.version) {
        return Err(AppError::VersionConflict(format!(
            "{} was changed by someone else; reload it and try again",
            rma.number
        )));
    }
    let loaded = load_units(&txn, &rma, &serials, actor).await?;
    let named: HashMap<String, UnitFacts> = loaded
        .by_serial
        .iter()
        .map(|(s, u)| (s.clone(), loaded.facts[&u.id].clone()))
        .collect();
    let text_serial = |f: Field| req.text(f).map(|s| s.trim().to_uppercase());
    let (replacement_serial, spare_serial, installed_serial, pulled_serial, scanned_serial) = (
        text_serial(Field::ReplacementSerial),
        text_serial(Field::SpareSerial),
        text_serial(Field::InstalledSerial),
        text_serial(Field::PulledSerial),
        text_serial(Field::ScannedSerial),
    );
    let consumed_names: Vec<String> = parts_consumed.iter().map(|s| s.as_str().to_string()).collect();
    let replacement_part_facts = replacement_part.as_ref().map(part_facts);
    let facts = Facts {
        actor_depot: actor.depot_code.as_deref(),
        site: &site.code,
        return_depot: &return_depot_code,
        failed: &loaded.facts[&loaded.failed.id],
        returned: &loaded.facts[&loaded.returned.id],
        replacement_kind,
        replacement_part: replacement_part_facts.as_ref(),
        replacement: loaded.replacement.as_ref().map(|u| &loaded.facts[&u.id]),
        named: &named,
        replacement_serial: replacement_serial.as_deref(),
        spare_serial: spare_serial.as_deref(),
        installed_serial: installed_serial.as_deref(),
        pulled_serial: pulled_serial.as_deref(),
        scanned_serial: scanned_serial.as_deref(),
        parts_consumed: &consumed_names,
        test_results: req.test_results.as_deref().unwrap_or_default(),
        carrier: req.text(Field::Carrier),
        tracking_number: req.text(Field::TrackingNumber),
        packages: req.packages,
        weight_kg: req.weight_kg,
        missing_checks: &missing_checks,
        recorded_bag: rma.bag_number.as_deref(),
        bag_number: req.text(Field::BagNumber),
        sanitization_method: req.text(Field::SanitizationMethod),
        sanitization_certificate: req.text(Field::SanitizationCertificate),
        keep_your_drive,
        unknown_finding_codes: &unknown_finding_codes,
    };
    policy::check_guards(row, &facts)?;

    // The units this transition moves.
    let unit_of = |s: &Option<String>| s.as_ref().and_then(|s| loaded.by_serial.get(s)).cloned();
    let installed = if from == Status::Approved {
        unit_of(&spare_serial)
    } else {
        unit_of(&installed_serial)
    };
    let pulled = match (replacement_kind, &replacement_part) {
        (Some(ReplacementKind::Fru), Some(p)) if p.id != loaded.failed.part_id => unit_of(&pulled_serial),
        _ => Some(loaded.failed.clone()),
    };

    // The unit a shipment takes is locked before the RMA row, whose foreign key to it would
    // otherwise hold a share lock that two racing shipments each wait to upgrade.
    let shipping = match unit_of(&replacement_serial) {
        Some(unit) if row.effects.contains(&UnitEffect::ShipReplacement) => stock::lock_unit(&txn, unit.id).await?,
        _ => None,
    };
    // Compare-and-set the RMA first: a concurrent change makes this a 409 before anything else moves.
    let now = Utc::now();
    let mut changes = rma::ActiveModel {
        status: Set(to.as_str().into()),
        version: Set(rma.version + 1),
        updated_at: Set(now),
        status_changed_at: Set(now),
        closed_at: Set(to.is_end().then_some(now)),
        ..Default::default()
    };
    if let Some(minutes) = labor_minutes {
        changes.labor_minutes = Set(rma.labor_minutes + minutes);
    }
    for effect in row.effects {
        match effect {
            UnitEffect::RecordResolution => changes.resolution = Set(req.text(Field::Resolution).map(Into::into)),
            UnitEffect::RecordDecision => {
                changes.fault_code = Set(req.text(Field::FaultCode).map(Into::into));
                changes.keep_your_drive = Set(keep_your_drive);
                changes.replacement_kind = Set(replacement_kind.map(|k| k.as_str().into()));
                changes.replacement_part_id = Set(match replacement_kind {
                    Some(ReplacementKind::Fru) => replacement_part.as_ref().map(|p| p.id),
                    _ => None,
                });
            }
            UnitEffect::ShipReplacement => {
                changes.replacement_unit_id = Set(unit_of(&replacement_serial).map(|u| u.id))
            }
            UnitEffect::Swap => {
                changes.replacement_unit_id = Set(installed.as_ref().map(|u| u.id));
                if let Some(p) = &pulled {
                    changes.returned_unit_id = Set(p.id);
                }
            }
            UnitEffect::ShipReturn => {
                if let Some(d) = &named_depot {
                    changes.return_depot_id = Set(d.id);
                }
            }
            UnitEffect::RecordBag => {
                if let Some(bag) = req.text(Field::BagNumber) {
                    changes.bag_number = Set(Some(bag.to_uppercase()));
                }
            }
            UnitEffect::CloseKeptDrive => {
                changes.destruction_certificate = Set(req.text(Field::DestructionCertificate).map(Into::into))
            }
            _ => {}
        }
    }
    let updated = rma::Entity::update_many()
        .set(changes)
        .filter(rma::Column::Id.eq(rma.id))
        .filter(rma::Column::Version.eq(rma.version))
        .exec_with_returning(&txn)
        .await?
        .pop()
        .ok_or_else(|| {
            AppError::VersionConflict(format!(
                "{} was changed by someone else; reload it and try again",
                rma.number
            ))
        })?;

    let work = Work {
        txn: &txn,
        rma: &rma,
        actor,
        now,
    };
    // Shelves whose available count this transition changes: checked against their thresholds.
    let mut shelves: Vec<stock::Shelf> = vec![];
    // A reservation lives while the RMA is approved: shipping consumes it, anything else frees it.
    if from == Status::Approved {
        shelves.extend(stock::release(&txn, rma.id).await?);
    }
    let mut reserved: Option<(String, String)> = None;
    let returned_id = pulled
        .as_ref()
        .filter(|_| row.effects.contains(&UnitEffect::Swap))
        .map_or(loaded.returned.id, |u| u.id);
    for effect in row.effects {
        match effect {
            UnitEffect::RecordResolution | UnitEffect::RecordDecision | UnitEffect::RecordBag => {}
            UnitEffect::CloseKeptDrive => {
                work.place(returned_id, Place::loose_at_site(site.id), Some(Condition::Scrapped))
                    .await?;
                let details = json!({
                    "destruction_certificate": req.text(Field::DestructionCertificate),
                    "recorded_by": actor.email,
                });
                work.repair_record(returned_id, "destroyed_by_customer", details)
                    .await?;
            }
            UnitEffect::RecordSanitization => {
                if let Some(method) = req.text(Field::SanitizationMethod) {
                    let details = json!({
                        "method": method.to_lowercase(),
                        "certificate_id": req.text(Field::SanitizationCertificate),
                        "operator": actor.email,
                    });
                    work.repair_record(returned_id, "sanitization", details).await?;
                }
            }
            UnitEffect::ReserveReplacement => {
                let part_id = match (replacement_kind, &replacement_part) {
                    (Some(ReplacementKind::Fru), Some(p)) => p.id,
                    _ => loaded.failed.part_id,
                };
                let depots = stock::depots_in_order(&txn, named_depot.as_ref(), site.default_depot_id).await?;
                match stock::reserve(&txn, rma.id, part_id, &depots).await? {
                    Some((unit, depot)) => {
                        shelves.push((depot.id, unit.part_id));
                        reserved = Some((unit.serial, depot.code));
                    }
                    // Asked for one depot: say so rather than approve with nothing set aside.
                    None if named_depot.is_some() => {
                        return Err(AppError::Conflict(format!(
                            "no spare of this part is left to reserve at {}: every unit there is shipped or \
                             reserved; choose another depot, or leave the depot out to take any",
                            depots[0].code
                        )));
                    }
                    // Nothing on any shelf: approved all the same, the RMA shows nothing reserved.
                    None => {}
                }
            }
            UnitEffect::ShipReplacement => {
                let unit = shipping
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("replacement unresolved"))?;
                let from_depot = actor
                    .depot_id
                    .ok_or_else(|| anyhow::anyhow!("depot tech without depot"))?;
                stock::take_for_shipment(&txn, unit, rma.id, from_depot, now).await?;
                shelves.push((from_depot, unit.part_id));
                work.ship(
                    "outbound",
                    unit.id,
                    &req,
                    depot_address_of(&txn, from_depot).await?,
                    site_address(&site),
                    Some(from_depot),
                )
                .await?;
            }
            UnitEffect::DeliverReplacement => {
                let unit = loaded
                    .replacement
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no replacement"))?;
                work.place(unit.id, Place::loose_at_site(site.id), None).await?;
                work.delivered("outbound", req.delivered_at.unwrap_or(now)).await?;
            }
            UnitEffect::Swap => {
                let installed = installed
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("installed unresolved"))?;
                let pulled = pulled.as_ref().ok_or_else(|| anyhow::anyhow!("pulled unresolved"))?;
                // Free the position first: a slot holds one unit at a time.
                let mut out = Place::loose_at_site(site.id);
                out.replaced_by = Some(installed.id);
                work.place(pulled.id, out, Some(Condition::Failed)).await?;
                let into = Place {
                    location: Location::Site,
                    site_id: Some(site.id),
                    depot_id: None,
                    slot_id: pulled.slot_id,
                    parent_unit_id: pulled.parent_unit_id,
                    replaced_by: None,
                };
                work.place(installed.id, into, None).await?;
                if let Some(slot_id) = pulled.slot_id {
                    slot_history::Entity::update_many()
                        .col_expr(slot_history::Column::RemovedAt, Expr::value(now))
                        .filter(slot_history::Column::SlotId.eq(slot_id))
                        .filter(slot_history::Column::UnitId.eq(pulled.id))
                        .filter(slot_history::Column::RemovedAt.is_null())
                        .exec(&txn)
                        .await?;
                    slot_history::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        slot_id: Set(slot_id),
                        unit_id: Set(installed.id),
                        rma_id: Set(Some(rma.id)),
                        installed_at: Set(now),
                        removed_at: Set(None),
                    }
                    .insert(&txn)
                    .await?;
                }
            }
            UnitEffect::ShipReturn => {
                let depot = named_depot
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("depot unresolved"))?;
                work.place(returned_id, Place::in_transit(), None).await?;
                work.ship(
                    "return",
                    returned_id,
                    &req,
                    site_address(&site),
                    depot_address(depot),
                    Some(depot.id),
                )
                .await?;
            }
            UnitEffect::ReceiveReturn => {
                work.place(
                    returned_id,
                    Place::at_depot(rma.return_depot_id),
                    Some(Condition::Failed),
                )
                .await?;
                work.delivered("return", now).await?;
            }
            UnitEffect::RecordFinding => {
                let details = json!({"finding": req.text(Field::Finding), "codes": finding_codes});
                work.repair_record(returned_id, "finding", details).await?;
            }
            UnitEffect::SendToVendor => {
                work.place(
                    returned_id,
                    Place {
                        location: Location::Vendor,
                        ..Place::in_transit()
                    },
                    None,
                )
                .await?;
                let vendor = req.text(Field::Vendor).unwrap_or_default();
                if req.has(Field::Carrier) {
                    let to_vendor = vendor.to_string();
                    work.ship(
                        repairs::TO_VENDOR,
                        returned_id,
                        &req,
                        depot_address_of(&txn, rma.return_depot_id).await?,
                        to_vendor,
                        Some(rma.return_depot_id),
                    )
                    .await?;
                }
                let details = json!({"vendor": vendor, "vendor_reference": req.text(Field::VendorReference)});
                work.repair_record(returned_id, "vendor_escalation", details).await?;
            }
            UnitEffect::BackFromVendor => {
                work.place(returned_id, Place::at_depot(rma.return_depot_id), None)
                    .await?;
                work.delivered(repairs::TO_VENDOR, now).await?;
                if req.has(Field::Carrier) {
                    let from_vendor = repairs::vendor_visit(&txn, rma.id)
                        .await?
                        .map(|v| v.vendor)
                        .unwrap_or_default();
                    work.ship(
                        repairs::FROM_VENDOR,
                        returned_id,
                        &req,
                        from_vendor,
                        depot_address_of(&txn, rma.return_depot_id).await?,
                        Some(rma.return_depot_id),
                    )
                    .await?;
                    work.delivered(repairs::FROM_VENDOR, now).await?;
                }
                let details = json!({"vendor_return_reference": req.text(Field::VendorReturnReference)});
                work.repair_record(returned_id, "vendor_return", details).await?;
            }
            UnitEffect::ConsumeParts => {
                for serial in &parts_consumed {
                    let part_unit = &loaded.by_serial[serial.as_str()];
                    let taken = unit::Entity::update_many()
                        .col_expr(unit::Column::ParentUnitId, Expr::value(Some(returned_id)))
                        .col_expr(unit::Column::UpdatedAt, Expr::value(now))
                        .filter(unit::Column::Id.eq(part_unit.id))
                        .filter(unit::Column::Location.eq(Location::Depot.as_str()))
                        .filter(unit::Column::DepotId.eq(rma.return_depot_id))
                        .filter(unit::Column::ParentUnitId.is_null())
                        // A spare kept for a waiting customer is not a repair part.
                        .filter(unit::Column::ReservedRmaId.is_null())
                        .exec(&txn)
                        .await?;
                    if taken.rows_affected != 1 {
                        return Err(AppError::Conflict(format!(
                            "{} was just taken from stock or is reserved for an approved RMA; use another unit",
                            serial.as_str()
                        )));
                    }
                    shelves.push((rma.return_depot_id, part_unit.part_id));
                }
                let removed = remove_parts(
                    &work,
                    returned_id,
                    &loaded.returned.serial,
                    rma.return_depot_id,
                    &parts_consumed,
                    &loaded.by_serial,
                    req.parts_removed.as_deref().unwrap_or_default(),
                )
                .await?;
                let details = json!({"parts_consumed": consumed_names, "parts_removed": removed});
                work.repair_record(returned_id, "parts_consumed", details).await?;
            }
            UnitEffect::RecordTests => {
                work.repair_record(returned_id, "test_run", json!({"test_results": req.test_results}))
                    .await?;
            }
            UnitEffect::Restock => {
                work.place(
                    returned_id,
                    Place::at_depot(rma.return_depot_id),
                    Some(Condition::Refurbished),
                )
                .await?;
                shelves.push((rma.return_depot_id, loaded.returned.part_id));
            }
            UnitEffect::Scrap => {
                work.place(
                    returned_id,
                    Place::at_depot(rma.return_depot_id),
                    Some(Condition::Scrapped),
                )
                .await?;
            }
        }
    }

    let mut fields = req.recorded_fields(row);
    if let Some((serial, depot)) = reserved {
        fields["reserved_serial"] = json!(serial);
        fields["reserved_at_depot"] = json!(depot);
    }
    if matches!(to, Status::Approved | Status::Restored) {
        // What was checked stays with the decision.
        let checked: Vec<Value> = crate::services::diagnosis::checks_of(&txn, &rma)
            .await?
            .into_iter()
            .filter(|c| c.result.is_some())
            .map(|c| json!({"step": c.step, "result": c.result}))
            .collect();
        fields["checked"] = json!(checked);
    }
    shelves.sort();
    shelves.dedup();
    let low_stock = stock::crossings(&txn, &shelves, now).await?;
    if !low_stock.is_empty() {
        fields["low_stock"] = json!(low_stock);
    }
    let note = req.text(Field::Note);
    let event_id = record_event(&txn, rma.id, actor, Some(from), to, note, fields.clone(), now).await?;
    if let Some(notice) = row.notice {
        // Composed by the dispatcher when it sends: rendering stays out of the write lock.
        let queued = outbox::Queued {
            rma_id: rma.id,
            event_id,
            template: notice.as_str(),
            recipients,
            composed: None,
            attach_label: notice == Notice::ReplacementShipped && !keep_your_drive,
            dedupe_key: None,
            webhook_url: webhook,
        };
        outbox::queue(&txn, queued, now).await?;
    }
    if !low_stock.is_empty() {
        // An internal alert: depot technicians and admins, never the customer's webhook.
        let depots: Vec<String> = low_stock.iter().map(|l| l.depot.clone()).collect();
        let queued = outbox::Queued {
            rma_id: rma.id,
            event_id,
            template: LOW_STOCK,
            recipients: stock::depot_staff(&txn, &depots).await?,
            composed: None,
            attach_label: false,
            dedupe_key: None,
            webhook_url: None,
        };
        outbox::queue(&txn, queued, now).await?;
    }
    txn.commit().await?;
    metrics::counter!("depot_transitions_total", "to" => to.as_str()).increment(1);
    detail(db, actor, updated).await
}

async fn find_part(db: &impl ConnectionTrait, number: &str) -> AppResult<part::Model> {
    part::Entity::find()
        .filter(part::Column::Number.eq(number.trim().to_uppercase()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown part number `{}`", number.trim())))
}

fn part_facts(p: &part::Model) -> PartFacts {
    PartFacts {
        number: p.number.clone(),
        kind: p.kind.clone(),
        field_replaceable: p.field_replaceable,
        holds_media: p.holds_media,
    }
}

/// Loads the RMA's own units and those named by serial, with what the guards need to know of each.
async fn load_units(
    txn: &DatabaseTransaction,
    rma: &rma::Model,
    serials: &[Serial],
    actor: &Actor,
) -> AppResult<Loaded> {
    let names: Vec<&str> = serials.iter().map(Serial::as_str).collect();
    let named = if names.is_empty() {
        vec![]
    } else {
        unit::Entity::find()
            .filter(unit::Column::Serial.is_in(names.clone()))
            .all(txn)
            .await?
    };
    let by_serial: HashMap<String, unit::Model> = named.into_iter().map(|u| (u.serial.clone(), u)).collect();
    // A customer's technician must not learn which serials exist at other customers: for them an
    // unknown serial is refused by the guards in the same words as a known one that does not fit.
    let unknown = names.iter().find(|s| !by_serial.contains_key(**s));
    if let (Some(unknown), None) = (unknown, actor.organization_scope()) {
        return Err(AppError::invalid(format!("unknown serial {unknown}")));
    }
    let own = load_map::<unit::Entity>(
        txn,
        [Some(rma.unit_id), Some(rma.returned_unit_id), rma.replacement_unit_id]
            .into_iter()
            .flatten(),
    )
    .await?;
    let mut all: HashMap<Uuid, unit::Model> = own.clone();
    all.extend(by_serial.values().map(|u| (u.id, u.clone())));
    let parts = load_map::<part::Entity>(txn, all.values().map(|u| u.part_id)).await?;
    let sites = names_of::<site::Entity>(txn, all.values().filter_map(|u| u.site_id), |s| s.code.clone()).await?;
    let depots = names_of::<depot::Entity>(txn, all.values().filter_map(|u| u.depot_id), |d| d.code.clone()).await?;
    let slots = names_of::<slot::Entity>(txn, all.values().filter_map(|u| u.slot_id), |s| s.name.clone()).await?;
    let parents = load_map::<unit::Entity>(txn, all.values().filter_map(|u| u.parent_unit_id)).await?;
    let mut facts = HashMap::new();
    for u in all.values() {
        let part = parts
            .get(&u.part_id)
            .ok_or_else(|| anyhow::anyhow!("unit without part"))?;
        facts.insert(
            u.id,
            UnitFacts {
                serial: u.serial.clone(),
                part: part_facts(part),
                condition: parse(&u.condition)?,
                location: parse(&u.location)?,
                site: u.site_id.and_then(|id| sites.get(&id)).cloned(),
                depot: u.depot_id.and_then(|id| depots.get(&id)).cloned(),
                parent_serial: u
                    .parent_unit_id
                    .and_then(|id| parents.get(&id))
                    .map(|p| p.serial.clone()),
                slot: u.slot_id.and_then(|id| slots.get(&id)).cloned(),
            },
        );
    }
    let get = |id: Uuid| {
        own.get(&id)
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("RMA unit {id} missing")))
    };
    Ok(Loaded {
        failed: get(rma.unit_id)?,
        returned: get(rma.returned_unit_id)?,
        replacement: rma.replacement_unit_id.map(get).transpose()?,
        by_serial,
        facts,
    })
}

/// Where a unit goes.
struct Place {
    location: Location,
    site_id: Option<Uuid>,
    depot_id: Option<Uuid>,
    slot_id: Option<Uuid>,
    parent_unit_id: Option<Uuid>,
    replaced_by: Option<Uuid>,
}

impl Place {
    fn loose_at_site(site: Uuid) -> Place {
        Place {
            location: Location::Site,
            site_id: Some(site),
            ..Place::in_transit()
        }
    }
    fn at_depot(depot: Uuid) -> Place {
        Place {
            location: Location::Depot,
            depot_id: Some(depot),
            ..Place::in_transit()
        }
    }
    fn in_transit() -> Place {
        Place {
            location: Location::InTransit,
            site_id: None,
            depot_id: None,
            slot_id: None,
            parent_unit_id: None,
            replaced_by: None,
        }
    }
}

/// The side effects of one transition, sharing its transaction.
/// Takes the removed components out of the repaired unit: each becomes a failed unit on the
/// depot's shelf, replaced by the consumed part of the same part number. A serial not yet known is
/// registered with its part. Returns the serials.
#[allow(clippy::too_many_arguments)]
async fn remove_parts(
    work: &Work<'_>,
    repaired_id: Uuid,
    repaired_serial: &str,
    depot_id: Uuid,
    consumed: &[Serial],
    by_serial: &HashMap<String, unit::Model>,
    removed: &[RemovedPart],
) -> AppResult<Vec<String>> {
    let mut serials: Vec<String> = vec![];
    for r in removed {
        let s = serial(&r.serial).map_err(|e| AppError::invalid(format!("parts_removed: {e}")))?;
        if serials.contains(&s.as_str().to_string()) || consumed.contains(&s) {
            return Err(AppError::invalid(format!(
                "parts_removed: {} is listed twice, or as consumed too",
                s.as_str()
            )));
        }
        let existing = unit::Entity::find()
            .filter(unit::Column::Serial.eq(s.as_str()))
            .one(work.txn)
            .await?;
        let (unit_id, part_id) = match existing {
            Some(u) if u.parent_unit_id == Some(repaired_id) => (u.id, u.part_id),
            Some(u) => {
                return Err(AppError::invalid(format!(
                    "parts_removed: {} is not inside {repaired_serial}",
                    u.serial
                )));
            }
            None => {
                let number = r.part.as_deref().ok_or_else(|| {
                    AppError::invalid(format!(
                        "parts_removed: {} is not a known unit; give its part number too",
                        s.as_str()
                    ))
                })?;
                let part = find_part(work.txn, number).await?;
                let id = Uuid::now_v7();
                unit::ActiveModel {
                    id: Set(id),
                    serial: Set(s.as_str().to_string()),
                    part_id: Set(part.id),
                    condition: Set(Condition::Failed.as_str().into()),
                    location: Set(Location::Depot.as_str().into()),
                    site_id: Set(None),
                    depot_id: Set(Some(depot_id)),
                    slot_id: Set(None),
                    parent_unit_id: Set(Some(repaired_id)),
                    replaced_by_unit_id: Set(None),
                    reserved_rma_id: Set(None),
                    lot: Set(None),
                    firmware: Set(None),
                    created_at: Set(work.now),
                    updated_at: Set(work.now),
                }
                .insert(work.txn)
                .await?;
                (id, part.id)
            }
        };
        let replacement = consumed
            .iter()
            .filter_map(|c| by_serial.get(c.as_str()))
            .find(|c| c.part_id == part_id)
            .map(|c| c.id);
        let mut out = Place::at_depot(depot_id);
        out.replaced_by = replacement;
        work.place(unit_id, out, Some(Condition::Failed)).await?;
        serials.push(s.into_string());
    }
    Ok(serials)
}

struct Work<'a> {
    txn: &'a DatabaseTransaction,
    rma: &'a rma::Model,
    actor: &'a Actor,
    now: DateTime<Utc>,
}

impl Work<'_> {
    async fn place(&self, unit_id: Uuid, to: Place, condition: Option<Condition>) -> AppResult<()> {
        let mut am = unit::ActiveModel {
            id: Unchanged(unit_id),
            location: Set(to.location.as_str().into()),
            site_id: Set(to.site_id),
            depot_id: Set(to.depot_id),
            slot_id: Set(to.slot_id),
            parent_unit_id: Set(to.parent_unit_id),
            updated_at: Set(self.now),
            ..Default::default()
        };
        if let Some(c) = condition {
            am.condition = Set(c.as_str().into());
        }
        if let Some(r) = to.replaced_by {
            am.replaced_by_unit_id = Set(Some(r));
        }
        am.update(self.txn).await?;
        Ok(())
    }

    async fn ship(
        &self,
        direction: &str,
        unit_id: Uuid,
        req: &TransitionRequest,
        from_address: String,
        to_address: String,
        depot_id: Option<Uuid>,
    ) -> AppResult<()> {
        // The guard checked both; parsing again yields their normalised forms.
        let carrier = Carrier::parse(req.text(Field::Carrier).unwrap_or_default()).map_err(AppError::invalid)?;
        let tracking = carrier
            .tracking_number(req.text(Field::TrackingNumber).unwrap_or_default())
            .map_err(AppError::invalid)?;
        shipment::ActiveModel {
            id: Set(Uuid::now_v7()),
            rma_id: Set(self.rma.id),
            unit_id: Set(unit_id),
            direction: Set(direction.into()),
            carrier: Set(carrier.as_str().into()),
            tracking_number: Set(tracking),
            from_address: Set(from_address),
            to_address: Set(to_address),
            depot_id: Set(depot_id),
            packages: Set(req.packages.unwrap_or(1)),
            weight_kg: Set(req.weight_kg),
            shipped_at: Set(self.now),
            delivered_at: Set(None),
        }
        .insert(self.txn)
        .await?;
        Ok(())
    }

    /// Marks the RMA's shipments in `direction` that have not arrived as delivered at `at`.
    async fn delivered(&self, direction: &str, at: DateTime<Utc>) -> AppResult<()> {
        shipment::Entity::update_many()
            .col_expr(shipment::Column::DeliveredAt, Expr::value(at))
            .filter(shipment::Column::RmaId.eq(self.rma.id))
            .filter(shipment::Column::Direction.eq(direction))
            .filter(shipment::Column::DeliveredAt.is_null())
            .exec(self.txn)
            .await?;
        Ok(())
    }

    async fn repair_record(&self, unit_id: Uuid, kind: &str, details: Value) -> AppResult<()> {
        repair_record::ActiveModel {
            id: Set(Uuid::now_v7()),
            rma_id: Set(self.rma.id),
            unit_id: Set(unit_id),
            kind: Set(kind.into()),
            details: Set(details),
            actor_id: Set(self.actor.user_id),
            created_at: Set(self.now),
        }
        .insert(self.txn)
        .await?;
        Ok(())
    }
}

fn site_address(s: &site::Model) -> String {
    crate::services::labels::site_lines(s).join("\n")
}

async fn depot_address_of(db: &impl ConnectionTrait, id: Uuid) -> AppResult<String> {
    let depot = depot::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("depot {id} missing"))?;
    Ok(depot_address(&depot))
}

fn depot_address(d: &depot::Model) -> String {
    crate::services::labels::depot_lines(d).join("\n")
}

/// Queues the email of `notice` to the site's DC-tech contacts and the RMA's watchers (and the
/// organization's chat webhook), in the transition's own transaction; delivery happens after commit.
#[allow(clippy::too_many_arguments)]
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
    let view = with_shipments(db, rma).await?;
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

/// What a scan at the receiving bench found.
pub enum Scan {
    /// A return headed to the scanning technician's depot.
    Expected {
        rma: Box<rma::Model>,
        serial: Option<String>,
    },
    /// Nothing expected here; the message says what the scan is instead.
    Unexpected(String),
}

/// Finds the return a scanned RMA number or serial belongs to, among those headed to `actor`'s depot.
pub async fn receiving_scan(db: &DatabaseConnection, actor: &Actor, scan: &str) -> AppResult<Scan> {
    let depot = actor.bench_depot("receive returns")?;
    let here = actor.depot_code.clone().unwrap_or_default();
    let scan = scan.trim();
    let (candidates, serial) = if let Some(number) = RmaNumber::parse(scan) {
        (
            rma::Entity::find()
                .filter(rma::Column::Number.eq(number.as_str()))
                .all(db)
                .await?,
            None,
        )
    } else {
        let Ok(serial) = Serial::parse(scan) else {
            return Ok(Scan::Unexpected(format!(
                "`{scan}` is neither an RMA number nor a serial"
            )));
        };
        let Some(unit) = unit::Entity::find()
            .filter(unit::Column::Serial.eq(serial.as_str()))
            .one(db)
            .await?
        else {
            return Ok(Scan::Unexpected(format!(
                "{} is not a serial depot knows",
                serial.as_str()
            )));
        };
        let rmas = rma::Entity::find()
            .filter(rma::Column::ReturnedUnitId.eq(unit.id))
            .order_by_desc(rma::Column::Id)
            .all(db)
            .await?;
        (rmas, Some(serial.into_string()))
    };
    let Some(latest) = candidates.first() else {
        return Ok(Scan::Unexpected(format!(
            "no RMA is waiting for {scan}: it is not expected at {here}"
        )));
    };
    let expected = candidates
        .iter()
        .find(|r| r.status == Status::ReturnShipped.as_str() && r.return_depot_id == depot);
    Ok(match expected {
        Some(r) => Scan::Expected {
            rma: Box::new(r.clone()),
            serial,
        },
        None if latest.status != Status::ReturnShipped.as_str() => Scan::Unexpected(format!(
            "{scan} belongs to {}, which is in status {}, not on its way back",
            latest.number, latest.status
        )),
        None => Scan::Unexpected(format!(
            "{scan} belongs to {}, which is headed to another depot, not {here}",
            latest.number
        )),
    })
}

/// Starts or stops `actor` watching an RMA (watchers get its emails). Returns whether they watch now.
pub async fn set_watching(db: &DatabaseConnection, actor: &Actor, number: &str, watch: bool) -> AppResult<bool> {
    let rma = find_visible(db, actor, number).await?;
    let existing = rma_watcher::Entity::find_by_id((rma.id, actor.user_id)).one(db).await?;
    match (watch, existing) {
        (true, None) => {
            rma_watcher::ActiveModel {
                rma_id: Set(rma.id),
                user_id: Set(actor.user_id),
            }
            .insert(db)
            .await?;
        }
        (false, Some(w)) => {
            rma_watcher::Entity::delete_by_id((w.rma_id, w.user_id))
                .exec(db)
                .await?;
        }
        _ => {}
    }
    Ok(watch)
}

/// Whether `actor` watches the RMA.
pub async fn is_watching(db: &DatabaseConnection, actor: &Actor, rma_id: Uuid) -> AppResult<bool> {
    Ok(rma_watcher::Entity::find_by_id((rma_id, actor.user_id))
        .one(db)
        .await?
        .is_some())
}

/// `PATCH /api/v1/rmas/{number}`: what may change outside the lifecycle.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RmaChanges {
    /// Replaces the external references (CS ticket, engineering ticket, chat thread link).
    #[schema(value_type = Object)]
    pub external_refs: Value,
    /// The version read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i32>,
}

/// Replaces an RMA's external references, recording the change as an event.
pub async fn update(db: &DatabaseConnection, actor: &Actor, number: &str, changes: RmaChanges) -> AppResult<RmaView> {
    actor.require(
        &[Role::FieldEngineer, Role::DcTech, Role::Admin],
        "edit an RMA's references",
    )?;
    let refs = external_refs(Some(changes.external_refs))?;
    let txn = begin_write(db).await?;
    let rma = find_visible(&txn, actor, number).await?;
    let version = changes.version.unwrap_or(rma.version);
    let now = Utc::now();
    let updated = rma::Entity::update_many()
        .set(rma::ActiveModel {
            refs_text: Set(refs_text(&refs)),
            external_refs: Set(refs.clone()),
            version: Set(rma.version + 1),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(rma::Column::Id.eq(rma.id))
        .filter(rma::Column::Version.eq(version))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::VersionConflict(format!(
            "{} changed since version {version}; reload it",
            rma.number
        )));
    }
    let fields = json!({"external_refs": refs});
    history::append(
        &txn,
        history::Entry::change(rma.id, "refs_updated", Some(actor), fields, now),
    )
    .await?;
    let fresh = rma::Entity::find_by_id(rma.id)
        .one(&txn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("RMA vanished"))?;
    let view = detail(&txn, actor, fresh).await?;
    txn.commit().await?;
    Ok(view)
}
