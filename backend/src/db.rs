//! Connecting to SQLite or PostgreSQL with the durability settings of SPEC §9, and write transactions.
use crate::config::Settings;
use rustix::fs::{Access, AtFlags, CWD};
use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sqlx_core::transaction::TransactionManager;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Opens the pool. SQLite gets WAL, `synchronous=FULL`, foreign keys and a busy timeout on every
/// connection; a connection is only opened on a database this process can write, and only handed
/// out outside any transaction.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url.expose();
    let sqlite_file = sqlite_path(url).map(PathBuf::from);
    if let Some(dir) = sqlite_file
        .as_ref()
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    let busy_timeout = settings.db_busy_timeout;
    let mut opts = ConnectOptions::new(url.to_string());
    // Every statement at debug level: `RUST_LOG=sqlx::query=debug` shows what a request runs.
    opts.sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Debug)
        .max_connections(if url.starts_with("sqlite") { 8 } else { 16 })
        // Waiting for a usable connection is waiting for the database, as for its lock.
        .acquire_timeout(busy_timeout.max(Duration::from_secs(1)))
        .max_lifetime(settings.db_connection_lifetime)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(busy_timeout)
                .create_if_missing(true)
        })
        .map_sqlx_sqlite_before_acquire(|conn, _| Box::pin(async move { Ok(no_transaction_left_open(conn)) }));
    if let Some(file) = sqlite_file {
        opts.map_sqlx_sqlite_pool_opts(move |pool| {
            let file = file.clone();
            pool.after_connect(move |conn, _| {
                let file = file.clone();
                Box::pin(async move {
                    refuse_read_only(&file)?;
                    stable_query_plans(conn).await
                })
            })
        });
    }
    Ok(Database::connect(opts).await?)
}

/// SQLite opens a file it may not write read-only without saying so, and shares that state among
/// all of the process's connections to the file: it would outlast the fault for as long as any
/// connection stays open. So a new connection is refused unless the database and its log files
/// open for writing; requests answer 503 until the fault clears, then connections open normally.
fn refuse_read_only(file: &Path) -> Result<(), sqlx::Error> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        // access(2), not open(2): closing any descriptor of the file would drop SQLite's locks on it.
        match rustix::fs::accessat(CWD, &path, Access::WRITE_OK, AtFlags::EACCESS) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::NOENT && !suffix.is_empty() => {}
            Err(e) => {
                return Err(sqlx::Error::Protocol(format!(
                    "the database is read-only: {} cannot be written ({e})",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Turns on SQLite's query planner stability guarantee. Without it, once `ANALYZE` has gathered
/// histograms (`sqlite_stat4`), the planner reads the values bound to a statement and re-prepares
/// the cached statement at every new binding: a full parse and plan for each query, measured at
/// a tenth of the server's CPU under load. With it, plans come from the statistics alone.
async fn stable_query_plans(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for this call and valid while it is held; QPSG takes two ints
    // (on, and a null pointer for the old value).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    match rc {
        libsqlite3_sys::SQLITE_OK => Ok(()),
        rc => Err(sqlx::Error::Protocol(format!("sqlite3_db_config(QPSG) failed: {rc}"))),
    }
}

/// When a disk-full or read-only error makes SQLite end a transaction itself, the ROLLBACK that
/// follows fails and sqlx still counts the transaction as open. sea-orm would then nest the next
/// request's transaction inside it as a savepoint: its "commit" acknowledged but not committed,
/// and its reads an old snapshot. Such a connection is closed instead of being handed out.
fn no_transaction_left_open(conn: &mut sqlx::SqliteConnection) -> bool {
    let depth = <sqlx::Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn);
    if depth > 0 {
        tracing::error!(depth, "closing a database connection left inside a transaction");
    }
    depth == 0
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// How many values an `IN (...)` list carries at most: long lists are asked in slices, as SQLite
/// takes at most 32766 parameters in a statement.
pub const IN_LIST_SLICE: usize = 1000;

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`, so it takes the write lock
/// up front and waits its turn instead of failing with "database is locked" on upgrade.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    db.begin_with_options(options).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            super::sqlite_path("sqlite://./data/depot.db?mode=rwc").as_deref(),
            Some("./data/depot.db")
        );
        assert_eq!(super::sqlite_path("postgres://x/y"), None);
    }
}
