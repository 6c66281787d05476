//! What keeps an RMA's cost independent of its history: the first time it entered each status,
//! kept on the RMA (its clocks read this one value), and its repair records indexed in order (its
//! answer reads the latest few).
use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .add_column(json(Rmas::StatusEntered).default("{}"))
                .to_owned(),
        )
        .await?;
        let backfill = match m.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE rmas SET status_entered = first.entered FROM (
                     SELECT rma_id, json_object_agg(to_status, at) AS entered FROM (
                         SELECT rma_id, to_status, MIN(at) AS at FROM events
                         WHERE to_status IS NOT NULL GROUP BY rma_id, to_status) firsts
                     GROUP BY rma_id) first
                 WHERE rmas.id = first.rma_id"
            }
            _ => {
                "UPDATE rmas SET status_entered = (
                     SELECT json_group_object(to_status, at) FROM (
                         SELECT to_status, MIN(at) AS at FROM events
                         WHERE rma_id = rmas.id AND to_status IS NOT NULL GROUP BY to_status))
                 WHERE EXISTS (SELECT 1 FROM events WHERE rma_id = rmas.id)"
            }
        };
        m.get_connection().execute_unprepared(backfill).await?;
        m.create_index(
            Index::create()
                .name("idx_repair_records_rma_id")
                .table(RepairRecords::Table)
                .col(RepairRecords::RmaId)
                .col(RepairRecords::Id)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_repair_records_rma")
                .table(RepairRecords::Table)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_repair_records_rma")
                .table(RepairRecords::Table)
                .col(RepairRecords::RmaId)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_repair_records_rma_id")
                .table(RepairRecords::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .drop_column(Rmas::StatusEntered)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Rmas {
    Table,
    StatusEntered,
}

#[derive(DeriveIden)]
enum RepairRecords {
    Table,
    RmaId,
    Id,
}
