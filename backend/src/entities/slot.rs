//! A named position in a cluster: rack, rack unit, hostname, and the bay for an FRU.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub parent_slot_id: Option<Uuid>,
    pub name: String,
    pub rack: String,
    pub rack_unit: Option<i32>,
    pub hostname: Option<String>,
    pub bay: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
