//! Carrier scans: matched to their shipment by tracking number, shown as the shipment's timeline,
//! and acted on. A replacement's `delivered` scan moves its RMA to `replacement_delivered` at the
//! carrier's scan time (the clock stops when the box arrived, not when someone noticed); an
//! exception alerts the organization's on-call list and chat webhook once. A scan for a tracking
//! number no shipment has is kept and listed for an admin: the carrier must not retry forever.
use crate::domain::Role;
use crate::domain::lifecycle::Status;
use crate::entities::{integration_receipt, organization, rma, shipment, tracking_scan, user};
use crate::error::{AppError, AppResult};
use crate::services::rmas::{self, TransitionRequest};
use crate::services::{Actor, history};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The statuses a scan may carry: EasyPost's tracker statuses, plus `exception` for carriers that
/// report one.
pub const STATUSES: [&str; 11] = [
    "unknown",
    "pre_transit",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "available_for_pickup",
    "return_to_sender",
    "failure",
    "exception",
    "cancelled",
    "error",
];

/// Statuses that need a person: the box will not arrive as planned.
pub const TROUBLE: [&str; 4] = ["exception", "failure", "return_to_sender", "error"];

/// Statuses after which no further scan is expected.
const FINAL: [&str; 4] = ["delivered", "return_to_sender", "cancelled", "available_for_pickup"];

/// One scan as a carrier reports it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Scan {
    /// One of [`STATUSES`].
    pub status: String,
    /// When the carrier scanned it (RFC 3339).
    pub at: DateTime<Utc>,
    pub location: Option<String>,
    pub message: Option<String>,
}

/// What depot did with a report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Taken {
    pub tracking_number: String,
    /// A shipment has this tracking number.
    pub matched: bool,
    /// The RMA the shipment belongs to.
    pub rma: Option<String>,
    /// Scans not seen before (a repeated scan is not recorded twice).
    pub recorded: usize,
    /// The RMA's status after the report.
    pub rma_status: Option<String>,
}

/// A scan on a shipment's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScanView {
    pub status: String,
    pub at: DateTime<Utc>,
    pub location: Option<String>,
    pub message: Option<String>,
    pub source: String,
}

impl From<tracking_scan::Model> for ScanView {
    fn from(s: tracking_scan::Model) -> Self {
        ScanView {
            status: s.status,
            at: s.at,
            location: s.location,
            message: s.message,
            source: s.source,
        }
    }
}

/// The named user an integration without a token of its own acts as (EasyPost signs its webhooks
/// instead), made on first use: every change it causes is audited under this name.
pub async fn integration_actor(db: &DatabaseConnection, name: &str) -> AppResult<Actor> {
    let email = format!("{name}@integrations.depot");
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    let user = match existing {
        Some(u) => u,
        None => {
            let vendor = organization::Entity::find()
                .filter(organization::Column::Kind.eq("vendor"))
                .one(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no vendor organization to hold the {name} integration"))?;
            let row = user::ActiveModel {
                id: Set(Uuid::now_v7()),
                email: Set(email.clone()),
                name: Set(format!("{name} (integration)")),
                role: Set(Role::Integration.as_str().into()),
                organization_id: Set(vendor.id),
                depot_id: Set(None),
                // Not a password hash: nobody signs in as an integration.
                password_hash: Set("!".into()),
                disabled: Set(false),
                created_at: Set(Utc::now()),
            };
            let insert = user::Entity::insert(row)
                .on_conflict(OnConflict::column(user::Column::Email).do_nothing().to_owned())
                .exec_without_returning(db)
                .await;
            insert?;
            user::Entity::find()
                .filter(user::Column::Email.eq(&email))
                .one(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the {name} integration user vanished"))?
        }
    };
    crate::services::tokens::actor_for(db, user).await
}

/// Whether `source` already took the signal `external_id` (a replayed webhook).
pub async fn already_taken(db: &impl ConnectionTrait, source: &str, external_id: &str) -> AppResult<bool> {
    Ok(integration_receipt::Entity::find()
        .filter(integration_receipt::Column::Source.eq(source))
        .filter(integration_receipt::Column::ExternalId.eq(external_id))
        .one(db)
        .await?
        .is_some())
}

/// Remembers that `source` took `external_id`; a second record of it is a no-op.
pub async fn mark_taken(db: &impl ConnectionTrait, source: &str, external_id: &str) -> AppResult<()> {
    let row = integration_receipt::ActiveModel {
        id: Set(Uuid::now_v7()),
        source: Set(source.into()),
        external_id: Set(external_id.into()),
        received_at: Set(Utc::now()),
    };
    integration_receipt::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                integration_receipt::Column::Source,
                integration_receipt::Column::ExternalId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Records the scans of `tracking_number` reported by `source` and acts on them.
///
/// Each new scan is written with its event on the RMA in one transaction. The effects are then
/// applied for every scan of the report, new or repeated, because each is idempotent (a delivery
/// moves only an RMA still waiting for it; an alert goes out once per key): a report retried after
/// a crash between the two finishes the work instead of skipping it.
pub async fn report(
    db: &DatabaseConnection,
    actor: &Actor,
    base_url: &str,
    source: &str,
    carrier: Option<&str>,
    tracking_number: &str,
    mut scans: Vec<Scan>,
) -> AppResult<Taken> {
    actor.require(&[Role::Integration], "report carrier scans")?;
    let tracking = crate::domain::carrier::normalise_tracking(tracking_number);
    if tracking.is_empty() || tracking.len() > 64 {
        return Err(AppError::invalid("a tracking number of 1 to 64 characters is required"));
    }
    for scan in &scans {
        if !STATUSES.contains(&scan.status.as_str()) {
            return Err(AppError::invalid(format!(
                "status `{}`: expected one of {}",
                scan.status,
                STATUSES.join(", ")
            )));
        }
    }
    scans.sort_by_key(|s| s.at);
    let shipment = shipment::Entity::find()
        .filter(shipment::Column::TrackingNumber.eq(&tracking))
        .order_by_desc(shipment::Column::ShippedAt)
        .one(db)
        .await?;
    let now = Utc::now();
    let mut recorded = 0;
    for scan in &scans {
        let txn = crate::db::begin_write(db).await?;
        let row = tracking_scan::ActiveModel {
            id: Set(Uuid::now_v7()),
            shipment_id: Set(shipment.as_ref().map(|s| s.id)),
            tracking_number: Set(tracking.clone()),
            carrier: Set(carrier.map(str::to_string)),
            status: Set(scan.status.clone()),
            at: Set(scan.at),
            location: Set(scan.location.clone().filter(|l| !l.trim().is_empty())),
            message: Set(scan.message.clone().filter(|m| !m.trim().is_empty())),
            source: Set(source.into()),
            received_at: Set(now),
            scan_key: Set(format!("{tracking}|{}|{}", scan.status, scan.at.timestamp_micros())),
        };
        let inserted = tracking_scan::Entity::insert(row)
            .on_conflict(
                OnConflict::column(tracking_scan::Column::ScanKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if let (1, Some(shipment)) = (inserted, &shipment) {
            let fields = serde_json::json!({"tracking_number": tracking, "direction": shipment.direction,
                "status": scan.status, "at": scan.at, "source": source});
            let note = format!("{} shipment {tracking}: {}", shipment.direction, describe(scan));
            let entry = history::Entry::change(shipment.rma_id, "tracking_scan", Some(actor), fields, now);
            history::append(&txn, entry.with_note(Some(note))).await?;
        }
        txn.commit().await?;
        recorded += inserted as usize;
    }
    let Some(shipment) = shipment else {
        tracing::info!(tracking = %tracking, source, "scans for an unknown tracking number kept for an admin");
        return Ok(Taken {
            tracking_number: tracking,
            matched: false,
            rma: None,
            recorded,
            rma_status: None,
        });
    };
    let mut rma = rma::Entity::find_by_id(shipment.rma_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("shipment without its RMA"))?;
    for scan in &scans {
        if scan.status == "delivered" && shipment.direction == "outbound" {
            rma = deliver(db, actor, rma, scan).await?;
        }
        if TROUBLE.contains(&scan.status.as_str()) {
            let key = format!(
                "shipment:{}:{}:{}",
                shipment.id,
                scan.status,
                scan.at.timestamp_micros()
            );
            trouble_alert(db, base_url, &rma, &shipment, &describe(scan), key, now).await?;
        }
    }
    Ok(Taken {
        tracking_number: tracking,
        matched: true,
        rma: Some(rma.number.clone()),
        recorded,
        rma_status: Some(rma.status),
    })
}

/// One message to the organization's on-call list and chat webhook about a shipment that will not
/// arrive as planned (`what` says why), once per `dedupe_key`.
pub async fn trouble_alert(
    db: &DatabaseConnection,
    base_url: &str,
    rma: &rma::Model,
    shipment: &shipment::Model,
    what: &str,
    dedupe_key: String,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let org = organization::Entity::find_by_id(rma.organization_id).one(db).await?;
    let to = org
        .as_ref()
        .map(crate::services::alerts::oncall_list)
        .unwrap_or_default();
    let view = crate::services::views::rma_views(db, vec![rma.clone()])
        .await?
        .remove(0);
    let ctx = serde_json::json!({"rma": view, "direction": shipment.direction, "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number, "what": what,
        "link": format!("{base_url}/rmas/{}", rma.number)});
    Ok(crate::services::alerts::alert(db, rma, "shipment_trouble", "shipment_alert", to, ctx, dedupe_key, now).await?)
}

/// A scan in words.
fn describe(scan: &Scan) -> String {
    let mut words = scan.status.replace('_', " ");
    if let Some(location) = scan.location.as_deref().filter(|l| !l.trim().is_empty()) {
        words += &format!(" at {}", location.trim());
    }
    if let Some(message) = scan.message.as_deref().filter(|m| !m.trim().is_empty()) {
        words += &format!(" ({})", message.trim());
    }
    words
}

/// Moves `rma` to `replacement_delivered` at the scan's time, if it still awaits its replacement.
/// A person may have confirmed first, or the RMA moved on meanwhile: then nothing changes.
async fn deliver(db: &DatabaseConnection, actor: &Actor, rma: rma::Model, scan: &Scan) -> AppResult<rma::Model> {
    let mut current = rma;
    // Another writer may move the RMA between the read and the write: read again and retry once.
    for _ in 0..2 {
        if current.status != Status::ReplacementShipped.as_str() {
            return Ok(current);
        }
        let request = TransitionRequest {
            to: Status::ReplacementDelivered.as_str().into(),
            version: current.version,
            delivered_at: Some(scan.at),
            note: Some(format!("carrier scan: {}", describe(scan))),
            ..Default::default()
        };
        match rmas::transition(db, actor, &current.number, request).await {
            Ok(_) | Err(AppError::VersionConflict(_)) => {}
            Err(err) => return Err(err),
        }
        current = rma::Entity::find_by_id(current.id)
            .one(db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the RMA vanished"))?;
    }
    Ok(current)
}

/// A scan no shipment claimed, as an admin sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unmatched {
    pub tracking_number: String,
    pub carrier: Option<String>,
    #[serde(flatten)]
    pub scan: ScanView,
    pub received_at: DateTime<Utc>,
}

/// Scans for tracking numbers no shipment has, newest first: admins only.
pub async fn unmatched(db: &DatabaseConnection, actor: &Actor, limit: u64) -> AppResult<Vec<Unmatched>> {
    use sea_orm::QuerySelect;
    actor.require(&[Role::Admin], "see unmatched carrier scans")?;
    Ok(tracking_scan::Entity::find()
        .filter(tracking_scan::Column::ShipmentId.is_null())
        .order_by_desc(tracking_scan::Column::ReceivedAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|s| Unmatched {
            tracking_number: s.tracking_number.clone(),
            carrier: s.carrier.clone(),
            received_at: s.received_at,
            scan: s.into(),
        })
        .collect())
}

/// Shipments on their way whose last scan (within the last 60 days) is older than `quiet`: each
/// with that scan. Only tracked shipments have scans, so a carrier without an integration never
/// looks stuck.
pub async fn gone_quiet(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    quiet: chrono::Duration,
) -> Result<Vec<(shipment::Model, tracking_scan::Model)>, sea_orm::DbErr> {
    let scans = tracking_scan::Entity::find()
        .filter(tracking_scan::Column::ShipmentId.is_not_null())
        .filter(tracking_scan::Column::At.gte(now - chrono::Duration::days(60)))
        .order_by_asc(tracking_scan::Column::At)
        .all(db)
        .await?;
    let mut last: std::collections::HashMap<Uuid, tracking_scan::Model> = Default::default();
    for scan in scans {
        if let Some(id) = scan.shipment_id {
            last.insert(id, scan);
        }
    }
    last.retain(|_, scan| !FINAL.contains(&scan.status.as_str()) && scan.at < now - quiet);
    let shipments = crate::services::views::load_map::<shipment::Entity>(db, last.keys().copied()).await?;
    Ok(shipments
        .into_values()
        .filter(|s| s.delivered_at.is_none())
        .filter_map(|s| last.remove(&s.id).map(|scan| (s, scan)))
        .collect())
}
