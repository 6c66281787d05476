//! Web sign-in: password check with throttling, sessions stored in the database (so any instance
//! can serve any request), a CSRF token per session, sign-out.
use crate::entities::{session, sign_in_failure, user};
use crate::error::{AppError, AppResult};
use crate::services::auth::verify_password;
use crate::services::{Actor, tokens};
use chrono::{Duration, Utc};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Failed sign-ins allowed per email within [`THROTTLE_MINUTES`].
pub const MAX_FAILURES: u64 = 5;
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

/// Checks the password and opens a fresh session; every sign-in gets a new session id.
pub async fn sign_in(db: &DatabaseConnection, email: &str, password: &str) -> AppResult<SignedIn> {
    let email = email.trim().to_lowercase();
    let since = Utc::now() - Duration::minutes(THROTTLE_MINUTES);
    let failures = sign_in_failure::Entity::find()
        .filter(sign_in_failure::Column::Email.eq(&email))
        .filter(sign_in_failure::Column::At.gt(since))
        .count(db)
        .await?;
    if failures >= MAX_FAILURES {
        return Err(AppError::TooManyRequests(format!(
            "too many failed sign-ins for {email}; wait {THROTTLE_MINUTES} minutes or ask an admin to reset the password"
        )));
    }
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(db)
        .await?;
    let valid = user
        .as_ref()
        .is_some_and(|u| !u.disabled && verify_password(password, &u.password_hash));
    let Some(user) = user.filter(|_| valid) else {
        sign_in_failure::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email),
            at: Set(Utc::now()),
        }
        .insert(db)
        .await?;
        return Err(AppError::Unprocessable {
            code: "sign_in_failed",
            message: "wrong email or password".into(),
        });
    };
    sign_in_failure::Entity::delete_many()
        .filter(sign_in_failure::Column::Email.eq(&email))
        .exec(db)
        .await?;
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
