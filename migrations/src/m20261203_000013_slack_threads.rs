//! One Slack thread per RMA and channel: the first message's `ts`, which later steps reply to.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SlackThreads::Table)
                .col(pk_uuid(SlackThreads::Id))
                .col(uuid(SlackThreads::RmaId))
                .col(string(SlackThreads::Channel))
                .col(string(SlackThreads::Ts))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_slack_threads_rma_channel")
                .table(SlackThreads::Table)
                .col(SlackThreads::RmaId)
                .col(SlackThreads::Channel)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SlackThreads::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SlackThreads {
    Table,
    Id,
    RmaId,
    Channel,
    Ts,
}
