//! Pallet receiving: a depot technician opens a session, scans every box of a delivery, and each
//! serial is received against its RMA or listed as unexpected; what was expected and did not turn
//! up stays listed until it does.
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::entities::{depot, receiving_scan, receiving_session, rma, unit, user};
use crate::error::{AppError, AppResult};
use crate::services::rmas::{self, PageParams, Scan, TransitionRequest};
use crate::services::views::load_map;
use crate::services::{Actor, Page, page_limit, paginate, parse_cursor};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// What came of a scan.
pub const RECEIVED: &str = "received";
pub const UNEXPECTED: &str = "unexpected";
pub const REFUSED: &str = "refused";
pub const REPEATED: &str = "repeated";

/// Returns still on their way that a session lists at most.
const EXPECTED_SHOWN: u64 = 500;

/// The longest pallet reference kept.
const MAX_REFERENCE: usize = 200;

/// `POST /api/v1/receiving/sessions`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OpenSession {
    /// The pallet's label or the carrier's delivery reference.
    #[serde(default)]
    pub reference: Option<String>,
}

/// `POST /api/v1/receiving/sessions/{id}/scans`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ScanRequest {
    pub serial: String,
    /// The sealed bag's number, for a unit that holds customer data.
    #[serde(default)]
    pub bag_number: Option<String>,
}

/// One scan and its outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanView {
    pub serial: String,
    /// `received`, `unexpected`, `refused` (the RMA would not take it: the message says why) or
    /// `repeated` (already received in this session).
    pub outcome: String,
    pub rma: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A return headed to the session's depot that has not been received yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExpectedReturn {
    pub rma: String,
    pub serial: String,
    pub site: String,
}

/// A session with its scans.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    /// Depot code.
    pub depot: String,
    pub reference: Option<String>,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub received: usize,
    pub unexpected: usize,
    pub refused: usize,
    /// Every scan, in order.
    pub scans: Vec<ScanView>,
    /// Returns on their way to this depot not received yet (on the single-session answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_expected: Option<Vec<ExpectedReturn>>,
}

/// Opens a session at the technician's depot.
pub async fn open(db: &DatabaseConnection, actor: &Actor, input: OpenSession) -> AppResult<SessionView> {
    let depot_id = actor.bench_depot("receive returns")?;
    let reference = input.reference.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reference.as_ref().is_some_and(|r| r.chars().count() > MAX_REFERENCE) {
        return Err(AppError::invalid(format!(
            "reference must be at most {MAX_REFERENCE} characters"
        )));
    }
    let txn = crate::db::begin_write(db).await?;
    let session = receiving_session::ActiveModel {
        id: Set(Uuid::now_v7()),
        depot_id: Set(depot_id),
        reference: Set(reference),
        opened_by: Set(actor.user_id),
        opened_at: Set(Utc::now()),
        closed_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    full_view(db, session).await
}

async fn find(db: &impl ConnectionTrait, actor: &Actor, id: &str) -> AppResult<receiving_session::Model> {
    actor.require(
        &[Role::DepotTech, Role::FieldEngineer, Role::Admin],
        "see receiving sessions",
    )?;
    let not_found = || AppError::not_found(format!("no receiving session {id}"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    receiving_session::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(not_found)
}

/// One session with its scans and what is still expected.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: &str) -> AppResult<SessionView> {
    let session = find(db, actor, id).await?;
    full_view(db, session).await
}

/// Sessions, newest first: a technician's own depot's, everyone's for the others.
pub async fn list(db: &DatabaseConnection, actor: &Actor, params: PageParams) -> AppResult<Page<SessionView>> {
    actor.require(
        &[Role::DepotTech, Role::FieldEngineer, Role::Admin],
        "see receiving sessions",
    )?;
    let limit = page_limit(params.limit)?;
    let mut query = receiving_session::Entity::find().order_by_desc(receiving_session::Column::Id);
    if let Some(depot) = actor.depot_id {
        query = query.filter(receiving_session::Column::DepotId.eq(depot));
    }
    if let Some(cursor) = parse_cursor(params.cursor.as_deref())? {
        query = query.filter(receiving_session::Column::Id.lt(cursor));
    }
    let rows = query.limit(limit + 1).all(db).await?;
    let mut page = paginate(rows, limit, |s| s.id.to_string(), |rows| rows);
    let items = views(db, std::mem::take(&mut page.items)).await?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Closes a session: it takes no more scans.
pub async fn close(db: &DatabaseConnection, actor: &Actor, id: &str) -> AppResult<SessionView> {
    let session = find(db, actor, id).await?;
    at_the_bench(actor, &session)?;
    if session.closed_at.is_none() {
        let txn = crate::db::begin_write(db).await?;
        receiving_session::Entity::update_many()
            .col_expr(
                receiving_session::Column::ClosedAt,
                sea_orm::sea_query::Expr::value(Some(Utc::now())),
            )
            .filter(receiving_session::Column::Id.eq(session.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    get(db, actor, id).await
}

fn at_the_bench(actor: &Actor, session: &receiving_session::Model) -> AppResult<()> {
    if actor.bench_depot("receive returns")? != session.depot_id {
        return Err(AppError::Forbidden(
            "this pallet is being received at another depot".into(),
        ));
    }
    Ok(())
}

/// Scans one serial into the session: receives it against its RMA when one is on its way here,
/// else records it as unexpected or refused with the reason. Every scan is recorded.
pub async fn scan(db: &DatabaseConnection, actor: &Actor, id: &str, input: ScanRequest) -> AppResult<ScanView> {
    let session = find(db, actor, id).await?;
    at_the_bench(actor, &session)?;
    if session.closed_at.is_some() {
        return Err(AppError::Conflict(
            "this receiving session is closed; open a new one".into(),
        ));
    }
    let serial = crate::domain::Serial::parse(input.serial.trim())
        .map_err(|e| AppError::invalid(format!("serial: {e}")))?
        .into_string();
    let bag_number = input.bag_number.map(|b| b.trim().to_string()).filter(|b| !b.is_empty());
    let earlier = receiving_scan::Entity::find()
        .filter(receiving_scan::Column::SessionId.eq(session.id))
        .filter(receiving_scan::Column::Serial.eq(&serial))
        .filter(receiving_scan::Column::Outcome.eq(RECEIVED))
        .one(db)
        .await?;
    let (outcome, rma, message) = match earlier {
        Some(_) => (REPEATED, None, format!("{serial} was already received in this session")),
        None => match rmas::receiving_scan(db, actor, &serial).await? {
            Scan::Unexpected(message) => (UNEXPECTED, None, message),
            Scan::OnTheBench(rma) => {
                let message = format!("{serial} was already received: {} is in {}", rma.number, rma.status);
                (UNEXPECTED, None, message)
            }
            Scan::Expected { rma, .. } => {
                let (outcome, message) = receive(db, actor, &session, &rma, &serial, bag_number).await?;
                (outcome, Some(*rma), message)
            }
        },
    };
    let txn = crate::db::begin_write(db).await?;
    let row = receiving_scan::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session.id),
        serial: Set(serial),
        rma_id: Set(rma.as_ref().map(|r| r.id)),
        outcome: Set(outcome.into()),
        message: Set(message),
        at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(scan_view(row, rma.map(|r| r.number)))
}

/// Receives `serial` against `rma`; a refusal becomes the scan's outcome, not an error.
async fn receive(
    db: &DatabaseConnection,
    actor: &Actor,
    session: &receiving_session::Model,
    rma: &rma::Model,
    serial: &str,
    bag_number: Option<String>,
) -> AppResult<(&'static str, String)> {
    let pallet = session.reference.clone().unwrap_or_else(|| session.id.to_string());
    let request = TransitionRequest {
        to: Status::Received.as_str().into(),
        version: rma.version,
        scanned_serial: Some(serial.into()),
        bag_number,
        note: Some(format!("received in pallet {pallet}")),
        ..Default::default()
    };
    Ok(match rmas::transition(db, actor, &rma.number, request).await {
        Ok(_) => (RECEIVED, format!("received against {}", rma.number)),
        Err(err) if err.is_refusal() => (REFUSED, err.to_string()),
        Err(err) => return Err(err),
    })
}

fn scan_view(row: receiving_scan::Model, rma: Option<String>) -> ScanView {
    ScanView {
        serial: row.serial,
        outcome: row.outcome,
        rma,
        message: row.message,
        at: row.at,
    }
}

/// The views of `sessions` with their scans, in a fixed number of queries.
async fn views(db: &impl ConnectionTrait, sessions: Vec<receiving_session::Model>) -> AppResult<Vec<SessionView>> {
    let scans = receiving_scan::Entity::find()
        .filter(receiving_scan::Column::SessionId.is_in(sessions.iter().map(|s| s.id)))
        .order_by_asc(receiving_scan::Column::Id)
        .all(db)
        .await?;
    let rmas = load_map::<rma::Entity>(db, scans.iter().filter_map(|r| r.rma_id)).await?;
    let depots = load_map::<depot::Entity>(db, sessions.iter().map(|s| s.depot_id)).await?;
    let openers = load_map::<user::Entity>(db, sessions.iter().map(|s| s.opened_by)).await?;
    let mut by_session: HashMap<Uuid, Vec<receiving_scan::Model>> = HashMap::new();
    for scan in scans {
        by_session.entry(scan.session_id).or_default().push(scan);
    }
    Ok(sessions
        .into_iter()
        .map(|session| {
            let rows = by_session.remove(&session.id).unwrap_or_default();
            let count = |outcome: &str| rows.iter().filter(|r| r.outcome == outcome).count();
            let (received, unexpected, refused) = (count(RECEIVED), count(UNEXPECTED), count(REFUSED));
            let scans = rows
                .into_iter()
                .map(|r| {
                    let number = r.rma_id.and_then(|id| rmas.get(&id)).map(|x| x.number.clone());
                    scan_view(r, number)
                })
                .collect();
            SessionView {
                id: session.id,
                depot: depots
                    .get(&session.depot_id)
                    .map(|d| d.code.clone())
                    .unwrap_or_default(),
                reference: session.reference,
                opened_by: openers
                    .get(&session.opened_by)
                    .map(|u| u.email.clone())
                    .unwrap_or_default(),
                opened_at: session.opened_at,
                closed_at: session.closed_at,
                received,
                unexpected,
                refused,
                scans,
                still_expected: None,
            }
        })
        .collect())
}

/// One session's view with the returns still expected at its depot.
async fn full_view(db: &impl ConnectionTrait, session: receiving_session::Model) -> AppResult<SessionView> {
    let depot_id = session.depot_id;
    let mut view = views(db, vec![session]).await?.remove(0);
    view.still_expected = Some(still_expected(db, depot_id).await?);
    Ok(view)
}

async fn still_expected(db: &impl ConnectionTrait, depot_id: Uuid) -> AppResult<Vec<ExpectedReturn>> {
    let rows = rma::Entity::find()
        .filter(rma::Column::Status.eq(Status::ReturnShipped.as_str()))
        .filter(rma::Column::ReturnDepotId.eq(depot_id))
        .order_by_asc(rma::Column::StatusChangedAt)
        .limit(EXPECTED_SHOWN)
        .all(db)
        .await?;
    let units = load_map::<unit::Entity>(db, rows.iter().map(|r| r.returned_unit_id)).await?;
    let sites = load_map::<crate::entities::site::Entity>(db, rows.iter().map(|r| r.site_id)).await?;
    Ok(rows
        .into_iter()
        .map(|r| ExpectedReturn {
            serial: units
                .get(&r.returned_unit_id)
                .map(|u| u.serial.clone())
                .unwrap_or_default(),
            site: sites.get(&r.site_id).map(|s| s.code.clone()).unwrap_or_default(),
            rma: r.number,
        })
        .collect())
}
