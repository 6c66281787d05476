//! Indexes for a million RMAs (measured with `make bench`). Partial indexes over the open RMAs
//! only: most RMAs are closed, and the dashboard, the impact ranking and the scheduler look only at
//! the open ones (SQLite and PostgreSQL both support `CREATE INDEX ... WHERE`). And the list's
//! usual filter pairs, newest first: status within a site, status within a customer.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Name, columns, and the rows it covers (all when empty).
const INDEXES: [(&str, &str, &str); 4] = [
    (
        "idx_rmas_open_status",
        "status, status_changed_at, organization_id",
        "WHERE closed_at IS NULL",
    ),
    ("idx_rmas_open_id", "id", "WHERE closed_at IS NULL"),
    ("idx_rmas_site_status", "site_id, status, id", ""),
    ("idx_rmas_org_status", "organization_id, status, id", ""),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns, rows) in INDEXES {
            m.get_connection()
                .execute_unprepared(&format!("CREATE INDEX {name} ON rmas ({columns}) {rows}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _, _) in INDEXES {
            m.get_connection()
                .execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        Ok(())
    }
}
