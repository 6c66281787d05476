//! API tokens: random secrets shown once, stored only as SHA-256 hashes, revocable.
use crate::domain::Role;
use crate::entities::{api_token, depot, user};
use crate::error::{AppError, AppResult};
use crate::services::Actor;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const PREFIX: &str = "dpt_";

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a token for the user with `email`; returns the secret, which is never stored.
pub async fn create(db: &DatabaseConnection, email: &str, label: &str) -> anyhow::Result<String> {
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(email.trim().to_lowercase()))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    api_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        token_hash: Set(hash(&token)),
        label: Set(label.to_string()),
        created_at: Set(chrono::Utc::now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Revokes every live token of the user with `email`; returns how many.
pub async fn revoke_all(db: &DatabaseConnection, email: &str) -> anyhow::Result<u64> {
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(email.trim().to_lowercase()))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
    Ok(crate::services::admin::revoke_tokens(db, user.id).await?)
}

/// Resolves a bearer token to the acting user; unknown, revoked or disabled is 401.
pub async fn authenticate(db: &DatabaseConnection, token: &str) -> AppResult<Actor> {
    // One query, of only what an actor is made of: every API request starts here.
    let holder = sea_orm::sea_query::Query::select()
        .column(api_token::Column::UserId)
        .from(api_token::Entity)
        .and_where(api_token::Column::TokenHash.eq(hash(token)))
        .and_where(api_token::Column::RevokedAt.is_null())
        .to_owned();
    let acting = user::Entity::find()
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Email,
            user::Column::Role,
            user::Column::OrganizationId,
            user::Column::DepotId,
            user::Column::Disabled,
        ])
        .column_as(depot::Column::Code, "depot_code")
        .left_join(depot::Entity)
        .filter(user::Column::Id.in_subquery(holder))
        .into_model::<Acting>()
        .one(db)
        .await?
        .ok_or(AppError::Unauthorized)?;
    acting.actor()
}

/// Builds the [`Actor`] of a user row; a disabled user cannot act.
pub async fn actor_for(db: &DatabaseConnection, user: user::Model) -> AppResult<Actor> {
    let depot_code = crate::services::views::names_of::<depot::Entity>(db, user.depot_id, |d| d.code.clone())
        .await?
        .into_values()
        .next();
    Acting {
        id: user.id,
        email: user.email,
        role: user.role,
        organization_id: user.organization_id,
        depot_id: user.depot_id,
        disabled: user.disabled,
        depot_code,
    }
    .actor()
}

/// What an [`Actor`] is made of: the user's identity, role and place, and the code of its depot.
#[derive(FromQueryResult)]
struct Acting {
    id: Uuid,
    email: String,
    role: String,
    organization_id: Uuid,
    depot_id: Option<Uuid>,
    disabled: bool,
    depot_code: Option<String>,
}

impl Acting {
    /// The actor; a disabled user cannot act.
    fn actor(self) -> AppResult<Actor> {
        if self.disabled {
            return Err(AppError::Unauthorized);
        }
        let role: Role = self
            .role
            .parse()
            .map_err(|e: String| AppError::Internal(anyhow::anyhow!(e)))?;
        Ok(Actor {
            user_id: self.id,
            email: self.email,
            role,
            organization_id: self.organization_id,
            depot_id: self.depot_id,
            depot_code: self.depot_code,
        })
    }
}

/// The admin an operator's command acts as: the one with `email`, or the first admin there is.
pub async fn admin_actor(db: &DatabaseConnection, email: Option<&str>) -> anyhow::Result<Actor> {
    use sea_orm::QueryOrder;
    let mut query = user::Entity::find().filter(user::Column::Role.eq(Role::Admin.as_str()));
    if let Some(email) = email {
        query = query.filter(user::Column::Email.eq(email.trim().to_lowercase()));
    }
    let admin = query
        .order_by_asc(user::Column::CreatedAt)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no admin user{}", email.map(|e| format!(" {e}")).unwrap_or_default()))?;
    actor_for(db, admin).await.map_err(|e| anyhow::anyhow!("{e}"))
}
