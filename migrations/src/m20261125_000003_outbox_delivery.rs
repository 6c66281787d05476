//! Delivery of the notification outbox: rendered content, a stable Message-ID, a claim lease so that
//! one instance sends each row, a de-duplication key for scheduled messages, and webhooks.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text_null(Notifications::Subject),
            text_null(Notifications::BodyText),
            text_null(Notifications::BodyHtml),
            string_null(Notifications::MessageId),
            string_null(Notifications::DedupeKey),
            timestamp_with_time_zone_null(Notifications::LockedUntil),
            boolean(Notifications::AttachLabel).default(false).take(),
        ];
        // SQLite alters one column per statement.
        for col in columns {
            m.alter_table(Table::alter().table(Notifications::Table).add_column(col).to_owned())
                .await?;
        }
        m.create_index(
            Index::create()
                .name("uq_notifications_dedupe")
                .table(Notifications::Table)
                .col(Notifications::DedupeKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(string_null(Organizations::WebhookUrl))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(json_null(Organizations::OncallEmails))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("uq_notifications_dedupe")
                .table(Notifications::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            Notifications::Subject,
            Notifications::BodyText,
            Notifications::BodyHtml,
            Notifications::MessageId,
            Notifications::DedupeKey,
            Notifications::LockedUntil,
            Notifications::AttachLabel,
        ] {
            m.alter_table(Table::alter().table(Notifications::Table).drop_column(col).to_owned())
                .await?;
        }
        for col in [Organizations::WebhookUrl, Organizations::OncallEmails] {
            m.alter_table(Table::alter().table(Organizations::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Subject,
    BodyText,
    BodyHtml,
    MessageId,
    DedupeKey,
    LockedUntil,
    AttachLabel,
}
#[derive(DeriveIden)]
enum Organizations {
    Table,
    WebhookUrl,
    OncallEmails,
}
