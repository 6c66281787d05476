//! Carrier tracking: every scan a carrier (or an aggregator such as EasyPost) reports, matched to
//! its shipment or kept for an admin when the tracking number is unknown; and the ids of the
//! signals already taken, so a replayed webhook changes nothing.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TrackingScans::Table)
                .col(pk_uuid(TrackingScans::Id))
                // None: no shipment has this tracking number (listed for an admin).
                .col(uuid_null(TrackingScans::ShipmentId))
                .col(string(TrackingScans::TrackingNumber))
                .col(string_null(TrackingScans::Carrier))
                .col(string(TrackingScans::Status))
                .col(timestamp_with_time_zone(TrackingScans::At))
                .col(string_null(TrackingScans::Location))
                .col(text_null(TrackingScans::Message))
                .col(string(TrackingScans::Source))
                .col(timestamp_with_time_zone(TrackingScans::ReceivedAt))
                // The same scan reported twice (every EasyPost update repeats the whole history).
                .col(string_uniq(TrackingScans::ScanKey))
                .foreign_key(
                    ForeignKey::create()
                        .from(TrackingScans::Table, TrackingScans::ShipmentId)
                        .to(Shipments::Table, Shipments::Id),
                )
                .to_owned(),
        )
        .await?;
        for (name, column) in [
            ("idx_tracking_scans_shipment", TrackingScans::ShipmentId),
            ("idx_tracking_scans_tracking_number", TrackingScans::TrackingNumber),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(TrackingScans::Table)
                    .col(column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(IntegrationReceipts::Table)
                .col(pk_uuid(IntegrationReceipts::Id))
                .col(string(IntegrationReceipts::Source))
                .col(string(IntegrationReceipts::ExternalId))
                .col(timestamp_with_time_zone(IntegrationReceipts::ReceivedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_integration_receipts_source_id")
                .table(IntegrationReceipts::Table)
                .col(IntegrationReceipts::Source)
                .col(IntegrationReceipts::ExternalId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IntegrationReceipts::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(TrackingScans::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum TrackingScans {
    Table,
    Id,
    ShipmentId,
    TrackingNumber,
    Carrier,
    Status,
    At,
    Location,
    Message,
    Source,
    ReceivedAt,
    ScanKey,
}
#[derive(DeriveIden)]
enum IntegrationReceipts {
    Table,
    Id,
    Source,
    ExternalId,
    ReceivedAt,
}
#[derive(DeriveIden)]
enum Shipments {
    Table,
    Id,
}
