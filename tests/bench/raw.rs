//! The raw reference: the write an HTTP transition makes, run by the database's own command-line
//! client — `sqlite3` (the C library itself; WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`, as the
//! server) and `psql` (libpq, one session per client) — so that nothing of depot's (HTTP, the pool,
//! sqlx, the ORM) is in the reference. The same statements also run through depot's own pool
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

/// A value as an SQL literal, in the form the application stores it (sqlx keeps UUIDs as blobs
/// and times as RFC 3339 text on SQLite).
fn literal(v: &V, sqlite: bool) -> String {
    let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match v {
        V::Uuid(u) | V::OptUuid(Some(u)) if sqlite => format!("X'{}'", u.simple()),
        V::Uuid(u) | V::OptUuid(Some(u)) => text(&u.to_string()),
        V::Text(s) | V::OptText(Some(s)) => text(s),
        V::Int(i) => i.to_string(),
        V::Big(i) => i.to_string(),
        V::Bool(b) if sqlite => (*b as i32).to_string(),
        V::Bool(b) => b.to_string(),
        V::Time(t) | V::OptTime(Some(t)) => text(&t.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
        V::Json(j) => text(&j.to_string()),
        V::OptUuid(None) | V::OptText(None) | V::OptTime(None) => "NULL".into(),
    }
}

fn render(sql: &str, values: &[V], sqlite: bool) -> String {
    let mut out = String::with_capacity(sql.len() + 64 * values.len());
    let mut values = values.iter();
    for c in sql.chars() {
        match c {
            '?' => out.push_str(&literal(values.next().expect("a value per placeholder"), sqlite)),
            c => out.push(c),
        }
    }
    out
}

/// One client's script: a transaction per RMA, each looking its RMA up by number first.
fn script(sqlite: bool, rmas: &[(Uuid, String)]) -> String {
    let mut out = String::new();
    if sqlite {
        // The server's settings (db.rs): WAL, full sync, foreign keys, waiting for the lock.
        out.push_str(
            ".bail on\n.timeout 30000\nPRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nPRAGMA foreign_keys=ON;\n",
        );
    }
    for (id, number) in rmas {
        out.push_str(if sqlite { "BEGIN IMMEDIATE;\n" } else { "BEGIN;\n" });
        out.push_str(&format!("SELECT id FROM rmas WHERE number = '{number}';\n"));
        for (sql, values) in statements(*id, number, Utc::now()) {
            out.push_str(&render(sql, &values, sqlite));
            out.push_str(";\n");
        }
        out.push_str("COMMIT;\n");
    }
    out
}

/// Writes every RMA of `rmas` once, from `clients` client processes side by side; returns the
/// writes and the wall time they took.
pub fn run(database_url: &str, clients: usize, rmas: &[(Uuid, String)]) -> (usize, Duration) {
    let sqlite = database_url.starts_with("sqlite:");
    let scripts: Vec<String> = rmas
        .chunks(rmas.len().div_ceil(clients).max(1))
        .map(|share| script(sqlite, share))
        .collect();
    let started = Instant::now();
    let children: Vec<_> = scripts
        .iter()
        .map(|s| {
            let mut cmd = match sqlite {
                true => {
                    let path = database_url
                        .trim_start_matches("sqlite://")
                        .split('?')
                        .next()
                        .unwrap_or_default();
                    let mut c = Command::new("sqlite3");
                    c.arg(path);
                    c
                }
                false => {
                    let mut c = Command::new("psql");
                    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", database_url]);
                    c
                }
            };
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("sqlite3 or psql on PATH (apt-get install sqlite3 postgresql-client)");
            let mut stdin = child.stdin.take().unwrap();
            let script = s.clone();
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
