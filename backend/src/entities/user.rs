//! A person or integration that signs in.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    pub role: String,
    pub organization_id: Uuid,
    pub depot_id: Option<Uuid>,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// A depot technician's depot: read with the user when a request is authenticated.
    #[sea_orm(
        belongs_to = "super::depot::Entity",
        from = "Column::DepotId",
        to = "super::depot::Column::Id"
    )]
    Depot,
}

impl Related<super::depot::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Depot.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
