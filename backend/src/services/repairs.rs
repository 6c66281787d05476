//! The depot's record of an RMA: findings against the catalog of fault codes, parts, test runs,
//! sanitization, technician time and the visit to the hardware vendor.
use crate::domain::Status;
use crate::domain::sla::Entered;
use crate::entities::{finding_code, repair_record, rma, user};
use crate::error::AppResult;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

/// Defined with the lifecycle's plan, which checks and records them.
pub use crate::domain::lifecycle::{FROM_VENDOR, MAX_LABOR_MINUTES, TO_VENDOR};

/// A code of the findings catalog.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingCode {
    pub code: String,
    pub description: String,
    /// The part kind the code applies to; absent for any.
    pub part_kind: Option<String>,
}

/// The whole catalog, by code.
pub async fn catalog(db: &impl ConnectionTrait) -> Result<Vec<FindingCode>, DbErr> {
    Ok(finding_code::Entity::find()
        .order_by_asc(finding_code::Column::Code)
        .all(db)
        .await?
        .into_iter()
        .map(|c| FindingCode {
            code: c.code,
            description: c.description,
            part_kind: c.part_kind,
        })
        .collect())
}

/// The codes given, resolved against the catalog as people type them (any case, `_` or `-` or a
/// space between words): the catalog's spelling of each known one, once, in the order given, and
/// the unknown ones as typed.
pub async fn resolve_codes(db: &impl ConnectionTrait, codes: &[String]) -> Result<(Vec<String>, Vec<String>), DbErr> {
    let given: Vec<&str> = codes.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
    if given.is_empty() {
        return Ok((vec![], vec![]));
    }
    let catalog: Vec<String> = catalog(db).await?.into_iter().map(|c| c.code).collect();
    let (mut known, mut unknown): (Vec<String>, Vec<String>) = (vec![], vec![]);
    for code in given {
        match catalog.iter().find(|c| code_key(c) == code_key(code)) {
            Some(c) if !known.contains(c) => known.push(c.clone()),
            Some(_) => {}
            None => unknown.push(code.to_string()),
        }
    }
    Ok((known, unknown))
}

/// What two spellings of one code share: its letters and digits, upper-case.
fn code_key(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A unit's stay at its hardware vendor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VendorVisit {
    pub vendor: String,
    pub vendor_reference: String,
    pub vendor_return_reference: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub back_at: Option<DateTime<Utc>>,
    /// Days at the vendor so far, or in all once back.
    pub days_at_vendor: f64,
}

/// The record kinds of a vendor visit.
const VENDOR_KINDS: [&str; 2] = ["vendor_escalation", "vendor_return"];

/// The RMA's vendor escalation, if it had one.
pub async fn vendor_visit(db: &impl ConnectionTrait, rma_id: Uuid) -> Result<Option<VendorVisit>, DbErr> {
    let records = repair_record::Entity::find()
        .filter(repair_record::Column::RmaId.eq(rma_id))
        .filter(repair_record::Column::Kind.is_in(VENDOR_KINDS))
        .order_by_asc(repair_record::Column::Id)
        .all(db)
        .await?;
    Ok(visit_in(&records, Utc::now()))
}

fn visit_in(records: &[repair_record::Model], now: DateTime<Utc>) -> Option<VendorVisit> {
    let sent = records.iter().find(|r| r.kind == "vendor_escalation")?;
    let back = records.iter().find(|r| r.kind == "vendor_return");
    let text = |r: &repair_record::Model, key: &str| r.details.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let back_at = back.map(|r| r.created_at);
    let seconds = (back_at.unwrap_or(now) - sent.created_at).num_seconds();
    Some(VendorVisit {
        vendor: text(sent, "vendor").unwrap_or_default(),
        vendor_reference: text(sent, "vendor_reference").unwrap_or_default(),
        vendor_return_reference: back.and_then(|r| text(r, "vendor_return_reference")),
        sent_at: sent.created_at,
        back_at,
        days_at_vendor: (seconds as f64 / 86_400.0 * 10.0).round() / 10.0,
    })
}

/// One entry of the depot's record: what was done, with its details, by whom and when.
#[derive(Debug, Serialize, utoipa::ToSchema, FromQueryResult)]
pub struct RepairEntry {
    /// `finding`, `parts_consumed`, `test_run`, `sanitization`, `vendor_escalation`,
    /// `vendor_return` or `destroyed_by_customer`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The technician's email.
    pub operator: String,
    pub at: DateTime<Utc>,
}

/// The depot's record of an RMA, on its single answer and page once there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepairRecord {
    /// Technician time reported so far.
    pub labor_minutes: i32,
    /// The latest entries (at most [`RECENT_ENTRIES`]), oldest first.
    pub entries: Vec<RepairEntry>,
    /// How many entries the record holds in all.
    pub entries_total: u64,
    pub vendor: Option<VendorVisit>,
}

/// The entries an RMA's answer carries: an RMA tested a thousand times answers as fast as one
/// tested once; its events (`GET .../events`) hold the whole story.
pub const RECENT_ENTRIES: u64 = 50;

/// The record of `rma`, or `None` when the depot has recorded nothing.
pub async fn record_of(db: &impl ConnectionTrait, rma: &rma::Model) -> AppResult<Option<RepairRecord>> {
    let labor_minutes = rma.labor_minutes;
    // The RMA counts its entries: with none and no labor there is no record to read.
    if rma.repair_entries == 0 && labor_minutes == 0 {
        return Ok(None);
    }
    // Both reads walk an index from the RMA's latest entry or to its vendor records only, and
    // take only what the answer shows.
    let mut entries: Vec<RepairEntry> = repair_record::Entity::find()
        .select_only()
        .column(repair_record::Column::Kind)
        .column(repair_record::Column::Details)
        .column_as(user::Column::Email, "operator")
        .column_as(repair_record::Column::CreatedAt, "at")
        .inner_join(user::Entity)
        .filter(repair_record::Column::RmaId.eq(rma.id))
        .order_by_desc(repair_record::Column::Id)
        .limit(RECENT_ENTRIES)
        .into_model()
        .all(db)
        .await?;
    if entries.is_empty() && labor_minutes == 0 {
        return Ok(None);
    }
    entries.reverse();
    // Only an RMA that has been at its vendor has a visit's records.
    let went_to_vendor = Entered::from_json(&rma.status_entered)
        .first(&[Status::VendorEscalated])
        .is_some();
    Ok(Some(RepairRecord {
        labor_minutes,
        entries,
        entries_total: rma.repair_entries.max(0) as u64,
        vendor: match went_to_vendor {
            true => vendor_visit(db, rma.id).await?,
            false => None,
        },
    }))
}
