//! A Slack user and the depot user they act as, once confirmed through a one-time link.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "slack_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub team_id: String,
    pub slack_user_id: String,
    /// Set when the person confirmed the link, signed in to depot.
    pub user_id: Option<Uuid>,
    /// The hash of the one-time link's secret.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The link must be followed before this.
    pub expires_at: DateTimeUtc,
    pub linked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
