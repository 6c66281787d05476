//! One event a BMC reported.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "redfish_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The node's serial (the subscription's `Context`).
    pub serial: String,
    /// The RMA it opened or joined, if any.
    pub rma_id: Option<Uuid>,
    pub message_id: String,
    pub severity: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    pub origin: String,
    pub at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub event_key: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
