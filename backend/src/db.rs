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

mod sqlite_writer;
pub use sqlite_writer::constraint;

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
        // sqlx pings a connection on every checkout by default: a round trip to PostgreSQL's
        // backend before each statement of a request. A connection in use within the last
        // second is live; one idle longer (the database may have restarted meanwhile) is still
        // pinged, and replaced if the ping fails.
        .test_before_acquire_if_idle_for(PING_WHEN_IDLE_FOR)
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
                    tune_sqlite(conn, busy_timeout).await
                })
            })
        });
    }
    let db = Database::connect(opts).await?;
    if let Some(file) = sqlite_file_of(&db) {
        let tuning = sqlite_writer::Tuning {
            busy_timeout,
            lifetime: settings.db_connection_lifetime,
        };
        sqlite_writer::tune(file, tuning);
    }
    Ok(db)
}

/// How long a pooled connection may stay unused and still be handed out without a ping.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

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

/// Two settings sqlx does not offer, made on the raw connection.
///
/// The query planner stability guarantee: without it, once `ANALYZE` has gathered histograms
/// (`sqlite_stat4`), the planner reads the values bound to a statement and re-prepares the cached
/// statement at every new binding: a full parse and plan for each query, measured at a tenth of
/// the server's CPU under load. With it, plans come from the statistics alone.
///
/// A busy handler that polls the write lock every 100 µs for its first 5 ms, then every
/// millisecond, for about `busy_timeout` (it counts polls; a sleep may run a little long). SQLite's own sleeps 1, 2, 5, 10… ms, made for processes
/// that hold the lock long: a write of depot holds it for well under a millisecond, so a waiter
/// slept through the turn it was waiting for and the lock stood idle.
async fn tune_sqlite(conn: &mut sqlx::SqliteConnection, busy_timeout: Duration) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for these calls and valid while it is held.
    match unsafe { tune_connection(handle.as_raw_handle().as_ptr(), busy_timeout) } {
        libsqlite3_sys::SQLITE_OK => Ok(()),
        rc => Err(sqlx::Error::Protocol(format!(
            "tuning the SQLite connection failed: {rc}"
        ))),
    }
}

/// The settings of [`tune_sqlite`] on a raw connection (the pool's and the writer's).
///
/// # Safety
/// `db` is an open connection that no other thread uses during the call.
unsafe fn tune_connection(db: *mut libsqlite3_sys::sqlite3, busy_timeout: Duration) -> std::ffi::c_int {
    use libsqlite3_sys as ffi;
    let give_up_after = busy_polls(busy_timeout);
    // SAFETY: QPSG takes two ints (on, and a null pointer for the old value); the busy handler's
    // argument is a count carried in the pointer, never dereferenced.
    unsafe {
        match ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        ) {
            ffi::SQLITE_OK => ffi::sqlite3_busy_handler(db, Some(poll_write_lock), give_up_after as *mut _),
            rc => rc,
        }
    }
}

/// Quick polls first, then slower ones (see `tune_sqlite`).
const QUICK_POLLS: usize = 50;
const QUICK_POLL: Duration = Duration::from_micros(100);
const SLOW_POLL: Duration = Duration::from_millis(1);

/// How many polls add up to `timeout`.
fn busy_polls(timeout: Duration) -> usize {
    let quick = QUICK_POLL * QUICK_POLLS as u32;
    match timeout.checked_sub(quick) {
        Some(rest) => QUICK_POLLS + rest.as_millis() as usize,
        None => (timeout.as_micros() / QUICK_POLL.as_micros()) as usize,
    }
}

/// SQLite calls this while another connection holds the lock, with how often it has already
/// called it for this wait; returning 0 gives up (`SQLITE_BUSY`, a 503 for the request).
unsafe extern "C" fn poll_write_lock(give_up_after: *mut std::ffi::c_void, polls: std::ffi::c_int) -> std::ffi::c_int {
    let polls = polls as usize;
    if polls >= give_up_after as usize {
        return 0;
    }
    std::thread::sleep(if polls < QUICK_POLLS { QUICK_POLL } else { SLOW_POLL });
    1
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

/// The file a SQLite `url` names; `None` for an in-memory database or another engine's URL.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// SQL of the aggregate joining a group's `values` (text, none holding a newline) one per line,
/// for a row to carry a subquery's rows in one column; `None` when the group is empty.
pub fn lines_of(backend: DbBackend, values: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("string_agg({values}, chr(10))"),
        _ => format!("group_concat({values}, char(10))"),
    }
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

/// A piece of write work: runs inside its own savepoint of a shared transaction (or hears why
/// there is none) and reports whether it succeeded, with what to do once the transaction's fate
/// is known.
type Work = Box<dyn for<'t> FnOnce(Result<&'t DatabaseTransaction, DbErr>) -> BoxFuture<'t, (bool, Settle)> + Send>;
/// Delivers a piece of work's answer once its transaction committed (or failed to).
type Settle = Box<dyn FnOnce(Result<(), DbErr>) + Send>;
/// What a piece of work returns: its future, borrowing the transaction.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The most pieces of work one SQLite commit carries.
const MAX_GROUP: usize = 64;

/// Runs `work` in a write transaction and answers once it is durable.
///
/// On SQLite the writes of one process take turns anyway (one writer at a time), so they queue
/// for the file's writer thread (`sqlite_writer`): it takes whatever work is waiting, runs each
/// piece in a savepoint of one transaction (a piece that fails is rolled back alone) and commits
/// them together, one sync for all of them. Nothing is answered before that commit. The work runs
/// on the writer's own connection, so it reads rows by column name (models, named fields), never
/// a tuple of several columns by position. On PostgreSQL each piece has a transaction of its own,
/// as the server handles concurrent writers itself.
pub async fn write<T, E, F>(db: &DatabaseConnection, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbErr> + Send + 'static,
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
{
    let Some(file) = sqlite_file_of(db) else {
        let txn = begin_write(db).await?;
        let out = work(&txn).await?;
        txn.commit().await?;
        return Ok(out);
    };
    let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, E>>();
    let piece: Work = Box::new(move |txn| {
        Box::pin(async move {
            let result = match txn {
                Ok(txn) => work(txn).await,
                Err(e) => Err(e.into()),
            };
            let succeeded = result.is_ok();
            let settle: Settle = Box::new(move |committed| {
                let _ = answer.send(match committed {
                    Ok(()) => result,
                    // A refusal stands; a success that did not commit is a failure.
                    Err(e) => result.and(Err(e.into())),
                });
            });
            (succeeded, settle)
        })
    });
    sqlite_writer::submit(file, piece)?;
    answered
        .await
        .map_err(|_| DbErr::Custom("the database writer stopped before committing".into()))?
}

/// The file of a SQLite database (none for PostgreSQL or an in-memory database).
fn sqlite_file_of(db: &DatabaseConnection) -> Option<PathBuf> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let options = db.get_sqlite_connection_pool().connect_options();
            let file = options.get_filename();
            (!file.as_os_str().is_empty() && file != Path::new(":memory:")).then(|| file.to_path_buf())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_polls_add_up_to_the_timeout() {
        use std::time::Duration;
        assert_eq!(super::busy_polls(Duration::from_millis(2)), 20);
        assert_eq!(super::busy_polls(Duration::from_millis(5)), 50);
        assert_eq!(super::busy_polls(Duration::from_millis(10_000)), 50 + 9_995);
    }

    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            super::sqlite_path("sqlite://./data/depot.db?mode=rwc").as_deref(),
            Some("./data/depot.db")
        );
        assert_eq!(super::sqlite_path("postgres://x/y"), None);
    }
}
