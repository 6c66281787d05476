//! BMC telemetry (DMTF Redfish): each node's event subscription with its BMC credentials
//! (encrypted), the rules that read events as faults (seeded here, edited by admins), every event
//! received, and the recommendation an RMA carries.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// MessageId contains, origin contains, fault code, severity, action, FRU part, description.
type SeedRule = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const SEED: [SeedRule; 8] = [
    (
        "",
        "/Fans/",
        "FAN_FAIL",
        "sev2",
        "replace_fru",
        Some("FAN-80MM"),
        "Fan failed or below its speed threshold",
    ),
    (
        "",
        "/PowerSupplies/",
        "PSU_FAIL",
        "sev2",
        "replace_fru",
        Some("PSU-2000W"),
        "Power supply failed or lost input",
    ),
    (
        "MemoryECC",
        "",
        "DIMM_UE",
        "sev2",
        "replace_node",
        None,
        "Uncorrectable memory (ECC) errors",
    ),
    (
        "",
        "/Memory/",
        "DIMM_UE",
        "sev2",
        "replace_node",
        None,
        "Memory module errors",
    ),
    (
        "Wear",
        "/Drives/",
        "SSD_WEAR",
        "sev3",
        "replace_fru",
        Some("SSD-30T"),
        "SSD endurance nearly used up",
    ),
    (
        "",
        "/Drives/",
        "SSD_FAIL",
        "sev2",
        "replace_fru",
        Some("SSD-30T"),
        "SSD failed or predicted to fail",
    ),
    (
        "",
        "/Temperatures/",
        "TEMP_HIGH",
        "sev3",
        "power_cycle",
        None,
        "Temperature above its threshold: check airflow and fans, then power-cycle",
    ),
    (
        "",
        "/NetworkPorts/",
        "LINK_DOWN",
        "sev3",
        "reseat",
        None,
        "Network link down: reseat the cable and transceiver",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .add_column(json_null(Rmas::Recommendation))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BmcSubscriptions::Table)
                .col(pk_uuid(BmcSubscriptions::Id))
                .col(uuid_uniq(BmcSubscriptions::UnitId))
                .col(string(BmcSubscriptions::BmcUrl))
                // XChaCha20-Poly1305 under DEPOT_SECRET_KEY: nonce and ciphertext, hex.
                .col(text(BmcSubscriptions::CredentialsSealed))
                .col(string_null(BmcSubscriptions::SubscriptionUri))
                .col(timestamp_with_time_zone(BmcSubscriptions::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(BmcSubscriptions::Table, BmcSubscriptions::UnitId)
                        .to(Units::Table, Units::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RedfishRules::Table)
                .col(pk_uuid(RedfishRules::Id))
                .col(integer(RedfishRules::Position))
                .col(string(RedfishRules::MessageIdContains))
                .col(string(RedfishRules::OriginContains))
                .col(string(RedfishRules::FaultCode))
                .col(string(RedfishRules::Severity))
                .col(string(RedfishRules::Action))
                .col(string_null(RedfishRules::Part))
                .col(string(RedfishRules::Description))
                .to_owned(),
        )
        .await?;
        for (i, (message_id, origin, fault, severity, action, part, description)) in SEED.into_iter().enumerate() {
            let id = sea_orm_migration::sea_orm::prelude::Uuid::now_v7();
            m.exec_stmt(
                Query::insert()
                    .into_table(RedfishRules::Table)
                    .columns([
                        RedfishRules::Id,
                        RedfishRules::Position,
                        RedfishRules::MessageIdContains,
                        RedfishRules::OriginContains,
                        RedfishRules::FaultCode,
                        RedfishRules::Severity,
                        RedfishRules::Action,
                        RedfishRules::Part,
                        RedfishRules::Description,
                    ])
                    .values_panic([
                        id.into(),
                        ((i as i32 + 1) * 10).into(),
                        message_id.into(),
                        origin.into(),
                        fault.into(),
                        severity.into(),
                        action.into(),
                        part.map(str::to_string).into(),
                        description.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(RedfishEvents::Table)
                .col(pk_uuid(RedfishEvents::Id))
                .col(string(RedfishEvents::Serial))
                .col(uuid_null(RedfishEvents::RmaId))
                .col(string(RedfishEvents::MessageId))
                .col(string(RedfishEvents::Severity))
                .col(text_null(RedfishEvents::Message))
                .col(string(RedfishEvents::Origin))
                .col(timestamp_with_time_zone(RedfishEvents::At))
                .col(timestamp_with_time_zone(RedfishEvents::ReceivedAt))
                // A BMC that resends an event (it retries until it hears 2xx) records it once.
                .col(string_uniq(RedfishEvents::EventKey))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_redfish_events_serial_received")
                .table(RedfishEvents::Table)
                .col(RedfishEvents::Serial)
                .col(RedfishEvents::ReceivedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RedfishEvents::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(RedfishRules::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(BmcSubscriptions::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Rmas::Table)
                .drop_column(Rmas::Recommendation)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Rmas {
    Table,
    Recommendation,
}
#[derive(DeriveIden)]
enum Units {
    Table,
    Id,
}
#[derive(DeriveIden)]
enum BmcSubscriptions {
    Table,
    Id,
    UnitId,
    BmcUrl,
    CredentialsSealed,
    SubscriptionUri,
    CreatedAt,
}
#[derive(DeriveIden)]
enum RedfishRules {
    Table,
    Id,
    Position,
    MessageIdContains,
    OriginContains,
    FaultCode,
    Severity,
    Action,
    Part,
    Description,
}
#[derive(DeriveIden)]
enum RedfishEvents {
    Table,
    Id,
    Serial,
    RmaId,
    MessageId,
    Severity,
    Message,
    Origin,
    At,
    ReceivedAt,
    EventKey,
}
