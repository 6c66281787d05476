//! The data model of SPEC §2: reference data, units, users, RMAs and their history.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(table: impl IntoIden, col: impl IntoIden, to: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(to, Alias::new("id"))
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index(table: impl IntoIden, name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table.into_iden());
    for col in cols {
        idx.col(Alias::new(*col));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Organizations::Table)
                .col(pk_uuid(Organizations::Id))
                .col(string_uniq(Organizations::Code))
                .col(string(Organizations::Name))
                .col(string(Organizations::Kind))
                .col(timestamp_with_time_zone(Organizations::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Depots::Table)
                .col(pk_uuid(Depots::Id))
                .col(string_uniq(Depots::Code))
                .col(string(Depots::Name))
                .col(string(Depots::Street))
                .col(string(Depots::City))
                .col(string(Depots::Region))
                .col(string(Depots::PostalCode))
                .col(string(Depots::Country))
                .col(timestamp_with_time_zone(Depots::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Sites::Table)
                .col(pk_uuid(Sites::Id))
                .col(string_uniq(Sites::Code))
                .col(uuid(Sites::OrganizationId))
                .col(string(Sites::Name))
                .col(string(Sites::Street))
                .col(string(Sites::City))
                .col(string(Sites::Region))
                .col(string(Sites::PostalCode))
                .col(string(Sites::Country))
                .col(json(Sites::ContactEmails))
                .col(string(Sites::Coverage))
                .col(uuid(Sites::DefaultDepotId))
                .col(timestamp_with_time_zone(Sites::CreatedAt))
                .foreign_key(&mut fk(Sites::Table, Sites::OrganizationId, Organizations::Table))
                .foreign_key(&mut fk(Sites::Table, Sites::DefaultDepotId, Depots::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Sites::Table, "idx_sites_organization", &["organization_id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Clusters::Table)
                .col(pk_uuid(Clusters::Id))
                .col(uuid(Clusters::SiteId))
                .col(string(Clusters::Name))
                .col(string(Clusters::Kind))
                .col(timestamp_with_time_zone(Clusters::CreatedAt))
                .foreign_key(&mut fk(Clusters::Table, Clusters::SiteId, Sites::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(Clusters::Table, "uq_clusters_site_name", &["site_id", "name"])
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Slots::Table)
                .col(pk_uuid(Slots::Id))
                .col(uuid(Slots::ClusterId))
                .col(uuid_null(Slots::ParentSlotId))
                .col(string(Slots::Name))
                .col(string(Slots::Rack))
                .col(integer_null(Slots::RackUnit))
                .col(string_null(Slots::Hostname))
                .col(string_null(Slots::Bay))
                .col(timestamp_with_time_zone(Slots::CreatedAt))
                .foreign_key(&mut fk(Slots::Table, Slots::ClusterId, Clusters::Table))
                .foreign_key(&mut fk(Slots::Table, Slots::ParentSlotId, Slots::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(Slots::Table, "uq_slots_cluster_name", &["cluster_id", "name"])
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Parts::Table)
                .col(pk_uuid(Parts::Id))
                .col(string_uniq(Parts::Number))
                .col(string(Parts::Kind))
                .col(string(Parts::Description))
                .col(boolean(Parts::FieldReplaceable))
                .col(boolean(Parts::HoldsMedia))
                .col(timestamp_with_time_zone(Parts::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Units::Table)
                .col(pk_uuid(Units::Id))
                .col(string_uniq(Units::Serial))
                .col(uuid(Units::PartId))
                .col(string(Units::Condition))
                .col(string(Units::Location))
                .col(uuid_null(Units::SiteId))
                .col(uuid_null(Units::DepotId))
                .col(uuid_null(Units::SlotId))
                .col(uuid_null(Units::ParentUnitId))
                .col(uuid_null(Units::ReplacedByUnitId))
                .col(timestamp_with_time_zone(Units::CreatedAt))
                .col(timestamp_with_time_zone(Units::UpdatedAt))
                .foreign_key(&mut fk(Units::Table, Units::PartId, Parts::Table))
                .foreign_key(&mut fk(Units::Table, Units::SiteId, Sites::Table))
                .foreign_key(&mut fk(Units::Table, Units::DepotId, Depots::Table))
                .foreign_key(&mut fk(Units::Table, Units::SlotId, Slots::Table))
                .foreign_key(&mut fk(Units::Table, Units::ParentUnitId, Units::Table))
                .foreign_key(&mut fk(Units::Table, Units::ReplacedByUnitId, Units::Table))
                .to_owned(),
        )
        .await?;
        // One unit per slot; NULLs (units not installed) do not collide.
        m.create_index(index(Units::Table, "uq_units_slot", &["slot_id"]).unique().to_owned())
            .await?;
        m.create_index(index(
            Units::Table,
            "idx_units_stock",
            &["depot_id", "part_id", "condition"],
        ))
        .await?;
        m.create_index(index(Units::Table, "idx_units_site", &["site_id", "serial"]))
            .await?;
        m.create_index(index(Units::Table, "idx_units_parent", &["parent_unit_id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                .col(string_uniq(Users::Email))
                .col(string(Users::Name))
                .col(string(Users::Role))
                .col(uuid(Users::OrganizationId))
                .col(uuid_null(Users::DepotId))
                .col(string(Users::PasswordHash))
                .col(boolean(Users::Disabled))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .foreign_key(&mut fk(Users::Table, Users::OrganizationId, Organizations::Table))
                .foreign_key(&mut fk(Users::Table, Users::DepotId, Depots::Table))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(pk_uuid(ApiTokens::Id))
                .col(uuid(ApiTokens::UserId))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(string(ApiTokens::Label))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                .foreign_key(&mut fk(ApiTokens::Table, ApiTokens::UserId, Users::Table))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RmaCounters::Table)
                .col(integer(RmaCounters::Year).primary_key())
                .col(big_integer(RmaCounters::LastNumber))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Rmas::Table)
                .col(pk_uuid(Rmas::Id))
                .col(string_uniq(Rmas::Number))
                .col(uuid(Rmas::OrganizationId))
                .col(uuid(Rmas::SiteId))
                .col(uuid_null(Rmas::ClusterId))
                .col(uuid_null(Rmas::SlotId))
                .col(uuid(Rmas::UnitId))
                .col(uuid(Rmas::PartId))
                .col(uuid(Rmas::ReturnedUnitId))
                .col(string(Rmas::Severity))
                .col(text(Rmas::Symptom))
                .col(string(Rmas::Status))
                .col(integer(Rmas::Version))
                .col(json(Rmas::ExternalRefs))
                .col(string_null(Rmas::FaultCode))
                .col(text_null(Rmas::Resolution))
                .col(string_null(Rmas::ReplacementKind))
                .col(uuid_null(Rmas::ReplacementPartId))
                .col(uuid_null(Rmas::ReplacementUnitId))
                .col(uuid(Rmas::ReturnDepotId))
                .col(uuid(Rmas::CreatedBy))
                .col(timestamp_with_time_zone(Rmas::CreatedAt))
                .col(timestamp_with_time_zone(Rmas::UpdatedAt))
                .col(timestamp_with_time_zone(Rmas::StatusChangedAt))
                .col(timestamp_with_time_zone_null(Rmas::ClosedAt))
                .foreign_key(&mut fk(Rmas::Table, Rmas::OrganizationId, Organizations::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::SiteId, Sites::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::ClusterId, Clusters::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::SlotId, Slots::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::UnitId, Units::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::PartId, Parts::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::ReturnedUnitId, Units::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::ReplacementPartId, Parts::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::ReplacementUnitId, Units::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::ReturnDepotId, Depots::Table))
                .foreign_key(&mut fk(Rmas::Table, Rmas::CreatedBy, Users::Table))
                .to_owned(),
        )
        .await?;
        // Lists are newest first by id (UUIDv7 sorts by creation time) within each filter.
        for (name, cols) in [
            ("idx_rmas_org", &["organization_id", "id"][..]),
            ("idx_rmas_status", &["status", "id"]),
            ("idx_rmas_site", &["site_id", "id"]),
            ("idx_rmas_severity", &["severity", "id"]),
            ("idx_rmas_depot_status", &["return_depot_id", "status"]),
            ("idx_rmas_unit", &["unit_id"]),
            ("idx_rmas_returned_unit", &["returned_unit_id"]),
            ("idx_rmas_replacement_unit", &["replacement_unit_id"]),
        ] {
            m.create_index(index(Rmas::Table, name, cols)).await?;
        }
        m.create_table(
            Table::create()
                .table(RmaWatchers::Table)
                .col(uuid(RmaWatchers::RmaId))
                .col(uuid(RmaWatchers::UserId))
                .primary_key(Index::create().col(RmaWatchers::RmaId).col(RmaWatchers::UserId))
                .foreign_key(&mut fk(RmaWatchers::Table, RmaWatchers::RmaId, Rmas::Table))
                .foreign_key(&mut fk(RmaWatchers::Table, RmaWatchers::UserId, Users::Table))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Shipments::Table)
                .col(pk_uuid(Shipments::Id))
                .col(uuid(Shipments::RmaId))
                .col(uuid(Shipments::UnitId))
                .col(string(Shipments::Direction))
                .col(string(Shipments::Carrier))
                .col(string(Shipments::TrackingNumber))
                .col(text(Shipments::FromAddress))
                .col(text(Shipments::ToAddress))
                .col(uuid_null(Shipments::DepotId))
                .col(integer(Shipments::Packages))
                .col(double_null(Shipments::WeightKg))
                .col(timestamp_with_time_zone(Shipments::ShippedAt))
                .col(timestamp_with_time_zone_null(Shipments::DeliveredAt))
                .foreign_key(&mut fk(Shipments::Table, Shipments::RmaId, Rmas::Table))
                .foreign_key(&mut fk(Shipments::Table, Shipments::UnitId, Units::Table))
                .foreign_key(&mut fk(Shipments::Table, Shipments::DepotId, Depots::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Shipments::Table, "idx_shipments_rma", &["rma_id"]))
            .await?;
        m.create_index(index(Shipments::Table, "idx_shipments_tracking", &["tracking_number"]))
            .await?;
        m.create_table(
            Table::create()
                .table(RepairRecords::Table)
                .col(pk_uuid(RepairRecords::Id))
                .col(uuid(RepairRecords::RmaId))
                .col(uuid(RepairRecords::UnitId))
                .col(string(RepairRecords::Kind))
                .col(json(RepairRecords::Details))
                .col(uuid(RepairRecords::ActorId))
                .col(timestamp_with_time_zone(RepairRecords::CreatedAt))
                .foreign_key(&mut fk(RepairRecords::Table, RepairRecords::RmaId, Rmas::Table))
                .foreign_key(&mut fk(RepairRecords::Table, RepairRecords::UnitId, Units::Table))
                .foreign_key(&mut fk(RepairRecords::Table, RepairRecords::ActorId, Users::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(index(RepairRecords::Table, "idx_repair_records_rma", &["rma_id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(pk_uuid(Events::Id))
                .col(uuid(Events::RmaId))
                .col(string(Events::Kind))
                .col(string_null(Events::FromStatus))
                .col(string_null(Events::ToStatus))
                .col(uuid_null(Events::ActorId))
                .col(string(Events::ActorEmail))
                .col(timestamp_with_time_zone(Events::At))
                .col(text_null(Events::Note))
                .col(json(Events::Fields))
                .foreign_key(&mut fk(Events::Table, Events::RmaId, Rmas::Table))
                .foreign_key(&mut fk(Events::Table, Events::ActorId, Users::Table))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Events::Table, "idx_events_rma", &["rma_id", "id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(pk_uuid(Notifications::Id))
                .col(uuid(Notifications::EventId))
                .col(uuid(Notifications::RmaId))
                .col(string(Notifications::Template))
                .col(string(Notifications::Channel))
                .col(json(Notifications::Recipients))
                .col(string(Notifications::State))
                .col(integer(Notifications::Attempts))
                .col(timestamp_with_time_zone(Notifications::NextAttemptAt))
                .col(text_null(Notifications::LastError))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone_null(Notifications::SentAt))
                .foreign_key(&mut fk(Notifications::Table, Notifications::EventId, Events::Table))
                .foreign_key(&mut fk(Notifications::Table, Notifications::RmaId, Rmas::Table))
                .to_owned(),
        )
        .await?;
        // The same event never produces the same message twice.
        m.create_index(
            index(
                Notifications::Table,
                "uq_notifications_event",
                &["event_id", "template", "channel"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            Notifications::Table,
            "idx_notifications_due",
            &["state", "next_attempt_at"],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            Events::Table.into_iden(),
            RepairRecords::Table.into_iden(),
            Shipments::Table.into_iden(),
            RmaWatchers::Table.into_iden(),
            Rmas::Table.into_iden(),
            RmaCounters::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Units::Table.into_iden(),
            Parts::Table.into_iden(),
            Slots::Table.into_iden(),
            Clusters::Table.into_iden(),
            Sites::Table.into_iden(),
            Depots::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Code,
    Name,
    Kind,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Depots {
    Table,
    Id,
    Code,
    Name,
    Street,
    City,
    Region,
    PostalCode,
    Country,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
    Code,
    OrganizationId,
    Name,
    Street,
    City,
    Region,
    PostalCode,
    Country,
    ContactEmails,
    Coverage,
    DefaultDepotId,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
    SiteId,
    Name,
    Kind,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    ClusterId,
    ParentSlotId,
    Name,
    Rack,
    RackUnit,
    Hostname,
    Bay,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Parts {
    Table,
    Id,
    Number,
    Kind,
    Description,
    FieldReplaceable,
    HoldsMedia,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
    Serial,
    PartId,
    Condition,
    Location,
    SiteId,
    DepotId,
    SlotId,
    ParentUnitId,
    ReplacedByUnitId,
    CreatedAt,
    UpdatedAt,
}
#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    Role,
    OrganizationId,
    DepotId,
    PasswordHash,
    Disabled,
    CreatedAt,
}
#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    Label,
    CreatedAt,
    RevokedAt,
}
#[derive(DeriveIden)]
enum RmaCounters {
    Table,
    Year,
    LastNumber,
}
#[derive(DeriveIden)]
enum Rmas {
    Table,
    Id,
    Number,
    OrganizationId,
    SiteId,
    ClusterId,
    SlotId,
    UnitId,
    PartId,
    ReturnedUnitId,
    Severity,
    Symptom,
    Status,
    Version,
    ExternalRefs,
    FaultCode,
    Resolution,
    ReplacementKind,
    ReplacementPartId,
    ReplacementUnitId,
    ReturnDepotId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    StatusChangedAt,
    ClosedAt,
}
#[derive(DeriveIden)]
enum RmaWatchers {
    Table,
    RmaId,
    UserId,
}
#[derive(DeriveIden)]
enum Shipments {
    Table,
    Id,
    RmaId,
    UnitId,
    Direction,
    Carrier,
    TrackingNumber,
    FromAddress,
    ToAddress,
    DepotId,
    Packages,
    WeightKg,
    ShippedAt,
    DeliveredAt,
}
#[derive(DeriveIden)]
enum RepairRecords {
    Table,
    Id,
    RmaId,
    UnitId,
    Kind,
    Details,
    ActorId,
    CreatedAt,
}
#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    RmaId,
    Kind,
    FromStatus,
    ToStatus,
    ActorId,
    ActorEmail,
    At,
    Note,
    Fields,
}
#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    EventId,
    RmaId,
    Template,
    Channel,
    Recipients,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
}
