//! Web sign-in: password check with throttling, sessions stored in the database (so any instance
//! can serve any request), a CSRF token per session, sign-out.
use crate::entities::{session, sign_in_throttle, user};
use crate::error::{AppError, AppResult};
use crate::services::auth::verify_password;
use crate::services::{Actor, tokens};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use std::collections::HashSet;
use std::sync::LazyLock;
use uuid::Uuid;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Failed sign-ins allowed per email within [`THROTTLE_MINUTES`].
pub const MAX_FAILURES: i32 = 5;
pub const THROTTLE_MINUTES: i64 = 15;

/// A new random secret, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A signed-in browser.
pub struct SignedIn {
    /// The cookie value; only its hash is stored.
    pub token: String,
}

/// A hash with the same cost as a real one, checked when no user has the email, so an unknown
/// address takes as long to refuse as a wrong password and timing does not tell which emails exist.
static UNKNOWN_USER_HASH: LazyLock<String> =
    LazyLock::new(|| crate::services::auth::hash_password("no user has this password").unwrap_or_default());

/// Counts one sign-in attempt for `email` and returns how many the current window holds.
///
/// One statement (an upsert) raises and reads the counter, so concurrent attempts, on any number
/// of instances and either engine, each get a different count: no burst of guesses passes a check
/// made before the others were counted.
async fn count_attempt(db: &DatabaseConnection, email: &str, now: DateTime<Utc>) -> AppResult<i32> {
    use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
    use sign_in_throttle::Column;
    let window_over =
        Expr::col((sign_in_throttle::Entity, Column::WindowStartedAt)).lt(now - Duration::minutes(THROTTLE_MINUTES));
    let insert = Query::insert()
        .into_table(sign_in_throttle::Entity)
        .columns([Column::Email, Column::Attempts, Column::WindowStartedAt])
        .values_panic([email.into(), 1.into(), now.into()])
        .on_conflict(
            OnConflict::column(Column::Email)
                .value(
                    Column::Attempts,
                    Expr::case(window_over.clone(), 1)
                        .finally(Expr::col((sign_in_throttle::Entity, Column::Attempts)).add(1)),
                )
                .value(
                    Column::WindowStartedAt,
                    Expr::case(window_over, now)
                        .finally(Expr::col((sign_in_throttle::Entity, Column::WindowStartedAt))),
                )
                .to_owned(),
        )
        .returning_col(Column::Attempts)
        .to_owned();
    let row = db
        .query_one(&insert)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the attempt counter returned no row"))?;
    Ok(row.try_get_by_index::<i32>(0)?)
}

/// Lets `email` sign in again at once: an admin's unlock, or a password that was just right.
pub async fn clear_attempts(db: &impl ConnectionTrait, email: &str) -> Result<(), DbErr> {
    sign_in_throttle::Entity::delete_by_id(email.trim().to_lowercase())
        .exec(db)
        .await?;
    Ok(())
}

/// The emails locked out now.
pub async fn locked_emails(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<HashSet<String>, DbErr> {
    Ok(sign_in_throttle::Entity::find()
        .filter(sign_in_throttle::Column::Attempts.gte(MAX_FAILURES))
        .filter(sign_in_throttle::Column::WindowStartedAt.gte(now - Duration::minutes(THROTTLE_MINUTES)))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.email)
        .collect())
}

/// Checks the password and opens a fresh session; every sign-in gets a new session id.
///
/// The attempt is counted before the password is checked; past [`MAX_FAILURES`] within
/// [`THROTTLE_MINUTES`] the password is not looked at until the window ends or an admin unlocks
/// the user.
pub async fn sign_in(db: &DatabaseConnection, email: &str, password: &str) -> AppResult<SignedIn> {
    let email = email.trim().to_lowercase();
    if count_attempt(db, &email, Utc::now()).await? > MAX_FAILURES {
        return Err(AppError::TooManyRequests(format!(
            "too many failed sign-ins for {email}; wait {THROTTLE_MINUTES} minutes or ask an admin to unlock your account"
        )));
    }
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    let stored = user
        .as_ref()
        .map_or(UNKNOWN_USER_HASH.as_str(), |u| u.password_hash.as_str());
    // Always one full hash check, whether the user exists, is disabled or not.
    let password_ok = verify_password(password, stored);
    let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
        return Err(AppError::Unprocessable {
            code: "sign_in_failed",
            message: "wrong email or password".into(),
        });
    };
    clear_attempts(db, &email).await?;
    if user.role == crate::domain::Role::Integration.as_str() {
        return Err(AppError::Forbidden(
            "an integration user has API tokens, not a sign-in to the pages".into(),
        ));
    }
    let token = random_token();
    let now = Utc::now();
    session::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(tokens::hash(&token)),
        user_id: Set(user.id),
        csrf_token: Set(random_token()),
        created_at: Set(now),
        expires_at: Set(now + Duration::hours(SESSION_HOURS)),
    }
    .insert(db)
    .await?;
    Ok(SignedIn { token })
}

/// The user and CSRF token of a live session.
pub async fn resolve(db: &DatabaseConnection, token: &str) -> AppResult<(Actor, String, String)> {
    // One query, the session with its user: every page starts here.
    let (session, user) = session::Entity::find()
        .find_also_related(user::Entity)
        .filter(session::Column::TokenHash.eq(tokens::hash(token)))
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let user = user.ok_or(AppError::Unauthorized)?;
    let name = user.name.clone();
    Ok((tokens::actor_for(db, user).await?, session.csrf_token, name))
}

/// Ends the session of `token`.
pub async fn sign_out(db: &DatabaseConnection, token: &str) -> AppResult<()> {
    session::Entity::delete_many()
        .filter(session::Column::TokenHash.eq(tokens::hash(token)))
        .exec(db)
        .await?;
    Ok(())
}
