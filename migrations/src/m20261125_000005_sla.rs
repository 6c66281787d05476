//! Service levels per organization: budgets and the business-hour calendar they are counted in.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [Organizations::SlaPolicy, Organizations::Calendar] {
            m.alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(json_null(col))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [Organizations::SlaPolicy, Organizations::Calendar] {
            m.alter_table(Table::alter().table(Organizations::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    SlaPolicy,
    Calendar,
}
