//! Depot operations: a replacement reserved at approval, the sealed bag of a unit holding customer
//! data, keep-your-drive, and low-stock thresholds per depot and part.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Units::Table)
                .add_column(uuid_null(Units::ReservedRmaId))
                .to_owned(),
        )
        .await?;
        // At most one unit is reserved for an RMA, and a unit for at most one RMA (the column).
        m.create_index(
            Index::create()
                .name("idx_units_reserved_rma")
                .table(Units::Table)
                .col(Units::ReservedRmaId)
                .unique()
                .to_owned(),
        )
        .await?;
        // SQLite alters one column per statement.
        for col in [
            string_null(Rmas::BagNumber),
            boolean(Rmas::KeepYourDrive).default(false).take(),
        ] {
            m.alter_table(Table::alter().table(Rmas::Table).add_column(col).to_owned())
                .await?;
        }
        m.create_table(
            Table::create()
                .table(StockThresholds::Table)
                .col(pk_uuid(StockThresholds::Id))
                .col(uuid(StockThresholds::DepotId))
                .col(uuid(StockThresholds::PartId))
                .col(integer(StockThresholds::Minimum))
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
                .name("idx_stock_thresholds_depot_part")
                .table(StockThresholds::Table)
                .col(StockThresholds::DepotId)
                .col(StockThresholds::PartId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(StockThresholds::Table).to_owned())
            .await?;
        for col in [Rmas::BagNumber, Rmas::KeepYourDrive] {
            m.alter_table(Table::alter().table(Rmas::Table).drop_column(col).to_owned())
                .await?;
        }
        m.drop_index(
            Index::drop()
                .name("idx_units_reserved_rma")
                .table(Units::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Units::Table)
                .drop_column(Units::ReservedRmaId)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Units {
    Table,
    ReservedRmaId,
}

#[derive(DeriveIden)]
enum Rmas {
    Table,
    BagNumber,
    KeepYourDrive,
}

#[derive(DeriveIden)]
enum StockThresholds {
    Table,
    Id,
    DepotId,
    PartId,
    Minimum,
    UpdatedAt,
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
