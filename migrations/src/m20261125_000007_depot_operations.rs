//! Depot operations: a replacement reserved at approval, and the sealed bag of a unit holding
//! customer data.
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
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .add_column(string_null(Rmas::BagNumber))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .drop_column(Rmas::BagNumber)
                .to_owned(),
        )
        .await?;
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
}
