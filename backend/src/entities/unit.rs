//! One physical item with a serial number.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "units")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub serial: String,
    pub part_id: Uuid,
    pub condition: String,
    pub location: String,
    pub site_id: Option<Uuid>,
    pub depot_id: Option<Uuid>,
    pub slot_id: Option<Uuid>,
    pub parent_unit_id: Option<Uuid>,
    pub replaced_by_unit_id: Option<Uuid>,
    /// The RMA this spare is reserved for, from approval until it ships.
    pub reserved_rma_id: Option<Uuid>,
    /// The manufacturing lot, for failure rates per lot.
    pub lot: Option<String>,
    pub firmware: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
