//! Sign-in attempts per email within the current throttle window.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_throttles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub email: String,
    /// Attempts since `window_started_at`, counted before each password is checked.
    pub attempts: i32,
    pub window_started_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
