//! A row of the BMC event rules: what an event means and what to do about it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "redfish_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Rules are tried in this order; the first that matches wins.
    pub position: i32,
    pub message_id_contains: String,
    pub origin_contains: String,
    pub fault_code: String,
    pub severity: String,
    pub action: String,
    pub part: Option<String>,
    pub description: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
