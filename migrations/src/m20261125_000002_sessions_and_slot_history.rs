//! Web sign-in (sessions kept in the database, failed attempts for throttling) and the history of
//! which unit sat in which slot.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_uuid(Sessions::Id))
                .col(string_uniq(Sessions::TokenHash))
                .col(uuid(Sessions::UserId))
                .col(string(Sessions::CsrfToken))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SignInFailures::Table)
                .col(pk_uuid(SignInFailures::Id))
                .col(string(SignInFailures::Email))
                .col(timestamp_with_time_zone(SignInFailures::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sign_in_failures_email")
                .table(SignInFailures::Table)
                .col(SignInFailures::Email)
                .col(SignInFailures::At)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SlotHistory::Table)
                .col(pk_uuid(SlotHistory::Id))
                .col(uuid(SlotHistory::SlotId))
                .col(uuid(SlotHistory::UnitId))
                .col(uuid_null(SlotHistory::RmaId))
                .col(timestamp_with_time_zone(SlotHistory::InstalledAt))
                .col(timestamp_with_time_zone_null(SlotHistory::RemovedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SlotHistory::Table, SlotHistory::SlotId)
                        .to(Slots::Table, Slots::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SlotHistory::Table, SlotHistory::UnitId)
                        .to(Units::Table, Units::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SlotHistory::Table, SlotHistory::RmaId)
                        .to(Rmas::Table, Rmas::Id),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_slot_history_slot", SlotHistory::SlotId),
            ("idx_slot_history_unit", SlotHistory::UnitId),
        ] {
            m.create_index(Index::create().name(name).table(SlotHistory::Table).col(col).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SlotHistory::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(SignInFailures::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Sessions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
}
#[derive(DeriveIden)]
enum SignInFailures {
    Table,
    Id,
    Email,
    At,
}
#[derive(DeriveIden)]
enum SlotHistory {
    Table,
    Id,
    SlotId,
    UnitId,
    RmaId,
    InstalledAt,
    RemovedAt,
}
#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
}
#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
}
#[derive(DeriveIden)]
enum Rmas {
    Table,
    Id,
}
