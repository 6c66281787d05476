//! Warnings read from a unit's and a slot's history: a serial that fails again soon after an
//! earlier RMA, and a slot that keeps eating units (a chassis or backplane problem, SPEC §2).
use crate::domain::lifecycle::Status;
use crate::entities::rma;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

/// A serial with another RMA within this many days is a repeat failure.
pub const REPEAT_DAYS: i64 = 90;
/// A slot that failed two different units within this many days is suspect.
pub const SLOT_DAYS: i64 = 180;

pub const REPEAT_FAILURE: &str = "repeat_failure";
pub const SLOT_EATS_UNITS: &str = "slot_eats_units";

/// One warning, with the RMAs it rests on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flag {
    /// `repeat_failure` or `slot_eats_units`.
    pub code: &'static str,
    pub message: String,
    pub rmas: Vec<String>,
}

/// The end states of RMAs that took no unit out of service: cancelled, or restored in the field.
const NO_UNIT_LOST: [Status; 2] = [Status::Cancelled, Status::Restored];

/// RMAs that took a unit out of service, as a query condition.
fn ate_a_unit() -> Condition {
    Condition::all().add(rma::Column::Status.is_not_in(NO_UNIT_LOST.map(|s| s.as_str())))
}

/// Whether an RMA in `status` took a unit out of service.
fn took_a_unit(status: &str) -> bool {
    !NO_UNIT_LOST.iter().any(|s| status == s.as_str())
}

/// RMAs the viewer may see: a customer's own only (a refurbished unit may have served another).
fn visible(scope: Option<Uuid>) -> Condition {
    match scope {
        Some(org) => Condition::all().add(rma::Column::OrganizationId.eq(org)),
        None => Condition::all(),
    }
}

/// The column of [`earlier_rmas`].
pub const EARLIER: &str = "earlier_rmas";

/// The RMAs an outer `rmas` row's flags rest on, as a correlated subquery, so they come with the
/// read of the RMA itself: those opened on its unit or in its slot over the longer look back
/// (cancelled ones aside), one per line as `number seconds status same_unit other_unit_in_slot`,
/// `seconds` being when it was opened, in whole seconds since 1970 as `DateTime::timestamp` counts.
/// `scoped` keeps them to the RMA's own organization (a customer's view: a refurbished unit may
/// have served another customer).
pub fn earlier_rmas(backend: DbBackend, scoped: bool) -> Expr {
    let window = REPEAT_DAYS.max(SLOT_DAYS);
    let (seconds, since) = match backend {
        DbBackend::Postgres => (
            r#"CAST(FLOOR(EXTRACT(EPOCH FROM e."created_at")) AS BIGINT)"#.to_string(),
            format!(r#"e."created_at" >= "rmas"."created_at" - INTERVAL '{window} days'"#),
        ),
        _ => (
            r#"CAST(strftime('%s', e."created_at") AS INTEGER)"#.to_string(),
            format!(
                r#"CAST(strftime('%s', e."created_at") AS INTEGER) >= CAST(strftime('%s', "rmas"."created_at") AS INTEGER) - {}"#,
                window * 86_400
            ),
        ),
    };
    let same_unit =
        r#"CASE WHEN e."unit_id" = "rmas"."unit_id" OR e."returned_unit_id" = "rmas"."unit_id" THEN '1' ELSE '0' END"#;
    let other_unit_in_slot =
        r#"CASE WHEN e."slot_id" = "rmas"."slot_id" AND e."unit_id" <> "rmas"."unit_id" THEN '1' ELSE '0' END"#;
    let scope = match scoped {
        true => r#" AND e."organization_id" = "rmas"."organization_id""#,
        false => "",
    };
    let joined = crate::db::lines_of(
        backend,
        &format!(
            r#"e."number" || ' ' || {seconds} || ' ' || e."status" || ' ' || {same_unit} || ' ' || {other_unit_in_slot}"#
        ),
    );
    Expr::cust(format!(
        r#"(SELECT {joined} FROM "rmas" e WHERE (e."unit_id" = "rmas"."unit_id" OR e."returned_unit_id" = "rmas"."unit_id" OR e."slot_id" = "rmas"."slot_id") AND e."id" <> "rmas"."id" AND e."status" <> '{cancelled}' AND e."created_at" <= "rmas"."created_at" AND {since}{scope})"#,
        cancelled = Status::Cancelled.as_str(),
    ))
}

/// One line of [`earlier_rmas`].
struct Earlier<'a> {
    number: &'a str,
    opened: i64,
    status: &'a str,
    same_unit: bool,
    other_unit_in_slot: bool,
}

impl<'a> Earlier<'a> {
    fn parse(line: &'a str) -> Option<Earlier<'a>> {
        let mut fields = line.split(' ');
        Some(Earlier {
            number: fields.next()?,
            opened: fields.next()?.parse().ok()?,
            status: fields.next()?,
            same_unit: fields.next()? == "1",
            other_unit_in_slot: fields.next()? == "1",
        })
    }
}

/// The flags of the RMA `number` opened at `opened_at`, looking back from then, from its
/// [`earlier_rmas`].
pub fn flags_from(number: &str, opened_at: DateTime<Utc>, earlier: Option<&str>) -> Vec<Flag> {
    let mut earlier: Vec<Earlier> = earlier
        .into_iter()
        .flat_map(str::lines)
        .filter_map(Earlier::parse)
        .collect();
    earlier.sort_by(|a, b| (a.opened, a.number).cmp(&(b.opened, b.number)));
    let opened = opened_at.timestamp();
    let within = |x: &Earlier, days: i64| x.opened >= opened - days * 86_400;
    let mut flags = vec![];
    let repeats: Vec<&Earlier> = earlier
        .iter()
        .filter(|x| x.same_unit && within(x, REPEAT_DAYS))
        .collect();
    if let Some(last) = repeats.last() {
        flags.push(Flag {
            code: REPEAT_FAILURE,
            message: format!(
                "this unit came back within {REPEAT_DAYS} days: {} was opened on it {} days earlier",
                last.number,
                (opened - last.opened) / 86_400
            ),
            rmas: repeats.iter().map(|x| x.number.to_string()).collect(),
        });
    }
    let ate_units: Vec<String> = earlier
        .iter()
        .filter(|x| x.other_unit_in_slot && took_a_unit(x.status) && within(x, SLOT_DAYS))
        .map(|x| x.number.to_string())
        .collect();
    if !ate_units.is_empty() {
        let mut rmas = ate_units;
        rmas.push(number.to_string());
        flags.push(slot_flag(rmas));
    }
    flags
}

/// The flags of one RMA, naming only RMAs of `scope` if given (and none if it is not `scope`'s).
pub async fn rma_flags(db: &impl ConnectionTrait, r: &rma::Model, scope: Option<Uuid>) -> Result<Vec<Flag>, DbErr> {
    let mut query = rma::Entity::find()
        .select_only()
        .expr_as(earlier_rmas(db.get_database_backend(), scope.is_some()), EARLIER)
        .filter(rma::Column::Id.eq(r.id));
    if let Some(org) = scope {
        query = query.filter(rma::Column::OrganizationId.eq(org));
    }
    let earlier: Option<Option<String>> = query.into_tuple().one(db).await?;
    Ok(flags_from(&r.number, r.created_at, earlier.flatten().as_deref()))
}

fn slot_flag(rmas: Vec<String>) -> Flag {
    Flag {
        code: SLOT_EATS_UNITS,
        message: format!(
            "this slot has failed {} different units within {SLOT_DAYS} days: suspect the chassis or \
             backplane, not only the unit",
            rmas.len()
        ),
        rmas,
    }
}

/// A slot's flag as of `now`: two or more different units failed in it over the last
/// [`SLOT_DAYS`] days.
///
/// A slot belongs to one customer's site, so its RMAs are all that customer's.
pub async fn slot_flags(db: &impl ConnectionTrait, slot_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Flag>, DbErr> {
    let recent = rma::Entity::find()
        .filter(rma::Column::SlotId.eq(slot_id))
        .filter(ate_a_unit())
        .filter(rma::Column::CreatedAt.gte(now - Duration::days(SLOT_DAYS)))
        .order_by_asc(rma::Column::CreatedAt)
        .all(db)
        .await?;
    let mut units: Vec<Uuid> = recent.iter().map(|r| r.unit_id).collect();
    units.sort();
    units.dedup();
    Ok(match units.len() >= 2 {
        true => vec![slot_flag(recent.into_iter().map(|r| r.number).collect())],
        false => vec![],
    })
}

/// A unit's flag: two of its RMAs opened within [`REPEAT_DAYS`] days of each other.
pub async fn unit_flags(db: &impl ConnectionTrait, unit_id: Uuid, scope: Option<Uuid>) -> Result<Vec<Flag>, DbErr> {
    let rmas = rma::Entity::find()
        .filter(visible(scope))
        .filter(
            Condition::any()
                .add(rma::Column::UnitId.eq(unit_id))
                .add(rma::Column::ReturnedUnitId.eq(unit_id)),
        )
        .filter(rma::Column::Status.ne(Status::Cancelled.as_str()))
        .order_by_asc(rma::Column::CreatedAt)
        .all(db)
        .await?;
    let repeats: Vec<&[rma::Model]> = rmas
        .windows(2)
        .filter(|w| w[1].created_at - w[0].created_at <= Duration::days(REPEAT_DAYS))
        .collect();
    Ok(match repeats.last() {
        Some(pair) => vec![Flag {
            code: REPEAT_FAILURE,
            message: format!(
                "failed again within {REPEAT_DAYS} days: {} was opened {} days after {}",
                pair[1].number,
                (pair[1].created_at - pair[0].created_at).num_days(),
                pair[0].number
            ),
            rmas: pair.iter().map(|r| r.number.clone()).collect(),
        }],
        None => vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn flags(earlier: &[String]) -> Vec<Flag> {
        let opened = DateTime::from_timestamp(1_000 * DAY, 0).unwrap();
        flags_from("RMA-2026-000009", opened, Some(&earlier.join("\n")))
    }

    /// A line as [`earlier_rmas`] gives it, for an RMA opened `days_before` the one flagged.
    fn line(number: &str, days_before: i64, status: &str, same_unit: bool, other_unit_in_slot: bool) -> String {
        let bit = |b: bool| if b { "1" } else { "0" };
        format!(
            "{number} {} {status} {} {}",
            (1_000 - days_before) * DAY,
            bit(same_unit),
            bit(other_unit_in_slot)
        )
    }

    #[test]
    fn a_repeat_names_every_earlier_rma_of_the_unit_within_90_days_and_counts_from_the_latest() {
        let flags = flags(&[
            line("RMA-2026-000003", 30, "restored", true, false),
            line("RMA-2026-000001", 95, "scrapped", true, false),
            line("RMA-2026-000002", 89, "scrapped", true, false),
        ]);
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].code, REPEAT_FAILURE);
        assert_eq!(flags[0].rmas, ["RMA-2026-000002", "RMA-2026-000003"]);
        assert!(
            flags[0]
                .message
                .contains("RMA-2026-000003 was opened on it 30 days earlier")
        );
    }

    #[test]
    fn a_slot_flag_counts_other_units_that_were_taken_out_within_180_days() {
        let flags = flags(&[
            line("RMA-2026-000001", 200, "scrapped", false, true),
            line("RMA-2026-000002", 150, "restored", false, true),
            line("RMA-2026-000004", 120, "scrapped", false, true),
            line("RMA-2026-000005", 60, "scrapped", false, false),
        ]);
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].code, SLOT_EATS_UNITS);
        assert_eq!(flags[0].rmas, ["RMA-2026-000004", "RMA-2026-000009"]);
    }

    #[test]
    fn nothing_earlier_or_unreadable_lines_give_no_flags() {
        assert!(flags(&[]).is_empty());
        assert!(flags(&["RMA-2026-000001 not-a-number closed 1 1".into()]).is_empty());
        let opened = DateTime::from_timestamp(1_000 * DAY, 0).unwrap();
        assert!(flags_from("RMA-2026-000009", opened, None).is_empty());
    }
}
