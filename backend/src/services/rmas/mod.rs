//! Opening, listing, reading and moving RMAs. After [`open`], only [`transition`] changes an RMA's
//! status: it reads the facts (`facts`), plans with `domain::lifecycle::plan`, and carries the plan
//! out (`execute`).
mod execute;
mod facts;
mod view;

use facts::Audience;
use view::{AtHand, Placed, detail};
pub use view::{compose_notice, find_visible, get};

use crate::domain::lifecycle::{self, Plan, PlanFacts, Status};
pub use crate::domain::lifecycle::{RemovedPart, TransitionRequest};
use crate::domain::sla::Entered;
use crate::domain::{Location, RmaNumber, Role, Serial, Severity};
use crate::entities::{depot, event, rma, rma_counter, rma_watcher, site, slot, unit};
use crate::error::{AppError, AppResult};
use crate::services::history;
use crate::services::views::{self, EventView, RmaView};
use crate::services::{Actor, Page, page_limit, paginate, parse_cursor};
use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition as Where, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use serde::Deserialize;
use serde_json::{Value, json};
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
    /// An RMA number, a serial (failed, returned or replacement unit) or part of one, a hostname or
    /// slot name, or part of an external reference.
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

/// The open RMA of a unit (failed or returned), if it has one: a unit has one case at a time.
pub async fn open_rma_of_unit(db: &impl ConnectionTrait, unit_id: Uuid) -> AppResult<Option<rma::Model>> {
    Ok(rma::Entity::find()
        .filter(
            Where::any()
                .add(rma::Column::UnitId.eq(unit_id))
                .add(rma::Column::ReturnedUnitId.eq(unit_id)),
        )
        .filter(rma::Column::ClosedAt.is_null())
        .one(db)
        .await?)
}

/// The open RMA of the unit with `serial`, as `actor` may see it.
pub async fn open_rma_of(db: &DatabaseConnection, actor: &Actor, serial: &str) -> AppResult<Option<rma::Model>> {
    let Ok(serial) = Serial::parse(serial) else {
        return Ok(None);
    };
    let unit = unit::Entity::find()
        .filter(unit::Column::Serial.eq(serial.as_str()))
        .one(db)
        .await?;
    let open = match unit {
        Some(u) => open_rma_of_unit(db, u.id).await?,
        None => None,
    };
    Ok(open.filter(|r| actor.organization_scope().is_none_or(|org| org == r.organization_id)))
}

/// Opens an RMA in `reported`, numbered gap-free within its year.
#[tracing::instrument(skip(db, input), fields(actor = %actor.email))]
pub async fn open(db: &DatabaseConnection, actor: &Actor, input: OpenRma) -> AppResult<RmaView> {
    let actor_in_lock = actor.clone();
    // Opens that come together (a failing rack, a storm of reports) share commits (`db::write`).
    let view = crate::db::write(db, move |txn| {
        Box::pin(async move { open_in(txn, &actor_in_lock, input).await })
    })
    .await?;
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
        status_entered: Set([(Status::Reported, now)].into_iter().collect::<Entered>().to_json()),
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
        repair_entries: Set(0),
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

/// The id of the row of `E` whose `column` is `code`, when a code is given; an unknown code is the
/// nil id, which matches nothing.
async fn id_by_code<E>(db: &DatabaseConnection, column: E::Column, code: Option<String>) -> AppResult<Option<Uuid>>
where
    E: EntityTrait,
    E::Model: views::HasId,
{
    let Some(code) = code else { return Ok(None) };
    let found = E::find().filter(column.eq(code)).one(db).await?;
    Ok(Some(found.map_or(Uuid::nil(), |row| views::HasId::id(&row))))
}

/// What a list's filter narrows the RMAs `actor` may see to: status, severity, site, customer and
/// return depot, the codes resolved to ids (an unknown code matches nothing). The search, order and
/// page are the list's.
pub struct Narrowing {
    scope: Option<Uuid>,
    status: Option<Status>,
    severity: Option<Severity>,
    site: Option<Uuid>,
    organization: Option<Uuid>,
    depot: Option<Uuid>,
}

impl Narrowing {
    pub async fn of(db: &DatabaseConnection, actor: &Actor, filter: &RmaFilter) -> AppResult<Narrowing> {
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        // Codes become ids first: an equality on a known value lets the planner pick the composite
        // index (a subquery made SQLite walk a whole site, a second at a million RMAs).
        use crate::entities::organization;
        let site = id_by_code::<site::Entity>(db, site::Column::Code, given(&filter.site)).await?;
        let organization =
            id_by_code::<organization::Entity>(db, organization::Column::Code, given(&filter.organization)).await?;
        let depot_code = given(&filter.depot).map(|c| c.to_uppercase());
        let depot = id_by_code::<depot::Entity>(db, depot::Column::Code, depot_code).await?;
        Ok(Narrowing {
            scope: actor.organization_scope(),
            status: given(&filter.status).map(|s| parse::<Status>(&s)).transpose()?,
            severity: given(&filter.severity).map(|s| parse::<Severity>(&s)).transpose()?,
            site,
            organization,
            depot,
        })
    }

    /// Whether only closed RMAs can match (the status asked for is an end state).
    pub fn closed_only(&self) -> bool {
        self.status.is_some_and(Status::is_end)
    }

    /// The organization whose RMAs the viewer sees, or none for all.
    pub fn scope(&self) -> Option<Uuid> {
        self.scope
    }

    /// The RMAs that match, as a query.
    pub fn select(&self) -> Select<rma::Entity> {
        let mut query = rma::Entity::find();
        if let Some(org) = self.scope {
            query = query.filter(rma::Column::OrganizationId.eq(org));
        }
        if let Some(status) = self.status {
            query = query.filter(rma::Column::Status.eq(status.as_str()));
        }
        if let Some(severity) = self.severity {
            query = query.filter(rma::Column::Severity.eq(severity.as_str()));
        }
        if let Some(site) = self.site {
            query = query.filter(rma::Column::SiteId.eq(site));
        }
        if let Some(org) = self.organization {
            query = query.filter(rma::Column::OrganizationId.eq(org));
        }
        if let Some(depot) = self.depot {
            query = query.filter(rma::Column::ReturnDepotId.eq(depot));
        }
        query
    }

    /// Whether an RMA the viewer may see matches, for rows already read.
    pub fn admits(&self, r: &rma::Model) -> bool {
        self.status.is_none_or(|s| r.status == s.as_str())
            && self.severity.is_none_or(|s| r.severity == s.as_str())
            && self.site.is_none_or(|id| r.site_id == id)
            && self.organization.is_none_or(|id| r.organization_id == id)
            && self.depot.is_none_or(|id| r.return_depot_id == id)
    }
}

/// Lists RMAs visible to `actor`, newest first.
pub async fn list(db: &DatabaseConnection, actor: &Actor, filter: RmaFilter) -> AppResult<Page<RmaView>> {
    let narrowing = Narrowing::of(db, actor, &filter).await?;
    list_within(db, &narrowing, filter).await
}

/// [`list`] with the filter's narrowing already resolved (the list page shares it with its
/// urgent strip).
pub async fn list_within(
    db: &DatabaseConnection,
    narrowing: &Narrowing,
    filter: RmaFilter,
) -> AppResult<Page<RmaView>> {
    let limit = page_limit(filter.limit)?;
    let cursor = parse_cursor(filter.cursor.as_deref())?;
    let mut query = narrowing.select();
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
            None => {
                // A hostname or slot from an alert, or part of a serial, finds its RMAs too. As
                // subqueries: the matches of every customer are weighed, and the visible RMAs kept
                // (a capped list of ids could fill up with other customers' units).
                let matching_slots = Query::select()
                    .column(slot::Column::Id)
                    .from(slot::Entity)
                    .cond_where(
                        Where::any()
                            .add(slot::Column::Hostname.eq(q.to_lowercase()))
                            .add(slot::Column::Name.eq(q.to_uppercase())),
                    )
                    .to_owned();
                let matching_units = Query::select()
                    .column(unit::Column::Id)
                    .from(unit::Entity)
                    .and_where(unit::Column::Serial.like(containing(&q.to_uppercase())))
                    .to_owned();
                Where::any()
                    .add(rma::Column::RefsText.like(containing(&q.to_uppercase())))
                    .add(rma::Column::SlotId.in_subquery(matching_slots))
                    .add(rma::Column::UnitId.in_subquery(matching_units.clone()))
                    .add(rma::Column::ReturnedUnitId.in_subquery(matching_units))
            }
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

/// Pagination of `GET .../events` and other id-ordered lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// The latest `limit` entries of an RMA's history, oldest first, and whether older ones exist:
/// the page of an RMA with thousands of events shows its recent story at the cost of a short one.
pub async fn recent_events(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    limit: u64,
) -> AppResult<(Vec<EventView>, bool)> {
    let rma = find_visible(db, actor, number).await?;
    let mut rows = event::Entity::find()
        .filter(event::Column::RmaId.eq(rma.id))
        .order_by_desc(event::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let older = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    rows.reverse();
    Ok((rows.into_iter().map(EventView::from).collect(), older))
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

/// Moves an RMA along one row of the lifecycle table: reads the facts, plans, and carries the plan
/// out atomically. The status and version (compare-and-set on `version`), the units, shipments and
/// repair records, the event and the queued notifications commit together or not at all.
///
/// On SQLite the facts are read and the plan carried out as one piece of write work (`db::write`):
/// the reads cost a few microseconds each on SQLite's writer, where a read through the pool costs
/// two thread switches. The answer (the RMA as written, with its shipments, names and flags) is
/// read after the commit, through the pool, so the writer's turn holds only what must be atomic.
/// On PostgreSQL, where every statement is a round trip, the reads come before the writes'
/// transaction (see below).
#[tracing::instrument(skip(db, req), fields(actor = %actor.email, to = %req.to))]
pub async fn transition(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    req: TransitionRequest,
) -> AppResult<RmaView> {
    let to: Status = parse(&req.to)?;
    let (updated, at_hand) = match db.get_database_backend() {
        // A READ COMMITTED transaction's reads see the latest commits, as reads outside one do:
        // the facts are read first, and the transaction holds only the writes (and a plan that
        // changes only the RMA is one statement, without a transaction around it). The RMA's
        // compare-and-set on the version it was read at still makes any change since a 409.
        DbBackend::Postgres => {
            let Decided {
                placed,
                facts,
                audience,
                plan,
            } = decide(db, actor, number, &req).await?;
            let updated = execute::carry_out(db, actor, facts, plan, audience).await?;
            (updated, placed.at_hand())
        }
        // One writer at a time: read, decided and written in the writer's transaction, which
        // meanwhile goes on to the next piece of work while this answer is read.
        _ => {
            let (writer_actor, number) = (actor.clone(), number.to_string());
            crate::db::write(db, move |txn| {
                Box::pin(async move {
                    let actor = &writer_actor;
                    let Decided {
                        placed,
                        facts,
                        audience,
                        plan,
                    } = decide(txn, actor, &number, &req).await?;
                    let updated = execute::apply(txn, actor, &facts, plan, audience).await?;
                    Ok::<_, AppError>((updated, placed.at_hand()))
                })
            })
            .await?
        }
    };
    // The RMA as written, with what else its answer shows as committed.
    let view = detail(db, actor, updated, at_hand).await?;
    metrics::counter!("depot_transitions_total", "to" => to.as_str()).increment(1);
    Ok(view)
}

/// A transition decided: the RMA as read, the facts, who hears of it and the plan.
struct Decided {
    placed: Placed,
    facts: PlanFacts,
    audience: Audience,
    plan: Plan,
}

/// Reads the RMA numbered `number` and the facts of the transition `req` asks of it, and plans it.
async fn decide(db: &impl ConnectionTrait, actor: &Actor, number: &str, req: &TransitionRequest) -> AppResult<Decided> {
    let placed = view::find_visible_placed(db, actor, number).await?;
    let from: Status = parse(&placed.rma.status)?;
    let to: Status = parse(&req.to)?;
    // The table's refusals come before anything is read for the plan.
    let row = lifecycle::authorize(from, to, actor.role, placed.rma.keep_your_drive, |f| req.has(f))?;
    let (facts, audience) = facts::read(db, actor, &placed, row, req).await?;
    let plan = lifecycle::plan(&facts, req)?;
    Ok(Decided {
        placed,
        facts,
        audience,
        plan,
    })
}

/// What a scan at the receiving bench found.
pub enum Scan {
    /// A return headed to the scanning technician's depot.
    Expected {
        rma: Box<rma::Model>,
        serial: Option<String>,
    },
    /// A unit already at the technician's depot, its RMA open: the bench's work on it goes on.
    OnTheBench(Box<rma::Model>),
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
    let at_the_bench = |r: &rma::Model| {
        r.return_depot_id == depot
            && r.status
                .parse::<Status>()
                .is_ok_and(|s| s.is_at_depot_or_closed() && !s.is_end())
    };
    Ok(match expected {
        Some(r) => Scan::Expected {
            rma: Box::new(r.clone()),
            serial,
        },
        None if at_the_bench(latest) => Scan::OnTheBench(Box::new(latest.clone())),
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
    let actor_in_lock = actor.clone();
    let number = number.to_string();
    crate::db::write(db, move |txn| {
        Box::pin(async move {
            let actor = &actor_in_lock;
            let rma = find_visible(txn, actor, &number).await?;
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
                .exec_with_returning(txn)
                .await?
                .pop()
                .ok_or_else(|| {
                    AppError::VersionConflict(format!("{} changed since version {version}; reload it", rma.number))
                })?;
            let fields = json!({"external_refs": refs});
            history::append(
                txn,
                history::Entry::change(rma.id, "refs_updated", Some(actor), fields, now),
            )
            .await?;
            // The answer is read in the transaction that made the change: what was committed.
            detail(txn, actor, updated, AtHand::default()).await
        })
    })
    .await
}
