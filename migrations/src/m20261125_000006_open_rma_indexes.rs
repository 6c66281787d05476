//! Partial indexes over the open RMAs only. A million RMAs are mostly closed; the dashboard, the
//! impact ranking and the scheduler look only at the open ones and must not scan the rest.
//! (Both SQLite and PostgreSQL support `CREATE INDEX ... WHERE`.)
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 2] = [
    ("idx_rmas_open_status", "status, status_changed_at, organization_id"),
    ("idx_rmas_open_id", "id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in INDEXES {
            m.get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX {name} ON rmas ({columns}) WHERE closed_at IS NULL"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            m.get_connection()
                .execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        Ok(())
    }
}
