//! One scan a carrier reported for a tracking number.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tracking_scans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `None` while no shipment has this tracking number: kept and listed for an admin.
    pub shipment_id: Option<Uuid>,
    pub tracking_number: String,
    pub carrier: Option<String>,
    /// A normalised status (`in_transit`, `delivered`, `exception`, …).
    pub status: String,
    /// When the carrier scanned it.
    pub at: DateTimeUtc,
    pub location: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    /// `easypost` or `api` (the normalised endpoint).
    pub source: String,
    pub received_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub scan_key: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::shipment::Entity",
        from = "Column::ShipmentId",
        to = "super::shipment::Column::Id"
    )]
    Shipment,
}

impl Related<super::shipment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Shipment.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
