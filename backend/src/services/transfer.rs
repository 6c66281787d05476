//! Moving a deployment from one database to another (SQLite to PostgreSQL when a site outgrows the
//! embedded default): every table copied in dependency order, in one transaction on the target.
//! Backups: a consistent copy of a live SQLite database, restored with the same copy.
use crate::entities::*;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryOrder, TransactionTrait,
};
use sea_orm::{Iterable, PrimaryKeyToColumn};

/// Rows per page read and per insert.
const PAGE: u64 = 500;

async fn copy<E>(from: &DatabaseConnection, to: &impl ConnectionTrait) -> anyhow::Result<u64>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    // Pages in primary-key order: stable while paging, and UUIDv7 keys follow creation order.
    let key = E::PrimaryKey::iter()
        .next()
        .map(|k| k.into_column())
        .ok_or_else(|| anyhow::anyhow!("no primary key"))?;
    let mut pages = E::find().order_by_asc(key).paginate(from, PAGE);
    let mut copied = 0;
    while let Some(rows) = pages.fetch_and_next().await? {
        copied += rows.len() as u64;
        let models: Vec<E::ActiveModel> = rows.into_iter().map(IntoActiveModel::into_active_model).collect();
        if !models.is_empty() {
            E::insert_many(models).exec_without_returning(to).await?;
        }
    }
    Ok(copied)
}

/// Copies every table of `from` into the migrated, empty database `to`. Returns rows per table.
pub async fn copy_all(from: &DatabaseConnection, to: &DatabaseConnection) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let existing = organization::Entity::find().count(to).await?;
    anyhow::ensure!(
        existing == 0,
        "the target database is not empty ({existing} organizations); copy into a fresh one"
    );
    let txn = to.begin().await?;
    if to.get_database_backend() == DbBackend::Postgres {
        // Units point at the units that replaced them, which come later: check references at
        // commit, as pg_restore does, instead of row by row.
        txn.execute_unprepared("SET LOCAL session_replication_role = replica")
            .await?;
    } else {
        txn.execute_unprepared("PRAGMA defer_foreign_keys = ON").await?;
    }
    let mut counts = vec![];
    macro_rules! tables {
        ($($module:ident),* $(,)?) => {
            $( counts.push((stringify!($module), copy::<$module::Entity>(from, &txn).await?)); )*
        };
    }
    tables!(
        organization,
        depot,
        site,
        cluster,
        slot,
        part,
        unit,
        user,
        api_token,
        session,
        sign_in_throttle,
        rma_counter,
        rma,
        rma_watcher,
        shipment,
        repair_record,
        event,
        notification,
        slot_history,
        idempotency_key,
        diagnosis_check,
        attachment,
        oncall_shift,
    );
    txn.commit().await?;
    Ok(counts)
}

/// Writes a consistent copy of the live SQLite database `db` to `path` (`VACUUM INTO`: one read
/// transaction, so writers go on and the copy is a single point in time). Returns its size in bytes.
pub async fn backup(db: &DatabaseConnection, path: &std::path::Path) -> anyhow::Result<u64> {
    anyhow::ensure!(
        db.get_database_backend() == DbBackend::Sqlite,
        "depot backup copies SQLite databases; on PostgreSQL use `pg_dump -Fc -f {} DATABASE` and \
         `pg_restore -d DATABASE {}` (see README, Deployment)",
        path.display(),
        path.display()
    );
    anyhow::ensure!(
        !path.exists(),
        "{} exists; a backup never overwrites a file",
        path.display()
    );
    let target = path
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "VACUUM INTO ?",
        [target.into()],
    ))
    .await?;
    Ok(std::fs::metadata(path)?.len())
}
