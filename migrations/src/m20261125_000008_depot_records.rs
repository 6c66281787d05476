//! The rest of the depot's day: keep-your-drive closures, technician time, the findings catalog,
//! low-stock thresholds and pallet receiving sessions.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            boolean(Rmas::KeepYourDrive).default(false).to_owned(),
            string_null(Rmas::DestructionCertificate).to_owned(),
            integer(Rmas::LaborMinutes).default(0).to_owned(),
        ] {
            m.alter_table(Table::alter().table(Rmas::Table).add_column(column).to_owned())
                .await?;
        }
        m.create_table(
            Table::create()
                .table(FindingCodes::Table)
                .col(pk_uuid(FindingCodes::Id))
                .col(string_uniq(FindingCodes::Code))
                .col(string(FindingCodes::Description))
                .col(string_null(FindingCodes::PartKind))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(StockThresholds::Table)
                .col(pk_uuid(StockThresholds::Id))
                .col(uuid(StockThresholds::DepotId))
                .col(uuid(StockThresholds::PartId))
                .col(integer(StockThresholds::Minimum))
                // Set when available stock fell below the minimum: one alert per crossing.
                .col(timestamp_with_time_zone_null(StockThresholds::ShortSince))
                .col(timestamp_with_time_zone(StockThresholds::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(StockThresholds::Table, StockThresholds::DepotId)
                        .to(Depots::Table, Depots::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(StockThresholds::Table, StockThresholds::PartId)
                        .to(Parts::Table, Parts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_stock_thresholds_depot_part")
                .table(StockThresholds::Table)
                .col(StockThresholds::DepotId)
                .col(StockThresholds::PartId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ReceivingSessions::Table)
                .col(pk_uuid(ReceivingSessions::Id))
                .col(uuid(ReceivingSessions::DepotId))
                .col(string_null(ReceivingSessions::Reference))
                .col(uuid(ReceivingSessions::OpenedBy))
                .col(timestamp_with_time_zone(ReceivingSessions::OpenedAt))
                .col(timestamp_with_time_zone_null(ReceivingSessions::ClosedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ReceivingSessions::Table, ReceivingSessions::DepotId)
                        .to(Depots::Table, Depots::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ReceivingSessions::Table, ReceivingSessions::OpenedBy)
                        .to(Users::Table, Users::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ReceivingScans::Table)
                .col(pk_uuid(ReceivingScans::Id))
                .col(uuid(ReceivingScans::SessionId))
                .col(string(ReceivingScans::Serial))
                .col(uuid_null(ReceivingScans::RmaId))
                .col(string(ReceivingScans::Outcome))
                .col(text(ReceivingScans::Message))
                .col(timestamp_with_time_zone(ReceivingScans::At))
                .foreign_key(
                    ForeignKey::create()
                        .from(ReceivingScans::Table, ReceivingScans::SessionId)
                        .to(ReceivingSessions::Table, ReceivingSessions::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ReceivingScans::Table, ReceivingScans::RmaId)
                        .to(Rmas::Table, Rmas::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_receiving_scans_session")
                .table(ReceivingScans::Table)
                .col(ReceivingScans::SessionId)
                .to_owned(),
        )
        .await?;
        // Genealogy flags look back over an RMA's unit and slot.
        m.create_index(
            Index::create()
                .name("idx_rmas_slot_created")
                .table(Rmas::Table)
                .col(Rmas::SlotId)
                .col(Rmas::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_rmas_slot_created")
                .table(Rmas::Table)
                .to_owned(),
        )
        .await?;
        for table in [
            ReceivingScans::Table.into_iden(),
            ReceivingSessions::Table.into_iden(),
            StockThresholds::Table.into_iden(),
            FindingCodes::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [Rmas::LaborMinutes, Rmas::DestructionCertificate, Rmas::KeepYourDrive] {
            m.alter_table(Table::alter().table(Rmas::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Rmas {
    Table,
    Id,
    SlotId,
    CreatedAt,
    KeepYourDrive,
    DestructionCertificate,
    LaborMinutes,
}

#[derive(DeriveIden)]
enum Depots {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Parts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum FindingCodes {
    Table,
    Id,
    Code,
    Description,
    PartKind,
}

#[derive(DeriveIden)]
enum StockThresholds {
    Table,
    Id,
    DepotId,
    PartId,
    Minimum,
    ShortSince,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReceivingSessions {
    Table,
    Id,
    DepotId,
    Reference,
    OpenedBy,
    OpenedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum ReceivingScans {
    Table,
    Id,
    SessionId,
    Serial,
    RmaId,
    Outcome,
    Message,
    At,
}
