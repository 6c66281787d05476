//! A customer, or the vendor itself.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub kind: String,
    pub created_at: DateTimeUtc,
    /// A chat incoming-webhook URL that receives this organization's notifications.
    pub webhook_url: Option<String>,
    /// Internal on-call addresses for alerts (SLA breaches).
    pub oncall_emails: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
