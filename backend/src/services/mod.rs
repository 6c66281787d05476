//! Use cases. Each takes the acting user and runs in one database transaction; access checks live here.
pub mod admin;
pub mod alarms;
pub mod alerts;
pub mod attachments;
pub mod auth;
pub mod charts;
pub mod csv_files;
pub mod dashboard;
pub mod diagnosis;
pub mod fixtures;
pub mod genealogy;
pub mod history;
pub mod labels;
pub mod oncall;
pub mod quality;
pub mod receiving;
pub mod redfish;
pub mod reliability;
pub mod repairs;
pub mod rmas;
pub mod sessions;
pub mod sla;
pub mod slack;
pub mod spares;
pub mod stock;
pub mod tokens;
pub mod tracking;
pub mod transfer;
pub mod units;
pub mod views;

use crate::domain::Role;
use crate::error::{AppError, AppResult};
use serde::Serialize;
use uuid::Uuid;

/// The signed-in user a request acts as.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub organization_id: Uuid,
    /// The depot a depot technician works at.
    pub depot_id: Option<Uuid>,
    pub depot_code: Option<String>,
}

impl Actor {
    /// A customer's technician sees only their own organization's records.
    pub fn organization_scope(&self) -> Option<Uuid> {
        (self.role == Role::DcTech).then_some(self.organization_id)
    }

    /// The depot a depot technician works at: receiving and shipping happen at one's own bench.
    pub fn bench_depot(&self, doing: &str) -> AppResult<Uuid> {
        self.require(&[Role::DepotTech], doing)?;
        self.depot_id
            .ok_or_else(|| AppError::Forbidden("you are not assigned to a depot".into()))
    }

    pub fn require(&self, roles: &[Role], doing: &str) -> AppResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::Forbidden(format!(
                "a {} may not {doing}; that is for: {}",
                self.role,
                allowed.join(", ")
            )))
        }
    }
}

/// A page of a list: the contract's `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// Page size bounds shared by every list.
pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

/// Validates a requested page size.
pub fn page_limit(limit: Option<u64>) -> AppResult<u64> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(AppError::invalid(format!(
            "limit {n} is out of range; use 1 to {MAX_LIMIT}"
        ))),
    }
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn paginate<T, R>(
    mut rows: Vec<R>,
    limit: u64,
    cursor_of: impl Fn(&R) -> String,
    view: impl FnOnce(Vec<R>) -> Vec<T>,
) -> Page<T> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&cursor_of) } else { None };
    Page {
        items: view(rows),
        next_cursor,
    }
}

/// Parses an id cursor handed out by [`paginate`].
pub fn parse_cursor(cursor: Option<&str>) -> AppResult<Option<Uuid>> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| AppError::Malformed(format!("cursor `{c}` is not one this API handed out")))
        })
        .transpose()
}
