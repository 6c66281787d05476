//! A node's Redfish event subscription on its BMC, with the BMC's credentials sealed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bmc_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub unit_id: Uuid,
    /// The BMC's base URL, e.g. `https://10.1.2.3`.
    pub bmc_url: String,
    /// `user:password`, encrypted under `DEPOT_SECRET_KEY` (see `crate::secrets`).
    #[sea_orm(column_type = "Text")]
    pub credentials_sealed: String,
    /// Where the BMC keeps the subscription (its `Location`).
    pub subscription_uri: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
