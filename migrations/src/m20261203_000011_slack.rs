//! Slack: which depot user each Slack user acts as (linked once, through a one-time sign-in link).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SlackLinks::Table)
                .col(pk_uuid(SlackLinks::Id))
                .col(string(SlackLinks::TeamId))
                .col(string(SlackLinks::SlackUserId))
                // None until the person follows the link and confirms it, signed in to depot.
                .col(uuid_null(SlackLinks::UserId))
                .col(string_uniq(SlackLinks::TokenHash))
                .col(timestamp_with_time_zone(SlackLinks::ExpiresAt))
                .col(timestamp_with_time_zone_null(SlackLinks::LinkedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SlackLinks::Table, SlackLinks::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_slack_links_slack_user")
                .table(SlackLinks::Table)
                .col(SlackLinks::TeamId)
                .col(SlackLinks::SlackUserId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SlackLinks::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SlackLinks {
    Table,
    Id,
    TeamId,
    SlackUserId,
    UserId,
    TokenHash,
    ExpiresAt,
    LinkedAt,
}
#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
