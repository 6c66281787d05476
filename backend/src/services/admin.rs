//! Administration: users, sites, clusters, parts and depots. Every function requires the admin role.
use crate::domain::Role;
use crate::entities::{api_token, cluster, depot, organization, part, session, site, user};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use crate::services::auth::hash_password;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set, Unchanged,
};
use serde::Serialize;
use uuid::Uuid;

fn admin(actor: &Actor) -> AppResult<()> {
    actor.require(&[Role::Admin], "administer depot")
}

/// An organization by its code; an unknown one is a 422 naming it.
async fn organization_by_code(db: &DatabaseConnection, code: &str) -> AppResult<organization::Model> {
    organization::Entity::find()
        .filter(organization::Column::Code.eq(code.trim()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown organization `{}`", code.trim())))
}

fn required<'a>(value: &'a str, what: &str) -> AppResult<&'a str> {
    let v = value.trim();
    if v.is_empty() {
        Err(AppError::invalid(format!("{what} is required")))
    } else {
        Ok(v)
    }
}

#[derive(Debug, Serialize)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub organization: String,
    pub depot: Option<String>,
    pub disabled: bool,
    /// Too many failed sign-ins within the throttle window: the password is not checked until it
    /// ends or an admin unlocks the user.
    pub locked: bool,
    pub active_tokens: usize,
}

pub async fn users(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<UserRow>> {
    admin(actor)?;
    let orgs = crate::services::views::names_by_id::<organization::Entity>(db, |x| x.code).await?;
    let depots = crate::services::views::names_by_id::<depot::Entity>(db, |x| x.code).await?;
    let tokens = api_token::Entity::find()
        .filter(api_token::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    let users = user::Entity::find().order_by_asc(user::Column::Email).all(db).await?;
    let locked = crate::services::sessions::locked_emails(db, Utc::now()).await?;
    Ok(users
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            active_tokens: tokens.iter().filter(|t| t.user_id == u.id).count(),
            locked: locked.contains(&u.email),
            organization: orgs.get(&u.organization_id).cloned().unwrap_or_default(),
            depot: u.depot_id.and_then(|d| depots.get(&d).cloned()),
            email: u.email,
            name: u.name,
            role: u.role,
            disabled: u.disabled,
        })
        .collect())
}

/// What an admin sets on a user.
pub struct UserInput<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub organization: &'a str,
    pub depot: &'a str,
}

async fn resolve_user_input(db: &DatabaseConnection, input: &UserInput<'_>) -> AppResult<(Role, Uuid, Option<Uuid>)> {
    let role: Role = input.role.trim().parse().map_err(AppError::invalid)?;
    let org = organization_by_code(db, input.organization).await?;
    let depot = match input.depot.trim() {
        "" => None,
        code => Some(
            depot::Entity::find()
                .filter(depot::Column::Code.eq(code.to_uppercase()))
                .one(db)
                .await?
                .ok_or_else(|| AppError::invalid(format!("unknown depot `{code}`")))?
                .id,
        ),
    };
    if (role == Role::DepotTech) != depot.is_some() {
        return Err(AppError::invalid(
            "a depot_tech needs a depot, and only a depot_tech has one",
        ));
    }
    if (role == Role::DcTech) == (org.kind == "vendor") {
        return Err(AppError::invalid(
            "a dc_tech belongs to a customer organization; other roles to the vendor",
        ));
    }
    Ok((role, org.id, depot))
}

pub async fn create_user(
    db: &DatabaseConnection,
    actor: &Actor,
    input: UserInput<'_>,
    password: &str,
) -> AppResult<()> {
    admin(actor)?;
    let email = required(input.email, "email")?.to_lowercase();
    if !email.contains('@') {
        return Err(AppError::invalid(format!("`{email}` is not an email address")));
    }
    if password.len() < 10 {
        return Err(AppError::invalid("a password needs at least 10 characters"));
    }
    let (role, org, depot) = resolve_user_input(db, &input).await?;
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        name: Set(required(input.name, "name")?.to_string()),
        role: Set(role.as_str().into()),
        organization_id: Set(org),
        depot_id: Set(depot),
        password_hash: Set(hash_password(password)?),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// One change to a user.
pub enum UserChange<'a> {
    Update(UserInput<'a>),
    Disable,
    Enable,
    ResetPassword(&'a str),
    RevokeTokens,
    /// Lets a user locked out by failed sign-ins (perhaps someone else's guesses) sign in again.
    Unlock,
}

pub async fn change_user(db: &DatabaseConnection, actor: &Actor, id: Uuid, change: UserChange<'_>) -> AppResult<()> {
    admin(actor)?;
    let user = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("no such user"))?;
    let mut am = user::ActiveModel {
        id: Unchanged(id),
        ..Default::default()
    };
    let mut end_sessions = false;
    match change {
        UserChange::Update(input) => {
            let (role, org, depot) = resolve_user_input(db, &input).await?;
            am.name = Set(required(input.name, "name")?.to_string());
            am.role = Set(role.as_str().into());
            am.organization_id = Set(org);
            am.depot_id = Set(depot);
            end_sessions = true;
        }
        UserChange::Disable => {
            if id == actor.user_id {
                return Err(AppError::invalid("you cannot disable yourself"));
            }
            am.disabled = Set(true);
            end_sessions = true;
        }
        UserChange::Enable => am.disabled = Set(false),
        UserChange::ResetPassword(password) => {
            if password.len() < 10 {
                return Err(AppError::invalid("a password needs at least 10 characters"));
            }
            am.password_hash = Set(hash_password(password)?);
            crate::services::sessions::clear_attempts(db, &user.email).await?;
            end_sessions = true;
        }
        UserChange::RevokeTokens => {
            revoke_tokens(db, id).await?;
            return Ok(());
        }
        UserChange::Unlock => {
            crate::services::sessions::clear_attempts(db, &user.email).await?;
            return Ok(());
        }
    }
    am.update(db).await?;
    if end_sessions {
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Revokes every live API token of a user.
pub async fn revoke_tokens(db: &DatabaseConnection, user_id: Uuid) -> AppResult<u64> {
    let res = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[derive(Debug, Serialize)]
pub struct Catalog {
    pub organizations: Vec<NamedRow>,
    pub depots: Vec<NamedRow>,
    pub sites: Vec<SiteRow>,
    pub parts: Vec<PartRow>,
}

/// An organization or depot: code, name, and what kind or where.
#[derive(Debug, Serialize)]
pub struct NamedRow {
    pub code: String,
    pub name: String,
    pub detail: String,
    /// Organizations only: chat webhook and on-call list.
    pub webhook_url: String,
    pub oncall: String,
    /// Organizations only: service levels and their calendar.
    pub policy: Option<crate::domain::sla::Policy>,
    pub calendar: Option<crate::domain::sla::Calendar>,
}

#[derive(Debug, Serialize)]
pub struct PartRow {
    pub number: String,
    pub kind: String,
    pub description: String,
    pub field_replaceable: bool,
    pub holds_media: bool,
}

#[derive(Debug, Serialize)]
pub struct SiteRow {
    pub code: String,
    pub name: String,
    pub organization: String,
    pub city: String,
    pub default_depot: String,
    pub contacts: String,
    pub clusters: Vec<String>,
}

pub async fn catalog(db: &DatabaseConnection, actor: &Actor) -> AppResult<Catalog> {
    admin(actor)?;
    let organizations = organization::Entity::find()
        .order_by_asc(organization::Column::Code)
        .all(db)
        .await?;
    let depots = depot::Entity::find().order_by_asc(depot::Column::Code).all(db).await?;
    let clusters = cluster::Entity::find()
        .order_by_asc(cluster::Column::Name)
        .all(db)
        .await?;
    let sites = site::Entity::find()
        .order_by_asc(site::Column::Code)
        .all(db)
        .await?
        .into_iter()
        .map(|s| SiteRow {
            organization: organizations
                .iter()
                .find(|o| o.id == s.organization_id)
                .map(|o| o.code.clone())
                .unwrap_or_default(),
            default_depot: depots
                .iter()
                .find(|d| d.id == s.default_depot_id)
                .map(|d| d.code.clone())
                .unwrap_or_default(),
            contacts: serde_json::from_value::<Vec<String>>(s.contact_emails.clone())
                .unwrap_or_default()
                .join(", "),
            clusters: clusters
                .iter()
                .filter(|c| c.site_id == s.id)
                .map(|c| c.name.clone())
                .collect(),
            code: s.code,
            name: s.name,
            city: s.city,
        })
        .collect();
    let parts = part::Entity::find()
        .order_by_asc(part::Column::Number)
        .all(db)
        .await?
        .into_iter()
        .map(|p| PartRow {
            number: p.number,
            kind: p.kind,
            description: p.description,
            field_replaceable: p.field_replaceable,
            holds_media: p.holds_media,
        })
        .collect();
    let organizations = organizations
        .into_iter()
        .map(|o| NamedRow {
            policy: Some(crate::services::sla::terms(Some(&o)).0),
            calendar: Some(crate::services::sla::terms(Some(&o)).1),
            detail: o.kind,
            webhook_url: o.webhook_url.unwrap_or_default(),
            oncall: o
                .oncall_emails
                .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
                .unwrap_or_default()
                .join(", "),
            code: o.code,
            name: o.name,
        })
        .collect();
    let depots = depots
        .into_iter()
        .map(|d| NamedRow {
            detail: format!("{}, {}", d.city, d.region),
            code: d.code,
            name: d.name,
            webhook_url: String::new(),
            oncall: String::new(),
            policy: None,
            calendar: None,
        })
        .collect();
    Ok(Catalog {
        organizations,
        depots,
        sites,
        parts,
    })
}

/// A postal address as forms send it.
pub struct AddressInput<'a> {
    pub street: &'a str,
    pub city: &'a str,
    pub region: &'a str,
    pub postal_code: &'a str,
    pub country: &'a str,
}

pub async fn create_depot(
    db: &DatabaseConnection,
    actor: &Actor,
    code: &str,
    name: &str,
    a: AddressInput<'_>,
) -> AppResult<()> {
    admin(actor)?;
    depot::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(required(code, "code")?.to_uppercase()),
        name: Set(required(name, "name")?.into()),
        street: Set(required(a.street, "street")?.into()),
        city: Set(required(a.city, "city")?.into()),
        region: Set(required(a.region, "region")?.into()),
        postal_code: Set(required(a.postal_code, "postal code")?.into()),
        country: Set(required(a.country, "country")?.into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn create_site(
    db: &DatabaseConnection,
    actor: &Actor,
    code: &str,
    name: &str,
    organization: &str,
    default_depot: &str,
    contacts: &str,
    coverage: &str,
    a: AddressInput<'_>,
) -> AppResult<()> {
    admin(actor)?;
    let org = organization_by_code(db, organization).await?;
    let depot = depot::Entity::find()
        .filter(depot::Column::Code.eq(default_depot.trim().to_uppercase()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown depot `{}`", default_depot.trim())))?;
    let contacts: Vec<String> = contacts
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect();
    if let Some(bad) = contacts.iter().find(|c| !c.contains('@')) {
        return Err(AppError::invalid(format!("`{bad}` is not an email address")));
    }
    site::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(required(code, "code")?.to_lowercase()),
        organization_id: Set(org.id),
        name: Set(required(name, "name")?.into()),
        street: Set(required(a.street, "street")?.into()),
        city: Set(required(a.city, "city")?.into()),
        region: Set(required(a.region, "region")?.into()),
        postal_code: Set(required(a.postal_code, "postal code")?.into()),
        country: Set(required(a.country, "country")?.into()),
        contact_emails: Set(serde_json::json!(contacts)),
        coverage: Set(coverage.trim().into()),
        default_depot_id: Set(depot.id),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn create_cluster(
    db: &DatabaseConnection,
    actor: &Actor,
    site_code: &str,
    name: &str,
    kind: &str,
) -> AppResult<()> {
    admin(actor)?;
    let site = site::Entity::find()
        .filter(site::Column::Code.eq(site_code.trim()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid(format!("unknown site `{}`", site_code.trim())))?;
    cluster::ActiveModel {
        id: Set(Uuid::now_v7()),
        site_id: Set(site.id),
        name: Set(required(name, "name")?.into()),
        kind: Set(required(kind, "kind")?.into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn save_part(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    kind: &str,
    description: &str,
    field_replaceable: bool,
    holds_media: bool,
) -> AppResult<()> {
    admin(actor)?;
    let number = required(number, "part number")?.to_uppercase();
    let existing = part::Entity::find()
        .filter(part::Column::Number.eq(&number))
        .one(db)
        .await?;
    match existing {
        Some(p) => {
            let mut am: part::ActiveModel = p.into();
            if !description.trim().is_empty() {
                am.description = Set(description.trim().into());
            }
            am.field_replaceable = Set(field_replaceable);
            am.holds_media = Set(holds_media);
            am.update(db).await?;
        }
        None => {
            part::ActiveModel {
                id: Set(Uuid::now_v7()),
                number: Set(number),
                kind: Set(required(kind, "kind")?.to_lowercase()),
                description: Set(required(description, "description")?.into()),
                field_replaceable: Set(field_replaceable),
                holds_media: Set(holds_media),
                created_at: Set(Utc::now()),
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// A message in the outbox, as the admin sees it.
#[derive(Debug, Serialize)]
pub struct OutboxRow {
    pub id: Uuid,
    pub rma: String,
    pub template: String,
    /// The message's subject line, once composed: what the outbox shows it by.
    pub subject: Option<String>,
    pub channel: String,
    pub recipients: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
}

/// Undelivered messages first (dead, retrying, pending), then the latest delivered ones.
pub async fn outbox(db: &DatabaseConnection, actor: &Actor) -> AppResult<Vec<OutboxRow>> {
    use crate::entities::{notification, rma};
    use crate::mail::outbox::{DEAD, PENDING, RETRYING, SENT};
    use sea_orm::QuerySelect;
    admin(actor)?;
    let mut rows = notification::Entity::find()
        .filter(notification::Column::State.is_in([DEAD, RETRYING, PENDING]))
        .order_by_asc(notification::Column::State)
        .order_by_asc(notification::Column::Id)
        .limit(200)
        .all(db)
        .await?;
    rows.extend(
        notification::Entity::find()
            .filter(notification::Column::State.eq(SENT))
            .order_by_desc(notification::Column::Id)
            .limit(50)
            .all(db)
            .await?,
    );
    let rmas = crate::services::views::load_map::<rma::Entity>(db, rows.iter().map(|n| n.rma_id)).await?;
    Ok(rows
        .into_iter()
        .map(|n| OutboxRow {
            id: n.id,
            rma: rmas.get(&n.rma_id).map(|r| r.number.clone()).unwrap_or_default(),
            recipients: serde_json::from_value::<Vec<String>>(n.recipients)
                .unwrap_or_default()
                .join(", "),
            template: n.template,
            subject: n.subject,
            channel: n.channel,
            state: n.state,
            attempts: n.attempts,
            next_attempt_at: n.next_attempt_at,
            last_error: n.last_error,
            created_at: n.created_at,
        })
        .collect())
}

/// Sends a dead or retrying message again, now.
pub async fn retry_notification(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    admin(actor)?;
    if crate::mail::outbox::retry(db, id).await? {
        Ok(())
    } else {
        Err(AppError::Conflict("that message is not waiting for a retry".into()))
    }
}

/// Sets where an organization's notifications also go: its chat webhook (a public `https` URL,
/// unless `allowed` names its host) and its on-call list.
pub async fn set_organization_channels(
    db: &DatabaseConnection,
    actor: &Actor,
    code: &str,
    webhook_url: &str,
    oncall: &str,
    allowed: &crate::outbound::Allowed,
) -> AppResult<()> {
    admin(actor)?;
    let org = organization_by_code(db, code).await?;
    let webhook = match webhook_url.trim() {
        "" => None,
        channel if channel.starts_with(crate::services::slack::CHANNEL_PREFIX) => {
            let id = &channel[crate::services::slack::CHANNEL_PREFIX.len()..];
            if !crate::services::slack::is_channel_id(id) {
                return Err(AppError::invalid(format!(
                    "`{channel}`: write slack: and the channel's id (like C0123ABCD)"
                )));
            }
            Some(channel.to_string())
        }
        url => Some(
            crate::outbound::check_url(url, allowed)
                .map_err(|e| AppError::invalid(format!("webhook URL: {e}")))?
                .to_string(),
        ),
    };
    let oncall: Vec<String> = oncall
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect();
    if let Some(bad) = oncall.iter().find(|e| !e.contains('@')) {
        return Err(AppError::invalid(format!("`{bad}` is not an email address")));
    }
    let mut am: organization::ActiveModel = org.into();
    am.webhook_url = Set(webhook);
    am.oncall_emails = Set((!oncall.is_empty()).then(|| serde_json::json!(oncall)));
    am.update(db).await?;
    Ok(())
}

/// Starts a weekly on-call rotation (`members` in turn from `starts_on`), or an override: one
/// person on call for the next `hours`.
pub async fn set_oncall(
    db: &DatabaseConnection,
    actor: &Actor,
    code: &str,
    kind: &str,
    members: &str,
    starts_on: &str,
    hours: &str,
) -> AppResult<()> {
    use crate::services::oncall::{OVERRIDE, ROTATION, add_shift};
    admin(actor)?;
    let org = organization_by_code(db, code).await?;
    let people: Vec<String> = members
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect();
    if people.is_empty() {
        return Err(AppError::invalid("name at least one person (email) to be on call"));
    }
    if let Some(bad) = people.iter().find(|e| !e.contains('@')) {
        return Err(AppError::invalid(format!("`{bad}` is not an email address")));
    }
    match kind {
        "rotation" => {
            let day = chrono::NaiveDate::parse_from_str(starts_on.trim(), "%Y-%m-%d").map_err(|_| {
                AppError::invalid(format!("start `{}` is not a date like 2026-01-05", starts_on.trim()))
            })?;
            let start = day
                .and_hms_opt(0, 0, 0)
                .map(|d| d.and_utc())
                .ok_or_else(|| AppError::invalid("bad start date"))?;
            add_shift(db, org.id, ROTATION, people, start, None).await
        }
        "override" => {
            let hours: i64 = hours
                .trim()
                .parse()
                .ok()
                .filter(|h| (1..=24 * 14).contains(h))
                .ok_or_else(|| AppError::invalid("an override lasts 1 to 336 hours"))?;
            let now = Utc::now();
            add_shift(
                db,
                org.id,
                OVERRIDE,
                people[..1].to_vec(),
                now,
                Some(now + chrono::Duration::hours(hours)),
            )
            .await
        }
        other => Err(AppError::invalid(format!("unknown on-call kind `{other}`"))),
    }
}

/// What an admin sets as an organization's service levels.
pub struct SlaInput<'a> {
    pub first_response_minutes: [&'a str; 4],
    pub replacement_business_days: &'a str,
    pub return_days: &'a str,
    pub turnaround_business_days: &'a str,
    pub time_zone: &'a str,
    pub workdays: &'a str,
    pub opens: &'a str,
    pub closes: &'a str,
    pub holidays: &'a str,
}

/// Sets an organization's SLA budgets and business-hour calendar.
pub async fn set_sla(db: &DatabaseConnection, actor: &Actor, code: &str, input: SlaInput<'_>) -> AppResult<()> {
    use crate::domain::sla::{Calendar, Policy};
    admin(actor)?;
    let org = organization_by_code(db, code).await?;
    let number = |what: &str, v: &str| -> AppResult<i64> {
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| AppError::invalid(format!("{what} `{}` must be a positive whole number", v.trim())))
    };
    let mut first = [0i64; 4];
    for (i, v) in input.first_response_minutes.iter().enumerate() {
        first[i] = number(&format!("sev{} first response minutes", i + 1), v)?;
    }
    let policy = Policy {
        first_response_minutes: first,
        replacement_business_days: number("replacement business days", input.replacement_business_days)? as u32,
        return_days: number("return days", input.return_days)?,
        turnaround_business_days: number("turnaround business days", input.turnaround_business_days)? as u32,
    };
    let holidays = input
        .holidays
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| {
            d.parse::<chrono::NaiveDate>()
                .map_err(|_| AppError::invalid(format!("holiday `{d}` is not a date like 2026-12-25")))
        })
        .collect::<AppResult<Vec<_>>>()?;
    let calendar = Calendar {
        time_zone: input.time_zone.trim().into(),
        workdays: input
            .workdays
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
            .collect(),
        opens: input.opens.trim().into(),
        closes: input.closes.trim().into(),
        holidays,
    };
    calendar.validate().map_err(AppError::invalid)?;
    let mut am: organization::ActiveModel = org.into();
    am.sla_policy = Set(Some(
        serde_json::to_value(&policy).map_err(|e| AppError::Internal(e.into()))?,
    ));
    am.calendar = Set(Some(
        serde_json::to_value(&calendar).map_err(|e| AppError::Internal(e.into()))?,
    ));
    am.update(db).await?;
    Ok(())
}
