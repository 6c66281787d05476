//! A customer, or the vendor itself.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub kind: String,
    pub created_at: DateTimeUtc,
    /// A chat incoming-webhook URL that receives this organization's notifications.
    pub webhook_url: Option<String>,
    /// Internal on-call addresses for alerts (SLA breaches).
    pub oncall_emails: Option<Json>,
    /// Checklist steps that must be recorded before an RMA of this organization is approved.
    pub mandatory_checks: Option<Json>,
    /// How alarm severities (`critical`, `major`…) map to `sev1`..`sev4` for this organization.
    pub severity_map: Option<Json>,
    /// Service-level budgets (`domain::sla::Policy`); SPEC §4's defaults when empty.
    pub sla_policy: Option<Json>,
    /// Business-hour calendar (`domain::sla::Calendar`).
    pub calendar: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
