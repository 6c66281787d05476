//! The raw reference: the write an HTTP transition makes, run by the database's own client —
//! `sqlite3` (the C library itself; WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`, as the server) and
//! `pgbench` (libpq, prepared statements, one session per client) — so that nothing of depot's
//! (HTTP, the pool, sqlx, the ORM) is in the reference. The same statements also run through depot's own pool
//! (`load::direct_transitions`), the second line of the table: the gap between the two lines is the
//! driver's, the gap between the second and HTTP is depot's.
use crate::sql::V;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The statements of one reference write, with `?` placeholders and their values: the RMA with its
/// version check, its event, one outbox row.
pub fn statements(rma_id: Uuid, number: &str, now: DateTime<Utc>) -> [(&'static str, Vec<V>); 3] {
    let event_id = Uuid::now_v7();
    [
        (
            "UPDATE rmas SET status = ?, version = version + 1, updated_at = ?, status_changed_at = ?, closed_at = ? \
             WHERE id = ? AND version = ?",
            vec![
                V::Text("cancelled".into()),
                V::Time(now),
                V::Time(now),
                V::OptTime(Some(now)),
                V::Uuid(rma_id),
                V::Int(1),
            ],
        ),
        (
            "INSERT INTO events (id, rma_id, kind, from_status, to_status, actor_id, actor_email, at, note, fields) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                V::Uuid(event_id),
                V::Uuid(rma_id),
                V::Text("transition".into()),
                V::OptText(Some("reported".into())),
                V::OptText(Some("cancelled".into())),
                V::OptUuid(None),
                V::Text("bench@depot".into()),
                V::Time(now),
                V::OptText(Some("bench".into())),
                V::Json(json!({"reason": "bench"})),
            ],
        ),
        (
            "INSERT INTO notifications (id, event_id, rma_id, template, channel, recipients, state, attempts, \
             next_attempt_at, created_at, subject, body_text, body_html, message_id, attach_label) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                V::Uuid(Uuid::now_v7()),
                V::Uuid(event_id),
                V::Uuid(rma_id),
                V::Text("rma_closed".into()),
                V::Text("email".into()),
                V::Json(json!(["dc@example.com"])),
                V::Text("pending".into()),
                V::Int(0),
                V::Time(now),
                V::Time(now),
                V::OptText(Some(format!("{number} closed"))),
                V::OptText(Some(format!("{number} was cancelled: bench"))),
                V::OptText(Some(format!("<p>{number} was cancelled: bench</p>"))),
                V::OptText(Some(format!("<{}@depot>", Uuid::now_v7()))),
                V::Bool(false),
            ],
        ),
    ]
}

/// A value as an SQLite literal, in the form the application stores it (sqlx keeps UUIDs as blobs
/// and times as RFC 3339 text).
fn literal(v: &V) -> String {
    let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match v {
        V::Uuid(u) | V::OptUuid(Some(u)) => format!("X'{}'", u.simple()),
        V::Text(s) | V::OptText(Some(s)) => text(s),
        V::Int(i) => i.to_string(),
        V::Big(i) => i.to_string(),
        V::Bool(b) => (*b as i32).to_string(),
        V::Time(t) | V::OptTime(Some(t)) => text(&t.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
        V::Json(j) => text(&j.to_string()),
        V::OptUuid(None) | V::OptText(None) | V::OptTime(None) => "NULL".into(),
    }
}

fn render(sql: &str, values: &[V]) -> String {
    let mut out = String::with_capacity(sql.len() + 64 * values.len());
    let mut values = values.iter();
    for c in sql.chars() {
        match c {
            '?' => out.push_str(&literal(values.next().expect("a value per placeholder"))),
            c => out.push(c),
        }
    }
    out
}

/// One `sqlite3` client's script: a transaction per RMA, each looking its RMA up by number first,
/// with the server's settings (db.rs): WAL, full sync, foreign keys, waiting for the lock.
fn script(rmas: &[(Uuid, String)]) -> String {
    let mut out = String::from(
        ".bail on\n.timeout 30000\nPRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nPRAGMA foreign_keys=ON;\n",
    );
    for (id, number) in rmas {
        out.push_str("BEGIN IMMEDIATE;\n");
        out.push_str(&format!("SELECT id FROM rmas WHERE number = '{number}';\n"));
        for (sql, values) in statements(*id, number, Utc::now()) {
            out.push_str(&render(sql, &values));
            out.push_str(";\n");
        }
        out.push_str("COMMIT;\n");
    }
    out
}

/// Writes every RMA of `rmas` once, from `clients` clients side by side; returns the writes and
/// the time they took.
pub fn run(database_url: &str, clients: usize, rmas: &[(Uuid, String)]) -> (usize, Duration) {
    match database_url.starts_with("sqlite:") {
        true => run_sqlite3(database_url, clients, rmas),
        false => run_pgbench(database_url, clients, rmas),
    }
}

/// `sqlite3` processes, each with a script of its share.
fn run_sqlite3(database_url: &str, clients: usize, rmas: &[(Uuid, String)]) -> (usize, Duration) {
    let path = depot::db::sqlite_path(database_url).expect("a SQLite file");
    let scripts: Vec<String> = rmas.chunks(rmas.len().div_ceil(clients).max(1)).map(script).collect();
    let started = Instant::now();
    let children: Vec<_> = scripts
        .into_iter()
        .map(|script| {
            let mut child = Command::new("sqlite3")
                .arg(&path)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("sqlite3 on PATH (apt-get install sqlite3)");
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || stdin.write_all(script.as_bytes()));
            child
        })
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "the raw reference client failed: {status}");
    }
    (rmas.len(), started.elapsed())
}

/// The transaction `pgbench` runs: the RMA looked up (the next of the pool), then the same three
/// writes, as prepared statements.
const PGBENCH_SCRIPT: &str = "\
BEGIN;
SELECT id AS rid, number AS num, gen_random_uuid() AS eid FROM bench_raw_pool WHERE i = (SELECT nextval('bench_raw_next')) \\gset
UPDATE rmas SET status = 'cancelled', version = version + 1, updated_at = now(), status_changed_at = now(), closed_at = now() WHERE id = :rid AND version = 1;
INSERT INTO events (id, rma_id, kind, from_status, to_status, actor_id, actor_email, at, note, fields) VALUES (:eid, :rid, 'transition', 'reported', 'cancelled', NULL, 'bench@depot', now(), 'bench', '{\"reason\": \"bench\"}');
INSERT INTO notifications (id, event_id, rma_id, template, channel, recipients, state, attempts, next_attempt_at, created_at, subject, body_text, body_html, message_id, attach_label) VALUES (gen_random_uuid(), :eid, :rid, 'rma_closed', 'email', '[\"dc@example.com\"]', 'pending', 0, now(), now(), :num || ' closed', :num || ' was cancelled: bench', '<p>' || :num || ' was cancelled: bench</p>', '<' || gen_random_uuid() || '@depot>', false);
COMMIT;
";

/// `pgbench` with `clients` sessions over the pool (set up first, not timed); its rate excludes
/// connecting.
fn run_pgbench(database_url: &str, clients: usize, rmas: &[(Uuid, String)]) -> (usize, Duration) {
    let values: Vec<String> = rmas
        .iter()
        .enumerate()
        .map(|(i, (id, number))| format!("({}, '{id}', '{number}')", i + 1))
        .collect();
    let setup = format!(
        "DROP TABLE IF EXISTS bench_raw_pool; DROP SEQUENCE IF EXISTS bench_raw_next; \
         CREATE TABLE bench_raw_pool (i int PRIMARY KEY, id uuid NOT NULL, number text NOT NULL); \
         CREATE SEQUENCE bench_raw_next; INSERT INTO bench_raw_pool VALUES {};",
        values.join(",")
    );
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", &setup, database_url])
        .stdout(Stdio::null())
        .status()
        .expect("psql on PATH (apt-get install postgresql-client)");
    assert!(status.success(), "setting up the pgbench pool failed");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transition.sql");
    std::fs::write(&file, PGBENCH_SCRIPT).unwrap();
    let per_client = rmas.len() / clients;
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-t", &per_client.to_string(), "-f"])
        .arg(&file)
        .arg(database_url)
        .output()
        .expect("pgbench on PATH (apt-get install postgresql-contrib or postgresql-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let tps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's report: {text}"));
    let done = per_client * clients;
    (done, Duration::from_secs_f64(done as f64 / tps))
}
