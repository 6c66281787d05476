//! One serial scanned in a receiving session and what came of it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "receiving_scans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    pub serial: String,
    pub rma_id: Option<Uuid>,
    /// `received`, `unexpected`, `refused` or `repeated`.
    pub outcome: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
