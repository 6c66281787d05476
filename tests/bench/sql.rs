//! Raw SQL on the pool under sea-orm, for the two things the bench does without the ORM: bulk
//! loading the dataset and the direct-database reference writer.
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, AssertSqlSafe, PgConnection, SqliteConnection};
use sea_orm::{DatabaseConnection, DbBackend};
use uuid::Uuid;

/// One bound value. The Rust types are the ones the entities use, so sqlx encodes them exactly as
/// sea-orm would (UUID blobs and RFC 3339 text on SQLite, native types on PostgreSQL).
#[derive(Clone, Debug)]
pub enum V {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Text(String),
    OptText(Option<String>),
    Int(i32),
    Big(i64),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Json(serde_json::Value),
}

/// A connection taken out of the application's pool, with its durability settings.
pub enum Conn {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// SQLite caps a statement at 32766 parameters and PostgreSQL at 65535.
const MAX_PARAMS: usize = 30_000;

macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut q = $query;
        for v in $values {
            q = match v {
                V::Uuid(x) => q.bind(x),
                V::OptUuid(x) => q.bind(x),
                V::Text(x) => q.bind(x),
                V::OptText(x) => q.bind(x),
                V::Int(x) => q.bind(x),
                V::Big(x) => q.bind(x),
                V::Bool(x) => q.bind(x),
                V::Time(x) => q.bind(x),
                V::OptTime(x) => q.bind(x),
                V::Json(x) => q.bind(x),
            };
        }
        q
    }};
}

impl Conn {
    pub async fn acquire(db: &DatabaseConnection) -> anyhow::Result<Conn> {
        Ok(match db.get_database_backend() {
            DbBackend::Sqlite => Conn::Sqlite(db.get_sqlite_connection_pool().acquire().await?),
            _ => Conn::Postgres(db.get_postgres_connection_pool().acquire().await?),
        })
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Conn::Sqlite(_))
    }

    /// `?` placeholders on SQLite, `$n` on PostgreSQL, numbered from 1 in order of appearance.
    fn placeholders(&self, sql: &str) -> String {
        if self.is_sqlite() {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Runs one statement written with `?` placeholders; returns the rows it touched.
    pub async fn exec(&mut self, sql: &str, values: Vec<V>) -> anyhow::Result<u64> {
        let sql = self.placeholders(sql);
        Ok(match self {
            Conn::Sqlite(c) => {
                let c: &mut SqliteConnection = c;
                bind_all!(sqlx::query(AssertSqlSafe(sql)), values)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
            Conn::Postgres(c) => {
                let c: &mut PgConnection = c;
                bind_all!(sqlx::query(AssertSqlSafe(sql)), values)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
        })
    }

    /// The id of the RMA numbered `number`.
    pub async fn rma_id(&mut self, number: &str) -> anyhow::Result<Uuid> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let c: &mut SqliteConnection = c;
                sqlx::query_scalar("SELECT id FROM rmas WHERE number = ?")
                    .bind(number.to_string())
                    .fetch_one(c)
                    .await?
            }
            Conn::Postgres(c) => {
                let c: &mut PgConnection = c;
                sqlx::query_scalar("SELECT id FROM rmas WHERE number = $1")
                    .bind(number.to_string())
                    .fetch_one(c)
                    .await?
            }
        })
    }

    /// The indexes of `tables` that are not a primary key or constraint, as (name, CREATE statement):
    /// a bulk load drops them and builds them again afterwards.
    pub async fn secondary_indexes(&mut self, tables: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
        let list = tables.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(",");
        Ok(match self {
            Conn::Sqlite(c) => {
                let c: &mut SqliteConnection = c;
                let sql = format!(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({list})"
                );
                sqlx::query_as(AssertSqlSafe(sql)).fetch_all(c).await?
            }
            Conn::Postgres(c) => {
                let c: &mut PgConnection = c;
                let sql = format!(
                    "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                     AND tablename IN ({list}) \
                     AND indexname NOT IN (SELECT conname FROM pg_constraint)"
                );
                sqlx::query_as(AssertSqlSafe(sql)).fetch_all(c).await?
            }
        })
    }

    /// Loads `rows` into `table` as fast as the database takes them: `COPY ... FROM STDIN` on
    /// PostgreSQL, multi-row inserts on SQLite.
    pub async fn bulk_load(&mut self, table: &str, columns: &[&str], rows: Vec<Vec<V>>) -> anyhow::Result<()> {
        let Conn::Postgres(c) = self else {
            return self.insert(table, columns, rows).await;
        };
        let c: &mut PgConnection = c;
        let statement = format!("COPY {table} ({}) FROM STDIN WITH (FORMAT csv)", columns.join(","));
        let mut copy = c.copy_in_raw(&statement).await?;
        let mut csv = String::with_capacity(1 << 20);
        for row in rows {
            for (k, v) in row.into_iter().enumerate() {
                if k > 0 {
                    csv.push(',');
                }
                csv_field(&mut csv, v);
            }
            csv.push('\n');
            if csv.len() > 1 << 20 {
                copy.send(std::mem::take(&mut csv).into_bytes()).await?;
            }
        }
        copy.send(csv.into_bytes()).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Inserts `rows` into `table` with as few multi-row statements as the parameter limit allows.
    pub async fn insert(&mut self, table: &str, columns: &[&str], rows: Vec<Vec<V>>) -> anyhow::Result<()> {
        let per_statement = (MAX_PARAMS / columns.len()).max(1);
        let tuple = format!("({})", vec!["?"; columns.len()].join(","));
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<V>> = rows.by_ref().take(per_statement).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(","),
                vec![tuple.as_str(); chunk.len()].join(",")
            );
            let values: Vec<V> = chunk.into_iter().flatten().collect();
            self.exec(&sql, values).await?;
        }
        Ok(())
    }
}

/// One CSV field as PostgreSQL's `COPY` reads it: an unquoted empty field is NULL.
fn csv_field(out: &mut String, v: V) {
    let quoted = |out: &mut String, s: &str| {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    };
    match v {
        V::Uuid(x) | V::OptUuid(Some(x)) => out.push_str(&x.to_string()),
        V::Text(s) | V::OptText(Some(s)) => quoted(out, &s),
        V::Int(x) => out.push_str(&x.to_string()),
        V::Big(x) => out.push_str(&x.to_string()),
        V::Bool(x) => out.push_str(if x { "true" } else { "false" }),
        V::Time(t) | V::OptTime(Some(t)) => out.push_str(&t.to_rfc3339()),
        V::Json(j) => quoted(out, &j.to_string()),
        V::OptUuid(None) | V::OptText(None) | V::OptTime(None) => {}
    }
}
