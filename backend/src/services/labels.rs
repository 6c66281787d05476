//! The return label and the packing slip of an RMA, for those who may see it.
use crate::documents::{LabelData, SlipData};
use crate::domain::lifecycle::Status;
use crate::entities::{depot, part, rma, shipment, site, slot, unit};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use crate::services::rmas::find_visible;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

/// Statuses before the replacement ships have no return label yet, and cases closed without a
/// return never get one.
fn has_return_label(status: Status) -> bool {
    !matches!(
        status,
        Status::Reported | Status::Diagnosing | Status::Approved | Status::Restored | Status::Cancelled
    )
}

/// Whether the site's next step is to print the return label and ship the failed unit back: from
/// the replacement's shipping until the return ships, unless the customer keeps the drive.
pub fn return_is_due(status: Status, keep_your_drive: bool) -> bool {
    !keep_your_drive
        && matches!(
            status,
            Status::ReplacementShipped | Status::ReplacementDelivered | Status::Swapped
        )
}

/// A site's postal address, line by line (labels, slips, shipment records).
pub fn site_lines(s: &site::Model) -> Vec<String> {
    vec![
        s.name.clone(),
        s.street.clone(),
        format!("{}, {} {}", s.city, s.region, s.postal_code),
        s.country.clone(),
    ]
}

/// A depot's postal address, line by line.
pub fn depot_lines(d: &depot::Model) -> Vec<String> {
    vec![
        d.name.clone(),
        d.street.clone(),
        format!("{}, {} {}", d.city, d.region, d.postal_code),
        d.country.clone(),
    ]
}

async fn one<E: EntityTrait>(db: &DatabaseConnection, id: uuid::Uuid) -> AppResult<E::Model>
where
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<uuid::Uuid>,
{
    E::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("record {id} is missing")))
}

fn rma_url(base_url: &str, number: &str) -> String {
    format!("{base_url}/rmas/{number}")
}

/// The data of the RMA's return label: to its return depot, for the unit that goes back.
pub async fn return_label(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    base_url: &str,
) -> AppResult<LabelData> {
    let rma = find_visible(db, actor, number).await?;
    label_for(db, rma, base_url).await
}

/// The return label of an RMA by id, for the mail dispatcher (no viewer to check).
pub async fn return_label_by_id(db: &DatabaseConnection, rma_id: uuid::Uuid, base_url: &str) -> AppResult<LabelData> {
    let rma = one::<rma::Entity>(db, rma_id).await?;
    label_for(db, rma, base_url).await
}

async fn label_for(db: &DatabaseConnection, rma: rma::Model, base_url: &str) -> AppResult<LabelData> {
    let status: Status = rma
        .status
        .parse()
        .map_err(|e: String| AppError::Internal(anyhow::anyhow!(e)))?;
    if !has_return_label(status) {
        return Err(AppError::Conflict(format!(
            "{} has no return label while it is {}: the label exists once the replacement ships",
            rma.number, rma.status
        )));
    }
    if rma.keep_your_drive {
        return Err(AppError::Conflict(format!(
            "{} is keep-your-drive: the customer keeps the failed drive, so there is no return label",
            rma.number
        )));
    }
    let site = one::<site::Entity>(db, rma.site_id).await?;
    let depot = one::<depot::Entity>(db, rma.return_depot_id).await?;
    let returned = one::<unit::Entity>(db, rma.returned_unit_id).await?;
    // Before an FRU swap the unit going back is still unknown; the part is the FRU's all the same.
    let part_id = match rma.replacement_part_id {
        Some(fru) if rma.returned_unit_id == rma.unit_id => fru,
        _ => returned.part_id,
    };
    let part = one::<part::Entity>(db, part_id).await?;
    let shipment = latest_shipment(db, &rma, "return").await?;
    Ok(LabelData {
        url: rma_url(base_url, &rma.number),
        number: rma.number,
        serial: returned.serial,
        part: part.number,
        description: part.description,
        ship_from: site_lines(&site),
        ship_to: depot_lines(&depot),
        depot: depot.code,
        package: 1,
        packages: shipment.as_ref().map_or(1, |s| s.packages),
        weight_kg: shipment.as_ref().and_then(|s| s.weight_kg),
        carrier: shipment.as_ref().map(|s| s.carrier.clone()),
        tracking_number: shipment.map(|s| s.tracking_number),
    })
}

async fn latest_shipment(
    db: &DatabaseConnection,
    rma: &rma::Model,
    direction: &str,
) -> AppResult<Option<shipment::Model>> {
    Ok(shipment::Entity::find()
        .filter(shipment::Column::RmaId.eq(rma.id))
        .filter(shipment::Column::Direction.eq(direction))
        .order_by_desc(shipment::Column::Id)
        .one(db)
        .await?)
}

/// The data of the packing slip that travels with the replacement.
pub async fn packing_slip(db: &DatabaseConnection, actor: &Actor, number: &str, base_url: &str) -> AppResult<SlipData> {
    let rma = find_visible(db, actor, number).await?;
    let outbound = latest_shipment(db, &rma, "outbound").await?.ok_or_else(|| {
        AppError::Conflict(format!(
            "{} has no replacement shipment, so no packing slip",
            rma.number
        ))
    })?;
    let site = one::<site::Entity>(db, rma.site_id).await?;
    let depot = match outbound.depot_id {
        Some(id) => one::<depot::Entity>(db, id).await?,
        None => one::<depot::Entity>(db, rma.return_depot_id).await?,
    };
    let return_depot = one::<depot::Entity>(db, rma.return_depot_id).await?;
    let replacement = one::<unit::Entity>(db, outbound.unit_id).await?;
    let part = one::<part::Entity>(db, replacement.part_id).await?;
    let failed = one::<unit::Entity>(db, rma.unit_id).await?;
    let slot = match rma.slot_id {
        Some(id) => slot::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|s| format!(" in slot {}", s.name)),
        None => None,
    };
    let replaces = if replacement.part_id == failed.part_id {
        format!("Replaces failed unit {}{}", failed.serial, slot.unwrap_or_default())
    } else {
        format!(
            "Replaces the failed {} inside {}{}",
            part.number,
            failed.serial,
            slot.unwrap_or_default()
        )
    };
    Ok(SlipData {
        url: rma_url(base_url, &rma.number),
        number: rma.number,
        ship_to: site_lines(&site),
        ship_from: depot_lines(&depot),
        replacement_serial: replacement.serial,
        part: part.number,
        kind: part.kind,
        description: part.description,
        replaces,
        carrier: outbound.carrier,
        tracking_number: outbound.tracking_number,
        return_depot: return_depot.code,
    })
}
