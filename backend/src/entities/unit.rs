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
pub enum Relation {
    /// Read with the unit when a transition's plan needs what it is.
    #[sea_orm(
        belongs_to = "super::part::Entity",
        from = "Column::PartId",
        to = "super::part::Column::Id"
    )]
    Part,
}

impl Related<super::part::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Part.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
