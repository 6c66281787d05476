//! Database migrations for depot, shared by SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_initial;
mod m20261125_000002_sessions_and_slot_history;
mod m20261125_000003_outbox_delivery;
mod m20261125_000004_field_intake;
mod m20261125_000005_sla;
mod m20261125_000006_scale_indexes;
mod m20261125_000007_depot_operations;
mod m20261125_000008_depot_records;
mod m20261203_000009_sign_in_throttle;
mod m20261203_000010_carrier_tracking;
mod m20261203_000011_slack;
mod m20261203_000012_redfish;
mod m20261203_000013_slack_threads;
mod m20261203_000014_unit_lots;
mod m20261204_000015_quality;
mod m20261204_000016_status_entered;
mod m20261204_000017_repair_record_lookups;
mod m20261204_000018_notifications_due_by_channel;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_sessions_and_slot_history::Migration),
            Box::new(m20261125_000003_outbox_delivery::Migration),
            Box::new(m20261125_000004_field_intake::Migration),
            Box::new(m20261125_000005_sla::Migration),
            Box::new(m20261125_000006_scale_indexes::Migration),
            Box::new(m20261125_000007_depot_operations::Migration),
            Box::new(m20261125_000008_depot_records::Migration),
            Box::new(m20261203_000009_sign_in_throttle::Migration),
            Box::new(m20261203_000010_carrier_tracking::Migration),
            Box::new(m20261203_000011_slack::Migration),
            Box::new(m20261203_000012_redfish::Migration),
            Box::new(m20261203_000013_slack_threads::Migration),
            Box::new(m20261203_000014_unit_lots::Migration),
            Box::new(m20261204_000015_quality::Migration),
            Box::new(m20261204_000016_status_entered::Migration),
            Box::new(m20261204_000017_repair_record_lookups::Migration),
            Box::new(m20261204_000018_notifications_due_by_channel::Migration),
        ]
    }
}
