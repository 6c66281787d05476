//! The writer of a SQLite file: a thread of its own owning one `rusqlite` connection, where the work
//! handed to [`super::write`] runs and commits in groups; and beside it a checkpointer, which
//! copies what the writer logged into the database file off the writer's turn.
//!
//! sqlx runs every SQLite statement on a connection thread and hands the answer back to the task
//! that asked: two thread switches per statement, measured as most of a transition's time (README,
//! *Performance*). Here a write, with its reads under the lock and its answer, runs on the thread
//! that owns the connection, and its statements are plain calls into SQLite. The work is the same
//! sea-orm code as on PostgreSQL: sea-orm takes rows from a driver it does not ship through its
//! scripted backend (`MockDatabaseTrait`, feature `mock`; its `proxy` feature does not build with
//! `sqlx-sqlite` in 2.0.4), so that is the interface this module implements, on the real file.
//!
//! That backend finds a row's values by column name: work run here reads rows into models or
//! named fields, never positionally (`into_tuple` of several columns would read them in
//! alphabetical order).
use super::{MAX_GROUP, Work, refuse_read_only, tune_connection};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::Value;
use sea_orm::{
    DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, ExecResult, MockDatabase, MockDatabaseConnection,
    MockDatabaseTrait, MockExecResult, QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How a file's writer connects, as `db::connect` was told for the file.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub busy_timeout: Duration,
    /// The connection is renewed after this long, like the pool's (a connection opened while the
    /// file was read-only would stay so).
    pub lifetime: Duration,
}

/// For a connection `db::connect` did not open: the settings' defaults.
impl Default for Tuning {
    fn default() -> Self {
        use crate::config::{DEFAULT_DB_BUSY_TIMEOUT_MS, DEFAULT_DB_CONNECTION_LIFETIME_S};
        Tuning {
            busy_timeout: Duration::from_millis(DEFAULT_DB_BUSY_TIMEOUT_MS),
            lifetime: Duration::from_secs(DEFAULT_DB_CONNECTION_LIFETIME_S),
        }
    }
}

/// A writer with nothing to do for this long closes its connection and ends (a test process opens
/// many files; a server's writer is rarely idle that long, and reopening costs a millisecond).
const IDLE: Duration = Duration::from_secs(60);

/// Each SQLite file's writer, by file name, and how it connects.
static WRITERS: LazyLock<Mutex<HashMap<PathBuf, Sender<Work>>>> = LazyLock::new(Default::default);
static TUNING: LazyLock<Mutex<HashMap<PathBuf, Tuning>>> = LazyLock::new(Default::default);

/// Remembers how writers of `file` connect (called by `db::connect`).
pub fn tune(file: PathBuf, tuning: Tuning) {
    TUNING.lock().expect("tuning lock").insert(file, tuning);
}

/// Hands `piece` to the writer of `file`, starting one if there is none.
pub fn submit(file: PathBuf, piece: Work) -> Result<(), DbErr> {
    let mut piece = piece;
    // A writer that just ended for idleness gives the piece back: the next one takes it.
    for _ in 0..2 {
        let sender = {
            let mut writers = WRITERS.lock().expect("writers lock");
            match writers.get(&file) {
                Some(sender) => sender.clone(),
                None => {
                    let tuning = TUNING
                        .lock()
                        .expect("tuning lock")
                        .get(&file)
                        .copied()
                        .unwrap_or_default();
                    let (sender, queue) = std::sync::mpsc::channel();
                    let (committed, commits) = std::sync::mpsc::channel();
                    let (writer_file, checkpointer_file) = (file.clone(), file.clone());
                    std::thread::Builder::new()
                        .name("sqlite-checkpointer".into())
                        .spawn(move || checkpoint_beside(checkpointer_file, tuning, commits))
                        .map_err(|e| DbErr::Custom(format!("cannot start the SQLite checkpointer: {e}")))?;
                    std::thread::Builder::new()
                        .name("sqlite-writer".into())
                        .spawn(move || run(writer_file, tuning, queue, committed))
                        .map_err(|e| DbErr::Custom(format!("cannot start the SQLite writer: {e}")))?;
                    writers.insert(file.clone(), sender.clone());
                    sender
                }
            }
        };
        match sender.send(piece) {
            Ok(()) => return Ok(()),
            Err(returned) => {
                piece = returned.0;
                WRITERS.lock().expect("writers lock").remove(&file);
            }
        }
    }
    Err(DbErr::Custom("the SQLite writer could not be started".into()))
}

/// The writer's thread: takes whatever work is waiting, up to [`MAX_GROUP`] pieces, and commits
/// it together (see `db::write`); then tells the checkpointer.
fn run(file: PathBuf, tuning: Tuning, queue: Receiver<Work>, committed: Sender<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "the SQLite writer cannot start its runtime");
            return;
        }
    };
    let link = Arc::new(Mutex::new(Link::default()));
    let db: DatabaseConnection = DatabaseConnectionType::MockDatabaseConnection(Arc::new(MockDatabaseConnection::new(
        WriterBackend(link.clone()),
    )))
    .into();
    loop {
        let first = match queue.recv_timeout(IDLE) {
            Ok(piece) => piece,
            Err(RecvTimeoutError::Timeout) => {
                let mut writers = WRITERS.lock().expect("writers lock");
                match queue.try_recv() {
                    Ok(piece) => piece,
                    Err(_) => {
                        writers.remove(&file);
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(piece) => group.push(piece),
                Err(_) => break,
            }
        }
        let opened = lock(&link).connect(&file, tuning);
        runtime.block_on(async {
            match opened {
                Ok(()) => commit_group(&db, &link, group).await,
                Err(e) => refuse_all(group, e).await,
            }
        });
        let _ = committed.send(());
    }
}

/// How long the checkpointer lets commits gather before it copies them into the database file.
const CHECKPOINT_AFTER: Duration = Duration::from_millis(100);

/// The writer's log is copied into the database file by this thread, on a connection of its own,
/// beside the writer rather than in its turn: SQLite checkpoints on the connection that commits,
/// which was a tenth of the writer's time under load (README, *Performance*). A `PASSIVE`
/// checkpoint neither waits for nor blocks the writer or readers; should this thread fall behind,
/// the writer checkpoints itself past [`WRITER_CHECKPOINTS_AT`]. Ends with the writer.
fn checkpoint_beside(file: PathBuf, tuning: Tuning, commits: Receiver<()>) {
    let mut link = Link::default();
    while commits.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_AFTER);
        while commits.try_recv().is_ok() {}
        let checkpointed = link.connect(&file, tuning).and_then(|()| {
            link.conn()?
                .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
                .map_err(exec_err)
        });
        if let Err(e) = checkpointed {
            // The writer's own checkpoints take over until this connection works again.
            tracing::debug!(error = %e, "the SQLite checkpointer could not checkpoint");
            link.conn = None;
        }
    }
}

fn lock(link: &Mutex<Link>) -> MutexGuard<'_, Link> {
    // A panic in a piece of work poisons nothing the connection depends on.
    link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One group: each piece in a savepoint of one transaction (a piece that fails is rolled back
/// alone, and a piece alone needs none), committed together; nothing is answered before the
/// commit.
async fn commit_group(db: &DatabaseConnection, link: &Mutex<Link>, mut group: Vec<Work>) {
    // sea-orm's transactions cannot say that a BEGIN, RELEASE or COMMIT failed: the link keeps it.
    let ended = |result: Result<(), DbErr>| result.and(lock(link).failure.take().map_or(Ok(()), Err));
    // How many writes share a commit: 1 when writes come one at a time, more under load.
    metrics::histogram!("depot_sqlite_group_commit_writes").record(group.len() as f64);
    let txn = match db.begin().await.and_then(|txn| ended(Ok(())).map(|()| txn)) {
        Ok(txn) => txn,
        Err(e) => {
            lock(link).after_failure();
            return refuse_all(group, e).await;
        }
    };
    let mut settles = Vec::with_capacity(group.len());
    let committed = if group.len() == 1 {
        let piece = group.pop().expect("one piece");
        let (succeeded, settle) = piece(Ok(&txn)).await;
        settles.push(settle);
        match succeeded {
            true => ended(txn.commit().await),
            false => ended(txn.rollback().await),
        }
    } else {
        let mut failed: Option<DbErr> = None;
        let mut group = group.into_iter();
        for piece in group.by_ref() {
            let savepoint = match txn.begin().await.and_then(|s| ended(Ok(())).map(|()| s)) {
                Ok(s) => s,
                Err(e) => {
                    settles.push(piece(Err(e.clone())).await.1);
                    failed = Some(e);
                    break;
                }
            };
            let (succeeded, settle) = piece(Ok(&savepoint)).await;
            let result = match succeeded {
                true => ended(savepoint.commit().await),
                false => ended(savepoint.rollback().await),
            };
            settles.push(settle);
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
        match failed {
            Some(e) => {
                let _ = ended(txn.rollback().await);
                // What the failure left unrun hears it too.
                for piece in group {
                    settles.push(piece(Err(e.clone())).await.1);
                }
                Err(e)
            }
            None => ended(txn.commit().await),
        }
    };
    if committed.is_err() {
        lock(link).after_failure();
    }
    for settle in settles {
        settle(committed.clone());
    }
}

/// Tells every piece of `group` that it could not run.
async fn refuse_all(group: Vec<Work>, e: DbErr) {
    for piece in group {
        let (_, settle) = piece(Err(e.clone())).await;
        settle(Err(e.clone()));
    }
}

/// Log pages past which a commit of the writer checkpoints, should the checkpointer fall behind
/// (SQLite's default is 1 000, about 4 MB).
const WRITER_CHECKPOINTS_AT: u32 = 10_000;

/// The writer's connection and what sea-orm's transactions did on it.
#[derive(Debug, Default)]
struct Link {
    conn: Option<Connection>,
    opened_at: Option<Instant>,
    /// Transactions open: 1 inside `BEGIN`, more inside savepoints.
    depth: usize,
    /// A failed `BEGIN`, `SAVEPOINT`, `RELEASE`, `ROLLBACK` or `COMMIT`, for the group to hear.
    failure: Option<DbErr>,
}

impl Link {
    /// Opens the connection if there is none or it has lived its time, as the pool opens its own:
    /// only on a file this process can write, with the same settings.
    fn connect(&mut self, file: &std::path::Path, tuning: Tuning) -> Result<(), DbErr> {
        self.depth = 0;
        self.failure = None;
        if self.opened_at.is_some_and(|at| at.elapsed() >= tuning.lifetime) {
            self.conn = None;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        refuse_read_only(file).map_err(|e| DbErr::Conn(RuntimeErr::Internal(e.to_string())))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(file, flags).map_err(conn_err)?;
        // A savepoint's journal (one per piece of a group) in memory, not a temporary file.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINTS_AT};"
        ))
        .map_err(conn_err)?;
        conn.set_prepared_statement_cache_capacity(256);
        // SAFETY: the handle belongs to `conn`, which outlives these calls on this thread.
        let rc = unsafe { tune_connection(conn.handle(), tuning.busy_timeout) };
        if rc != libsqlite3_sys::SQLITE_OK {
            return Err(DbErr::Conn(RuntimeErr::Internal(format!(
                "tuning the SQLite writer's connection failed: {rc}"
            ))));
        }
        self.conn = Some(conn);
        self.opened_at = Some(Instant::now());
        Ok(())
    }

    /// After a failed commit the connection is closed if SQLite may still hold a transaction on it
    /// or the file failed (read-only, full, I/O): the next group opens a fresh one, as the pool
    /// does for its connections.
    fn after_failure(&mut self) {
        if let Some(conn) = self.conn.take().filter(|c| !c.is_autocommit()) {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.depth = 0;
    }

    fn conn(&self) -> Result<&Connection, DbErr> {
        self.conn
            .as_ref()
            .ok_or_else(|| DbErr::Conn(RuntimeErr::Internal("the SQLite writer's connection is closed".into())))
    }

    /// Runs a transaction-control statement; a failure waits in `failure` for the group.
    fn control(&mut self, sql: &str) {
        let result = self.conn().and_then(|c| c.execute_batch(sql).map_err(exec_err));
        if let Err(e) = result {
            self.failure.get_or_insert(e);
        }
    }
}

/// sea-orm's side of the writer's connection.
#[derive(Debug)]
struct WriterBackend(Arc<Mutex<Link>>);

impl MockDatabaseTrait for WriterBackend {
    fn execute(&mut self, _counter: usize, stmt: Statement) -> Result<ExecResult, DbErr> {
        tracing::debug!(target: "depot::sqlite_writer", sql = %stmt.sql);
        let link = lock(&self.0);
        let conn = link.conn()?;
        let rows_affected = match &stmt.values {
            Some(values) => {
                let mut prepared = conn.prepare_cached(&stmt.sql).map_err(exec_err)?;
                prepared
                    .execute(rusqlite::params_from_iter(bind(&values.0)?))
                    .map_err(exec_err)?
            }
            // Unprepared SQL may hold several statements.
            None => {
                conn.execute_batch(&stmt.sql).map_err(exec_err)?;
                conn.changes() as usize
            }
        };
        let result = MockExecResult {
            last_insert_id: conn.last_insert_rowid() as u64,
            rows_affected: rows_affected as u64,
        };
        drop(link);
        MockDatabase::new(DbBackend::Sqlite)
            .append_exec_results([result])
            .execute(0, stmt)
    }

    fn query(&mut self, _counter: usize, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        tracing::debug!(target: "depot::sqlite_writer", sql = %stmt.sql);
        let rows = {
            let link = lock(&self.0);
            let conn = link.conn()?;
            let mut prepared = conn.prepare_cached(&stmt.sql).map_err(query_err)?;
            let columns: Vec<Column> = prepared
                .columns()
                .iter()
                .map(|c| Column {
                    name: c.name().to_string(),
                    declared: c.decl_type().map(str::to_ascii_lowercase),
                })
                .collect();
            let values = match &stmt.values {
                Some(values) => bind(&values.0)?,
                None => vec![],
            };
            let mut found = prepared.query(rusqlite::params_from_iter(values)).map_err(query_err)?;
            let mut rows = Vec::new();
            while let Some(row) = found.next().map_err(query_err)? {
                let mut values = BTreeMap::new();
                for (i, column) in columns.iter().enumerate() {
                    let value = row.get_ref(i).map_err(query_err)?;
                    values.insert(column.name.clone(), column.read(value)?);
                }
                rows.push(values);
            }
            rows
        };
        MockDatabase::new(DbBackend::Sqlite)
            .append_query_results([rows])
            .query(0, stmt)
    }

    fn begin(&mut self) {
        let mut link = lock(&self.0);
        let sql = match link.depth {
            // Takes the write lock up front: waits its turn (the busy handler) instead of failing on upgrade.
            0 => "BEGIN IMMEDIATE".to_string(),
            n => format!("SAVEPOINT sp{n}"),
        };
        link.control(&sql);
        link.depth += 1;
    }

    fn commit(&mut self) {
        let mut link = lock(&self.0);
        link.depth = link.depth.saturating_sub(1);
        let sql = match link.depth {
            0 => "COMMIT".to_string(),
            n => format!("RELEASE sp{n}"),
        };
        link.control(&sql);
    }

    fn rollback(&mut self) {
        let mut link = lock(&self.0);
        link.depth = link.depth.saturating_sub(1);
        let sql = match link.depth {
            0 => "ROLLBACK".to_string(),
            n => format!("ROLLBACK TO sp{n}; RELEASE sp{n}"),
        };
        link.control(&sql);
    }

    fn drain_transaction_log(&mut self) -> Vec<sea_orm::Transaction> {
        vec![]
    }

    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    fn ping(&self) -> Result<(), DbErr> {
        lock(&self.0).conn().map(|_| ())
    }
}

/// A result column: its name and the type its table declares (none for an expression).
struct Column {
    name: String,
    declared: Option<String>,
}

impl Column {
    /// The value as sea-orm's rows carry it: the variant of the model field's type, told by the
    /// column's declared type (as sea-orm's migrations write them for SQLite), and the stored value
    /// read as sqlx reads it (UUIDs as 16-byte blobs, times as RFC 3339 text, JSON as text).
    fn read(&self, value: ValueRef<'_>) -> Result<Value, DbErr> {
        let declared = self.declared.as_deref().unwrap_or_default();
        let bad = |what: &str| query_err(format!("column {}: {what}", self.name));
        let text = |v: ValueRef<'_>| -> Result<String, DbErr> {
            match v {
                ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Integer(i) => Ok(i.to_string()),
                ValueRef::Real(r) => Ok(r.to_string()),
                ValueRef::Blob(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                ValueRef::Null => Ok(String::new()),
            }
        };
        let null = matches!(value, ValueRef::Null);
        Ok(match declared {
            "uuid_text" | "uuid" => Value::Uuid(match value {
                ValueRef::Null => None,
                ValueRef::Blob(b) => Some(uuid::Uuid::from_slice(b).map_err(|e| bad(&e.to_string()))?),
                ValueRef::Text(t) => Some(uuid::Uuid::try_parse_ascii(t).map_err(|e| bad(&e.to_string()))?),
                _ => return Err(bad("not a UUID")),
            }),
            d if d.starts_with("timestamp") || d.starts_with("datetime") => Value::ChronoDateTimeUtc(match null {
                true => None,
                false => Some(parse_time(&text(value)?).ok_or_else(|| bad("not a time"))?),
            }),
            "json_text" | "jsonb_text" | "json" | "jsonb" => Value::Json(match null {
                true => None,
                false => Some(Box::new(
                    serde_json::from_str(&text(value)?).map_err(|e| bad(&e.to_string()))?,
                )),
            }),
            "boolean" | "bool" => Value::Bool(match value {
                ValueRef::Null => None,
                ValueRef::Integer(i) => Some(i != 0),
                _ => return Err(bad("not a boolean")),
            }),
            "blob" => Value::Bytes(match value {
                ValueRef::Null => None,
                ValueRef::Blob(b) => Some(b.to_vec()),
                other => Some(text(other)?.into_bytes()),
            }),
            "float" | "double" | "real" => Value::Double(match value {
                ValueRef::Null => None,
                ValueRef::Real(r) => Some(r),
                ValueRef::Integer(i) => Some(i as f64),
                _ => return Err(bad("not a number")),
            }),
            d if d.contains("int") => {
                let n = match value {
                    ValueRef::Null => None,
                    ValueRef::Integer(i) => Some(i),
                    _ => return Err(bad("not an integer")),
                };
                match wide_integer(&self.name) {
                    true => Value::BigInt(n),
                    false => Value::Int(
                        n.map(|n| i32::try_from(n).map_err(|e| bad(&e.to_string())))
                            .transpose()?,
                    ),
                }
            }
            // Text columns, and an expression's value, which declares no type: a number is read as
            // an i64 or f64 (a count, as sea-orm reads it), a NULL as an integer's, so an
            // expression that may be NULL is read into an `Option<i64>` on this path.
            _ => match value {
                ValueRef::Null if declared.is_empty() => Value::BigInt(None),
                ValueRef::Null => Value::String(None),
                ValueRef::Integer(i) if declared.is_empty() => Value::BigInt(Some(i)),
                ValueRef::Real(r) if declared.is_empty() => Value::Double(Some(r)),
                ValueRef::Blob(b) if declared.is_empty() => Value::Bytes(Some(b.to_vec())),
                other => Value::String(Some(text(other)?)),
            },
        })
    }
}

/// Integer columns the models hold as `i64`: SQLite declares both widths `integer`.
fn wide_integer(column: &str) -> bool {
    WIDE_INTEGERS.contains(&column)
}

/// Kept in step with the models by `tests::wide_integers_are_the_models_i64_columns`.
const WIDE_INTEGERS: &[&str] = &["last_number", "size"];

/// A time as sqlx reads SQLite's text (RFC 3339 first, then SQLite's own forms, UTC when unsaid).
fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%F %T%.f%:z", "%F %T%.fZ", "%FT%T%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    ["%F %T%.f", "%FT%T%.f", "%F %R", "%FT%R"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc())
}

/// The values bound to a statement, encoded as sqlx encodes them for SQLite, so that what the
/// writer stores reads back the same through the pool.
fn bind(values: &[Value]) -> Result<Vec<Sql>, DbErr> {
    use chrono::SecondsFormat;
    let opt = |v: Option<Sql>| v.unwrap_or(Sql::Null);
    values
        .iter()
        .map(|value| {
            Ok(match value {
                Value::Bool(b) => opt(b.map(|b| Sql::Integer(b as i64))),
                Value::TinyInt(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::SmallInt(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::Int(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::BigInt(i) => opt(i.map(Sql::Integer)),
                Value::TinyUnsigned(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::SmallUnsigned(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::Unsigned(i) => opt(i.map(|i| Sql::Integer(i as i64))),
                Value::BigUnsigned(i) => match i {
                    Some(i) => Sql::Integer(i64::try_from(*i).map_err(|e| exec_err(e.to_string()))?),
                    None => Sql::Null,
                },
                Value::Float(f) => opt(f.map(|f| Sql::Real(f as f64))),
                Value::Double(f) => opt(f.map(Sql::Real)),
                Value::String(s) => opt(s.clone().map(Sql::Text)),
                Value::Char(c) => opt(c.map(|c| Sql::Text(c.to_string()))),
                Value::Bytes(b) => opt(b.clone().map(Sql::Blob)),
                Value::Uuid(u) => opt(u.map(|u| Sql::Blob(u.as_bytes().to_vec()))),
                Value::Json(j) => opt(j.as_ref().map(|j| Sql::Text(j.to_string()))),
                Value::ChronoDateTimeUtc(t) => {
                    opt(t.map(|t| Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))))
                }
                Value::ChronoDateTimeWithTimeZone(t) => {
                    opt(t.map(|t| Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))))
                }
                Value::ChronoDateTimeLocal(t) => {
                    opt(t.map(|t| Sql::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))))
                }
                Value::ChronoDateTime(t) => opt(t.map(|t| Sql::Text(t.format("%F %T%.f").to_string()))),
                Value::ChronoDate(d) => opt(d.map(|d| Sql::Text(d.format("%F").to_string()))),
                Value::ChronoTime(t) => opt(t.map(|t| Sql::Text(t.format("%T%.f").to_string()))),
                other => return Err(exec_err(format!("SQLite cannot bind {other:?}"))),
            })
        })
        .collect()
}

/// SQLite's error with its extended code, which `error.rs` reads for constraint violations.
fn describe(e: rusqlite::Error) -> String {
    match &e {
        rusqlite::Error::SqliteFailure(code, message) => format!(
            "{} (sqlite {})",
            message.clone().unwrap_or_else(|| code.to_string()),
            code.extended_code
        ),
        _ => e.to_string(),
    }
}

fn exec_err(e: impl Into<Failure>) -> DbErr {
    DbErr::Exec(RuntimeErr::Internal(e.into().0))
}

fn query_err(e: impl Into<Failure>) -> DbErr {
    DbErr::Query(RuntimeErr::Internal(e.into().0))
}

fn conn_err(e: rusqlite::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(describe(e)))
}

/// An error's text, from SQLite or from this module.
struct Failure(String);

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure(describe(e))
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure(s.to_string())
    }
}

/// The constraint a writer's error reports, from SQLite's extended code: 1555 and 2067 are unique
/// keys, 787 a foreign key.
pub fn constraint(err: &DbErr) -> Option<sea_orm::SqlErr> {
    let (DbErr::Exec(RuntimeErr::Internal(text)) | DbErr::Query(RuntimeErr::Internal(text))) = err else {
        return None;
    };
    let code = text.strip_suffix(')')?.rsplit_once("(sqlite ")?.1;
    match code {
        "1555" | "2067" => Some(sea_orm::SqlErr::UniqueConstraintViolation(text.clone())),
        "787" => Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(text.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_integers_are_the_models_i64_columns() {
        use sea_orm::{ColumnTrait, ColumnType, EntityTrait, Iden, Iterable};
        fn columns<E: EntityTrait>() -> Vec<(String, bool)> {
            E::Column::iter()
                .map(|c| {
                    let wide = matches!(
                        c.def().get_column_type(),
                        ColumnType::BigInteger | ColumnType::BigUnsigned
                    );
                    (c.to_string(), wide)
                })
                .collect()
        }
        macro_rules! all_columns {
            ($($entity:ident),*) => {{
                let modules = [$(stringify!($entity)),*];
                let declared = include_str!("../entities/mod.rs").matches("pub mod ").count();
                assert_eq!(modules.len(), declared, "every entity is listed here");
                vec![$(columns::<crate::entities::$entity::Entity>()),*].concat()
            }};
        }
        let columns = all_columns!(
            api_token,
            attachment,
            bmc_subscription,
            cluster,
            depot,
            diagnosis_check,
            event,
            finding_code,
            idempotency_key,
            integration_receipt,
            notification,
            oncall_shift,
            organization,
            part,
            receiving_scan,
            receiving_session,
            redfish_event,
            redfish_rule,
            repair_record,
            rma,
            rma_counter,
            rma_watcher,
            session,
            shipment,
            sign_in_throttle,
            site,
            slack_link,
            slack_thread,
            slot,
            slot_history,
            spares_policy,
            stock_threshold,
            tracking_scan,
            unit,
            user
        );
        let mut wide: Vec<&str> = columns.iter().filter(|(_, w)| *w).map(|(c, _)| c.as_str()).collect();
        wide.sort();
        wide.dedup();
        assert_eq!(wide, WIDE_INTEGERS, "the models' i64 columns");
        for (name, w) in &columns {
            assert_eq!(*w, wide_integer(name), "{name} is i64 in one model and i32 in another");
        }
    }

    #[test]
    fn times_read_as_sqlx_reads_them() {
        let t = parse_time("2026-12-04T10:11:12.345678Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-04T10:11:12.345678+00:00");
        assert!(parse_time("2026-12-04 10:11:12").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn constraint_codes_are_read_back() {
        let unique = exec_err("UNIQUE constraint failed: units.serial (sqlite 2067)".to_string());
        assert!(matches!(
            constraint(&unique),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ));
        let fk = exec_err("FOREIGN KEY constraint failed (sqlite 787)".to_string());
        assert!(matches!(
            constraint(&fk),
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
        ));
        assert!(constraint(&exec_err("database is locked (sqlite 5)".to_string())).is_none());
    }
}
