//! The dispatcher's due rows by channel: without a mail server only webhooks are sent, and the
//! emails waiting meanwhile (every one queued since) must not be walked at every pass.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_notifications_channel_due";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(INDEX)
                .table(Notifications::Table)
                .col(Notifications::Channel)
                .col(Notifications::State)
                .col(Notifications::NextAttemptAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(INDEX).table(Notifications::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Channel,
    State,
    NextAttemptAt,
}
