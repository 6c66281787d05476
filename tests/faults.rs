//! A database that is locked or full: writes answer 503 with a clear error and leave nothing
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
use support::depot;

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

async fn call(http: &reqwest::Client, token: &str, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = http.request(method.parse().unwrap(), url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
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
    if std::env::var("DEPOT_TEST_DB").as_deref() == Ok("postgres") {
        return; // The faults are SQLite's files; PostgreSQL's own are its server's business.
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(dir.path(), "16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root)");
        return;
    };
    let file = fs.0.join("depot.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    assert!(depot(&url).arg("load-fixtures").status().unwrap().success());
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

    // Full: the filesystem has no room left.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=64k"])
        .stderr(Stdio::null())
        .status();
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
    assert!(refused > 0, "a full disk refused no write");
    std::fs::remove_file(&filler).unwrap();
    let (status, page) = call(&http, &token, "GET", format!("{base}/api/v1/rmas?limit=50"), None).await;
    assert_eq!(status, 200, "reads go on after the disk was full");
    let kept = page["items"].as_array().unwrap().len();
    assert_eq!(kept, 1 + 5 - refused, "every answered open is there, no refused one is");

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
