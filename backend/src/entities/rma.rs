//! The case.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rmas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub number: String,
    pub organization_id: Uuid,
    pub site_id: Uuid,
    pub cluster_id: Option<Uuid>,
    pub slot_id: Option<Uuid>,
    pub unit_id: Uuid,
    pub part_id: Uuid,
    pub returned_unit_id: Uuid,
    pub severity: String,
    #[sea_orm(column_type = "Text")]
    pub symptom: String,
    pub status: String,
    pub version: i32,
    pub external_refs: Json,
    pub fault_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub resolution: Option<String>,
    pub replacement_kind: Option<String>,
    pub replacement_part_id: Option<Uuid>,
    pub replacement_unit_id: Option<Uuid>,
    pub return_depot_id: Uuid,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub status_changed_at: DateTimeUtc,
    pub closed_at: Option<DateTimeUtc>,
    /// The sealed-bag number a unit holding customer data was packed in at the pull.
    pub bag_number: Option<String>,
    /// The customer keeps the failed drive: nothing ships back; the RMA closes on their
    /// destruction certificate.
    pub keep_your_drive: bool,
    pub destruction_certificate: Option<String>,
    /// Technician time spent at the depot, summed over the transitions that reported it.
    pub labor_minutes: i32,
    /// How many entries its depot record holds (kept as transitions add them, so the answer
    /// shows the total without counting them).
    pub repair_entries: i32,
    /// The external references' values, upper-cased, for search.
    pub refs_text: String,
    /// What a BMC event advised (`domain::redfish::Recommendation`), when one opened or joined it.
    pub recommendation: Option<Json>,
    /// When the replacement this RMA shipped was reported dead on arrival.
    pub dead_on_arrival_at: Option<DateTimeUtc>,
    /// The first time the RMA entered each status (`domain::sla::Entered`): what its clocks need.
    pub status_entered: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Read with the RMA when a transition starts: its plan needs the site, its answer the
    /// organization's clocks.
    #[sea_orm(
        belongs_to = "super::site::Entity",
        from = "Column::SiteId",
        to = "super::site::Column::Id"
    )]
    Site,
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
}

impl Related<super::site::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Site.def()
    }
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
