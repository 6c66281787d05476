//! A database that is locked, full or read-only: writes answer 503 with a clear error and leave nothing
//! behind, reads go on, and depot recovers by itself when the fault clears. The SQLite file lives
//! on a small tmpfs of its own, so "full" is real (mounting needs root, as CI and the dev machine
//! have; elsewhere the test says it is skipped).
// Shared with the other process-level tests, which use parts this one does not.
#[allow(dead_code)]
mod support;

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::{call, depot};

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .is_ok_and(|s| s.success())
}

/// A tmpfs mounted for the test and unmounted when it ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let at = dir.join("fs");
        std::fs::create_dir_all(&at).unwrap();
        let opts = format!("size={size}");
        sh(&["mount", "-t", "tmpfs", "-o", &opts, "tmpfs", at.to_str().unwrap()]).then(|| Tmpfs(at))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        sh(&["umount", "-l", self.0.to_str().unwrap()]);
    }
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(url: &str) -> Server {
    let mut cmd = depot(url);
    cmd.env("DEPOT_DB_BUSY_TIMEOUT_MS", "300");
    let (child, url) = support::serve(cmd);
    Server(child, url)
}

/// The count `sql` answers in its column `n`.
async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> usize {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as usize
}

fn assert_unavailable((status, body): &(u16, Value), what: &str) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{body}"
    );
}

#[tokio::test]
async fn a_locked_or_full_database_answers_503_and_recovers() {
    if support::on_postgres() {
        return; // The faults are SQLite's files; PostgreSQL's own are its server's business.
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(dir.path(), "16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root)");
        return;
    };
    let file = fs.0.join("depot.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    support::load_demo_records(&url);
    let token = support::token(depot(&url), "fe@vast.example");
    let server = start(&url);
    let base = server.1.clone();
    let http = reqwest::Client::new();
    let open = |serial: &str| json!({"site": "cw-ord1", "serial": serial, "severity": "sev3", "symptom": "fault test"});
    let (status, rma) = call(
        &http,
        &token,
        "POST",
        format!("{base}/api/v1/rmas"),
        Some(open("CN-ORD1-0101")),
    )
    .await;
    assert_eq!(status, 201);
    let number = rma["number"].as_str().unwrap().to_string();
    let rma_url = format!("{base}/api/v1/rmas/{number}");
    let history = format!("{rma_url}/events");
    let before = call(&http, &token, "GET", history.clone(), None).await;
    let diagnose = || Some(json!({"to": "diagnosing", "version": 1}));

    // Locked: another process holds the write lock longer than depot waits.
    let holder = Database::connect(format!("sqlite://{}", file.display())).await.unwrap();
    holder.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    let locked = call(&http, &token, "POST", format!("{rma_url}/transitions"), diagnose()).await;
    assert_unavailable(&locked, "locked");
    assert_eq!(
        call(&http, &token, "GET", rma_url.clone(), None).await.0,
        200,
        "reads go on while locked"
    );
    holder.execute_unprepared("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    assert_eq!(
        call(&http, &token, "GET", history.clone(), None).await,
        before,
        "nothing partial"
    );

    // Full: the filesystem has no room left. Small writes may still fit in room the write-ahead
    // log already holds; a 4 MB attachment cannot.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=64k"])
        .stderr(Stdio::null())
        .status();
    let attachments = format!("{rma_url}/attachments");
    let evidence = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'x'; 4 << 20]).file_name("bmc-sel.log"),
    );
    let res = http
        .post(&attachments)
        .bearer_auth(&token)
        .multipart(evidence)
        .send()
        .await
        .unwrap();
    let upload = (res.status().as_u16(), res.json().await.unwrap_or(Value::Null));
    assert_unavailable(&upload, "full");
    let mut refused = 0;
    for serial in [
        "CN-ORD1-0102",
        "CN-ORD1-0103",
        "CN-ORD1-0104",
        "CN-ORD1-0105",
        "CN-ORD1-0106",
    ] {
        let answer = call(&http, &token, "POST", format!("{base}/api/v1/rmas"), Some(open(serial))).await;
        if answer.0 != 201 {
            assert_unavailable(&answer, "full");
            refused += 1;
        }
    }
    std::fs::remove_file(&filler).unwrap();
    let (_, kept_files) = call(&http, &token, "GET", attachments, None).await;
    assert_eq!(kept_files["items"], json!([]), "the refused upload left nothing");
    let (status, page) = call(&http, &token, "GET", format!("{base}/api/v1/rmas?limit=50"), None).await;
    assert_eq!(status, 200, "reads go on after the disk was full");
    let kept = page["items"].as_array().unwrap().len();
    assert_eq!(kept, 1 + 5 - refused, "every answered open is there, no refused one is");
    // Committed, not only acknowledged: another process sees them too. (A connection that sqlx
    // still believed inside the refused transaction once turned later "transactions" into
    // uncommitted savepoints; db.rs closes such connections.)
    let direct = Database::connect(format!("sqlite://{}", file.display())).await.unwrap();
    let committed = count(&direct, "SELECT COUNT(*) AS n FROM rmas").await;
    direct.close().await.unwrap();
    assert_eq!(committed, kept, "every acknowledged open is committed");

    // Recovered: the same write goes through, without a restart, once the background work that
    // was refused meanwhile (mail, scheduler) has let go of the lock; a few seconds at most.
    let mut answer = (0, Value::Null);
    for _ in 0..20 {
        answer = call(&http, &token, "POST", format!("{rma_url}/transitions"), diagnose()).await;
        if answer.0 != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (status, moved) = answer;
    assert_eq!(status, 200, "recovered: {moved}");
    assert_eq!(moved["version"], 2);

    drop(server);
}

/// Runs `depot` as the unprivileged `nobody`, so file permissions bind it (the test runs as root).
fn depot_as_nobody(url: &str) -> Command {
    let plain = depot(url);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(plain.get_program())
        .current_dir(plain.get_current_dir().unwrap());
    for (key, value) in plain.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd
}

fn set_writable(data: &Path, writable: bool) {
    let (files, dir) = if writable { ("644", "755") } else { ("444", "555") };
    for entry in std::fs::read_dir(data).unwrap() {
        assert!(sh(&["chmod", files, entry.unwrap().path().to_str().unwrap()]));
    }
    assert!(sh(&["chmod", dir, data.to_str().unwrap()]));
}

#[tokio::test]
async fn a_read_only_database_answers_503_never_stale_data_and_recovers() {
    if support::on_postgres() {
        return;
    }
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !root || !sh(&["setpriv", "--version"]) {
        eprintln!("SKIPPED: needs root and setpriv to run the server as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let file = data.join("depot.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    support::load_demo_records(&url);
    let token = support::token(depot(&url), "fe@vast.example");
    assert!(sh(&["chmod", "755", dir.path().to_str().unwrap()]));
    assert!(sh(&["chown", "-R", "nobody:nogroup", data.to_str().unwrap()]));

    let mut cmd = depot_as_nobody(&url);
    // Short waits and short-lived connections, so the test sees the fault within seconds.
    cmd.env("DEPOT_DB_BUSY_TIMEOUT_MS", "500")
        .env("DEPOT_DB_CONNECTION_LIFETIME_S", "1");
    let (child, base) = support::serve(cmd);
    let _server = Server(child, base.clone());
    let http = reqwest::Client::new();
    let (status, rma) = call(
        &http,
        &token,
        "POST",
        format!("{base}/api/v1/rmas"),
        Some(json!({"site": "cw-ord1", "serial": "CN-ORD1-0101", "severity": "sev3", "symptom": "read-only test"})),
    )
    .await;
    assert_eq!(status, 201, "{rma}");
    let rma_url = format!("{base}/api/v1/rmas/{}", rma["number"].as_str().unwrap());
    let step = |to: &str, version: i64| Some(json!({"to": to, "version": version, "note": "x"}));
    let (status, moved) = call(
        &http,
        &token,
        "POST",
        format!("{rma_url}/transitions"),
        step("diagnosing", 1),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let history = call(&http, &token, "GET", format!("{rma_url}/events"), None).await;

    set_writable(&data, false);
    // Connections opened before the fault hold the files open for writing, and may still write;
    // they are renewed within two lifetimes, and from then on SQLite opens the files read-only.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let cancel = || {
        step("cancelled", 2).map(|mut b| {
            b["reason"] = json!("read-only test");
            b
        })
    };
    let refused = call(&http, &token, "POST", format!("{rma_url}/transitions"), cancel()).await;
    assert_unavailable(&refused, "read-only");
    // Reads are refused too (no connection opens read-only; see db.rs), or, if a connection from
    // before the fault serves them, see everything acknowledged before it.
    for _ in 0..5 {
        let (status, seen) = call(&http, &token, "GET", rma_url.clone(), None).await;
        match status {
            503 => assert_unavailable(&(status, seen), "read-only read"),
            200 => assert_eq!(
                seen["version"], 2,
                "a read on a read-only database is not stale: {seen}"
            ),
            other => panic!("a read during the fault answered {other}: {seen}"),
        }
    }

    set_writable(&data, true);
    assert_eq!(
        call(&http, &token, "GET", format!("{rma_url}/events"), None).await,
        history,
        "nothing partial"
    );
    let mut answer = (0, Value::Null);
    for _ in 0..40 {
        answer = call(&http, &token, "POST", format!("{rma_url}/transitions"), cancel()).await;
        if answer.0 != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(answer.0, 200, "recovered: {}", answer.1);
    assert_eq!(answer.1["status"], "cancelled");
}

/// PostgreSQL restarted, or an administrator ended depot's sessions: every pooled connection is
/// dead. Requests after that answer as before, without a restart of depot: a connection unused for
/// a second is tested before it is handed out and replaced if it is gone.
#[tokio::test]
async fn postgres_sessions_ended_under_depot_are_replaced() {
    if !support::on_postgres() {
        return; // PostgreSQL's sessions; a SQLite file has none to lose.
    }
    let db = support::ScratchDb::for_suite("sessions_ended").await;
    support::load_demo_records(&db.url);
    let token = support::token(depot(&db.url), "fe@vast.example");
    let server = start(&db.url);
    let base = server.1.clone();
    let http = reqwest::Client::new();
    let list = || call(&http, &token, "GET", format!("{base}/api/v1/rmas?limit=5"), None);
    // Several connections in the pool, all in use within the last moment.
    for answer in futures::future::join_all((0..8).map(|_| list())).await {
        assert_eq!(answer.0, 200, "{}", answer.1);
    }

    let admin = Database::connect(support::postgres_admin_url()).await.unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let end_sessions = format!(
        "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()) AS ended"
    );
    let ended = count(&admin, &end_sessions).await;
    admin.close().await.unwrap();
    assert!(ended >= 1, "depot's sessions ended: {ended}");

    // A connection used within the last second is handed out untested: a request on one that
    // is gone answers 503 (nothing was changed) and the connection is dropped, so each fails at
    // most one request, and never as an internal error.
    let mut refused = 0;
    for _ in 0..ended + 3 {
        let answer = list().await;
        if answer.0 != 200 {
            assert_unavailable(&answer, "on a connection that is gone");
            refused += 1;
        }
    }
    assert!(refused <= ended, "{refused} refused for {ended} sessions ended");
    assert_eq!(list().await.0, 200, "every connection that was gone is replaced");
    // Ended again, then left unused for over a second: tested, replaced, none refused.
    let admin = Database::connect(support::postgres_admin_url()).await.unwrap();
    admin.execute_unprepared(&end_sessions).await.unwrap();
    admin.close().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for answer in futures::future::join_all((0..8).map(|_| list())).await {
        assert_eq!(answer.0, 200, "after the sessions ended: {}", answer.1);
    }
    let open = json!({"site": "cw-ord1", "serial": "CN-ORD1-0101", "severity": "sev3", "symptom": "sessions ended"});
    let (status, rma) = call(&http, &token, "POST", format!("{base}/api/v1/rmas"), Some(open)).await;
    assert_eq!(status, 201, "a write after the sessions ended: {rma}");
    drop(server);
}
