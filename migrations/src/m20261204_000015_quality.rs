//! Dead-on-arrival reports on the RMA that shipped the replacement, and the spares policy the
//! recommended minimums are computed with.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .add_column(timestamp_with_time_zone_null(Rmas::DeadOnArrivalAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SparesPolicy::Table)
                .col(integer(SparesPolicy::Id).primary_key())
                .col(double(SparesPolicy::FillRatePercent))
                .col(double(SparesPolicy::LeadTimeDays))
                .col(timestamp_with_time_zone(SparesPolicy::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(SparesPolicy::Table)
                .columns([
                    SparesPolicy::Id,
                    SparesPolicy::FillRatePercent,
                    SparesPolicy::LeadTimeDays,
                    SparesPolicy::UpdatedAt,
                ])
                .values_panic([1.into(), 95.0.into(), 14.0.into(), Expr::current_timestamp()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SparesPolicy::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .drop_column(Rmas::DeadOnArrivalAt)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Rmas {
    Table,
    DeadOnArrivalAt,
}

#[derive(DeriveIden)]
enum SparesPolicy {
    Table,
    Id,
    FillRatePercent,
    LeadTimeDays,
    UpdatedAt,
}
