//! The manufacturing lot and firmware of a unit, so failure rates can be read per lot.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string_null(Units::Lot).to_owned(),
            string_null(Units::Firmware).to_owned(),
        ] {
            m.alter_table(Table::alter().table(Units::Table).add_column(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Units::Lot, Units::Firmware] {
            m.alter_table(Table::alter().table(Units::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Units {
    Table,
    Lot,
    Firmware,
}
