//! Diagnosis evidence attached to an RMA: size-limited, of allowed types, with safe names, kept in
//! the database (so every instance serves every file), downloadable only by those who see the RMA.
use crate::db::begin_write;
use crate::entities::{attachment, user};
use crate::error::{AppError, AppResult};
use crate::services::rmas::find_visible;
use crate::services::{Actor, history};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The largest file accepted.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// Allowed file types by extension: logs and text, SMART and BMC dumps, photos, PDFs, archives.
const TYPES: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("csv", "text/csv"),
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gz", "application/gzip"),
    ("zip", "application/zip"),
];

/// A file name safe to store and to send back: the last path component, letters, digits, `._-`.
pub fn safe_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.').chars().take(100).collect::<String>();
    if trimmed.is_empty() {
        "attachment".into()
    } else {
        trimmed
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttachmentView {
    pub id: Uuid,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
    /// Where to download it.
    pub url: String,
}

/// Stores one uploaded file.
pub async fn upload(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    name: &str,
    bytes: Vec<u8>,
) -> AppResult<AttachmentView> {
    let txn = begin_write(db).await?;
    let rma = find_visible(&txn, actor, number).await?;
    if bytes.len() > MAX_BYTES {
        return Err(AppError::PayloadTooLarge(MAX_BYTES));
    }
    if bytes.is_empty() {
        return Err(AppError::invalid("the file is empty"));
    }
    let file_name = safe_name(name);
    let kind = content_type(&file_name).ok_or_else(|| {
        let allowed: Vec<&str> = TYPES.iter().map(|(e, _)| *e).collect();
        AppError::UnsupportedMediaType(format!(
            "`{file_name}` is not an allowed type; allowed: {}",
            allowed.join(", ")
        ))
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let now = Utc::now();
    let id = Uuid::now_v7();
    let size = bytes.len() as i64;
    attachment::ActiveModel {
        id: Set(id),
        rma_id: Set(rma.id),
        file_name: Set(file_name.clone()),
        content_type: Set(kind.into()),
        size: Set(size),
        sha256: Set(sha.clone()),
        data: Set(bytes),
        uploaded_by: Set(actor.user_id),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let fields = json!({"attachment_id": id, "file_name": file_name, "size": size, "sha256": sha});
    let entry = history::Entry::change(rma.id, "attachment", Some(actor), fields, now);
    history::append(&txn, entry.with_note(Some(format!("attached {file_name}")))).await?;
    txn.commit().await?;
    Ok(AttachmentView {
        url: format!("/api/v1/rmas/{}/attachments/{id}", rma.number),
        id,
        file_name,
        content_type: kind.into(),
        size,
        sha256: sha,
        uploaded_by: actor.email.clone(),
        created_at: now,
    })
}

/// The RMA's attachments, without their contents.
pub async fn list(db: &DatabaseConnection, actor: &Actor, number: &str) -> AppResult<Vec<AttachmentView>> {
    let rma = find_visible(db, actor, number).await?;
    // Everything but the contents.
    let rows = attachment::Entity::find()
        .select_only()
        .columns([
            attachment::Column::Id,
            attachment::Column::FileName,
            attachment::Column::ContentType,
            attachment::Column::Size,
            attachment::Column::Sha256,
            attachment::Column::UploadedBy,
            attachment::Column::CreatedAt,
        ])
        .filter(attachment::Column::RmaId.eq(rma.id))
        .order_by_asc(attachment::Column::Id)
        .into_model::<Meta>()
        .all(db)
        .await?;
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(rows.iter().map(|r| r.uploaded_by)))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| AttachmentView {
            url: format!("/api/v1/rmas/{}/attachments/{}", rma.number, m.id),
            uploaded_by: users
                .iter()
                .find(|u| u.id == m.uploaded_by)
                .map(|u| u.email.clone())
                .unwrap_or_default(),
            id: m.id,
            file_name: m.file_name,
            content_type: m.content_type,
            size: m.size,
            sha256: m.sha256,
            created_at: m.created_at,
        })
        .collect())
}

#[derive(sea_orm::FromQueryResult)]
struct Meta {
    id: Uuid,
    file_name: String,
    content_type: String,
    size: i64,
    sha256: String,
    uploaded_by: Uuid,
    created_at: DateTime<Utc>,
}

/// One attachment with its contents.
pub async fn download(db: &DatabaseConnection, actor: &Actor, number: &str, id: &str) -> AppResult<attachment::Model> {
    let rma = find_visible(db, actor, number).await?;
    let not_found = || AppError::not_found("no such attachment");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    attachment::Entity::find_by_id(id)
        .filter(attachment::Column::RmaId.eq(rma.id))
        .one(db)
        .await?
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_made_safe() {
        assert_eq!(super::safe_name("../../etc/passwd"), "passwd");
        assert_eq!(super::safe_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(super::safe_name("smart log (node 3).txt"), "smart_log__node_3_.txt");
        assert_eq!(super::safe_name("..."), "attachment");
    }
}
