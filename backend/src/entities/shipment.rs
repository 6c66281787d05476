//! A box on its way: the replacement out, or the failed unit back.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shipments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub rma_id: Uuid,
    pub unit_id: Uuid,
    pub direction: String,
    pub carrier: String,
    pub tracking_number: String,
    #[sea_orm(column_type = "Text")]
    pub from_address: String,
    #[sea_orm(column_type = "Text")]
    pub to_address: String,
    pub depot_id: Option<Uuid>,
    pub packages: i32,
    pub weight_kg: Option<f64>,
    pub shipped_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its carrier's scans, read with it for an RMA's answer.
    #[sea_orm(has_many = "super::tracking_scan::Entity")]
    Scans,
}

impl Related<super::tracking_scan::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Scans.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
