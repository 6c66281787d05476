//! Concurrent writers: one winner per version, gap-free numbers, no "database is locked".
use crate::helpers::*;
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn eight_simultaneous_transitions_on_one_version_give_one_winner() {
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let body = json!({"to": "diagnosing", "version": 1});
    let path = format!("/api/v1/rmas/{number}/transitions");
    let answers = join_all((0..8).map(|_| app.post(FE, &path, &body))).await;
    let mut codes: Vec<u16> = answers.into_iter().map(|a| a.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.events(number).await.len(), 2, "opened + one transition");
    assert_eq!(app.rma(number).await["version"], 2);

    // A closing queues a notice: only the winner's event and notice are kept (on PostgreSQL the
    // writes of such a plan are one statement outside any transaction, made from the update's result).
    use depot::entities::notification;
    use sea_orm::EntityTrait;
    let body = json!({"to": "cancelled", "version": 2, "reason": "opened twice"});
    let answers = join_all((0..8).map(|_| app.post(FE, &path, &body))).await;
    let mut codes: Vec<u16> = answers.into_iter().map(|a| a.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.events(number).await.len(), 3, "opened + two transitions");
    let queued = notification::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(queued.len(), 1, "one rma_closed notice");
    assert_eq!(queued[0].template, "rma_closed");
    assert_eq!(app.rma(number).await["version"], 3);
}

#[tokio::test]
async fn fifty_concurrent_opens_get_fifty_consecutive_numbers() {
    let app = spawn_app().await;
    let serials: Vec<String> = (1..=50).map(|i| format!("CN-T01-{i:04}")).collect();
    let app = &app;
    let answers = join_all(serials.iter().map(|s| async move {
        app.post(
            FE,
            "/api/v1/rmas",
            &json!({"site": "cw-ord1", "serial": s, "severity": "sev3", "symptom": "down"}),
        )
        .await
    }))
    .await;
    let mut numbers: Vec<String> = answers
        .into_iter()
        .map(|a| a.expect(201)["number"].as_str().unwrap().to_string())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 50);
    let seq: Vec<u32> = numbers
        .iter()
        .map(|n| n.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seq, (1..=50).collect::<Vec<u32>>(), "numbers are gap-free");
}

#[tokio::test]
async fn two_rmas_racing_for_one_spare_allocate_it_once() {
    let app = spawn_app().await;
    let mut numbers = vec![];
    for serial in ["CN-T01-0001", "CN-T01-0002"] {
        let n = app.open(FE, "cw-ord1", serial).await["number"]
            .as_str()
            .unwrap()
            .to_string();
        app.step(FE, &n, "diagnosing", json!({})).await;
        app.step(
            FE,
            &n,
            "approved",
            json!({"fault_code": "PSU", "replacement_kind": "whole_unit"}),
        )
        .await;
        numbers.push(n);
    }
    let unit = app.stock_unit("CAM", "CN-5000").await;
    let body = json!({"to": "replacement_shipped", "version": 3, "replacement_serial": unit, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    let (app, body) = (&app, &body);
    let answers = join_all(
        numbers
            .iter()
            .map(|n| async move { app.post(CAM, &format!("/api/v1/rmas/{n}/transitions"), body).await }),
    )
    .await;
    let mut codes: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes[0], 200);
    assert!(codes[1] == 409 || codes[1] == 422, "the loser is refused: {codes:?}");
    let holders: Vec<_> = join_all(numbers.iter().map(|n| app.rma(n)))
        .await
        .into_iter()
        .filter(|r| r["replacement_serial"] == unit.as_str())
        .collect();
    assert_eq!(holders.len(), 1);
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    // Four more servers start at once against the test database (already migrated), and four
    // against a fresh one: all come up, and the schema is applied exactly once.
    let app = spawn_app().await;
    let starts = (0..4).map(|_| app.another_instance(&[]));
    assert_eq!(join_all(starts).await.len(), 4);
    if crate::support::on_postgres() {
        use sea_orm::ConnectionTrait;
        let fresh = crate::support::ScratchDb::for_suite("migrate").await;
        let url = fresh.url.clone();
        let migrations = (0..4).map(|_| {
            let url = url.clone();
            async move {
                let db = sea_orm::Database::connect(&url).await.unwrap();
                depot::app::migrate(&db).await
            }
        });
        for result in join_all(migrations).await {
            result.expect("every instance starts");
        }
        let db = sea_orm::Database::connect(&url).await.unwrap();
        let applied = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT COUNT(*) AS n FROM seaql_migrations".to_string(),
            ))
            .await
            .unwrap()
            .unwrap();
        use migrations::MigratorTrait;
        let every = migrations::Migrator::migrations().len() as i64;
        assert_eq!(
            applied.try_get::<i64>("", "n").unwrap(),
            every,
            "each migration applied once"
        );
        db.close().await.unwrap();
    }
}

/// Writes that arrive together share commits (SQLite's group commit): a refused one is rolled back
/// alone, and every accepted one is recorded once.
#[tokio::test]
async fn writes_arriving_together_commit_together_and_a_refusal_undoes_only_itself() {
    let app = spawn_app().await;
    let mut numbers = vec![];
    // Every C-node of cw-ord1.
    for i in 1..=8 {
        let rma = app.open(FE, "cw-ord1", &format!("CN-ORD1-{:04}", 100 + i)).await;
        numbers.push(rma["number"].as_str().unwrap().to_string());
    }
    let requests = numbers.iter().flat_map(|number| {
        let path = format!("/api/v1/rmas/{number}/transitions");
        [
            (path.clone(), json!({"to": "diagnosing", "version": 1})),
            (path, json!({"to": "diagnosing", "version": 0})),
        ]
    });
    let requests: Vec<_> = requests.collect();
    let answers = join_all(requests.iter().map(|(path, body)| app.post(FE, path, body))).await;
    for ((_, body), answer) in requests.iter().zip(&answers) {
        let want = if body["version"] == 1 { 200 } else { 409 };
        assert_eq!(answer.status.as_u16(), want, "{body} → {:?}", answer.body);
    }
    for number in &numbers {
        let rma = app.rma(number).await;
        assert_eq!(
            (rma["status"].as_str(), rma["version"].as_i64()),
            (Some("diagnosing"), Some(2))
        );
        let events = app.events(number).await;
        assert_eq!(events.iter().filter(|e| e["to"] == "diagnosing").count(), 1, "{number}");
    }
}

/// SQLite: what the writer commits reaches the database file itself, not only its log, while the
/// writer checkpoints only past thousands of log pages: the checkpointer beside it copies it there.
#[tokio::test]
async fn sqlite_commits_reach_the_database_file_off_the_writers_turn() {
    if crate::support::on_postgres() {
        return;
    }
    let app = spawn_app().await;
    let rma = app.open(FE, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap().to_string();
    let path = format!("/api/v1/rmas/{number}/transitions");
    app.post(FE, &path, &json!({"to": "diagnosing", "version": 1}))
        .await
        .expect(200);
    // The file alone, its log ignored (`immutable`), read by another process: this one's SQLite
    // locks would not survive a descriptor of the file opened and closed beside them.
    let file = depot::db::sqlite_path(&app.database_url).unwrap();
    let status_in_file = || {
        let read = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(f'file:{sys.argv[1]}?immutable=1', uri=True)\n\
                 row = db.execute('SELECT status FROM rmas WHERE number = ?', (sys.argv[2],)).fetchone()\n\
                 print(row[0] if row else '')",
                &file,
                &number,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&read.stdout).trim().to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status_in_file() != "diagnosing" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status_in_file(), "diagnosing");
}
