//! Who is on call for an organization: a weekly rotation, unless an override covers the moment.
use crate::entities::oncall_shift;
use crate::error::AppResult;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

pub const ROTATION: &str = "rotation";
pub const OVERRIDE: &str = "override";

/// The on-call person of `organization_id` at `at`: the latest override covering `at`, else the
/// member whose week it is in the latest rotation started before `at`.
pub async fn on_call(db: &impl ConnectionTrait, organization_id: Uuid, at: DateTime<Utc>) -> AppResult<Option<String>> {
    let shifts = oncall_shift::Entity::find()
        .filter(oncall_shift::Column::OrganizationId.eq(organization_id))
        .filter(oncall_shift::Column::StartsAt.lte(at))
        .order_by_desc(oncall_shift::Column::Id)
        .all(db)
        .await?;
    let members =
        |s: &oncall_shift::Model| serde_json::from_value::<Vec<String>>(s.members.clone()).unwrap_or_default();
    if let Some(o) = shifts
        .iter()
        .find(|s| s.kind == OVERRIDE && s.ends_at.is_some_and(|end| end > at))
    {
        return Ok(members(o).into_iter().next());
    }
    Ok(shifts.iter().find(|s| s.kind == ROTATION).and_then(|r| {
        let members = members(r);
        let week = (at - r.starts_at).num_weeks().max(0) as usize;
        (!members.is_empty()).then(|| members[week % members.len()].clone())
    }))
}

/// Starts a rotation (members take a week each from `starts_at`) or an override (one person until `ends_at`).
pub async fn add_shift(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    kind: &str,
    members: Vec<String>,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> AppResult<()> {
    oncall_shift::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        kind: Set(kind.into()),
        members: Set(serde_json::json!(members)),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
    }
    .insert(db)
    .await?;
    Ok(())
}
