//! What the process-level tests share: the `depot` binary on a database, a server started from it,
//! and a browser session signed in through the form.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `depot` binary on the database at `url`.
pub fn depot(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depot"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "error");
    cmd
}

/// The text of the page at `url`, as `client` (signed in, or not) gets it.
pub async fn page_text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Loads the demo's records (`fixtures/demo.toml`) without its cases under way: a test that counts
/// RMAs or mails starts from an idle depot.
pub fn load_demo_records(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.toml");
    std::fs::copy(demo, dir.path().join("demo.toml")).unwrap();
    let status = depot(url)
        .args(["load-fixtures", "--dir"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "load-fixtures: {status}");
}

/// Runs `cmd serve` on a free port; returns the process and the URL it announced on its first
/// line. The rest of its output is drained, so it never blocks on a full pipe.
pub fn serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .arg("serve")
        .env("DEPOT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start depot serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = first.trim().rsplit(' ').next().unwrap_or_default().to_string();
    assert!(url.starts_with("http://"), "depot serve said: {first}");
    (child, url)
}

/// An API call with `token`: the status and the JSON body (Null when the body is not JSON).
pub async fn call(
    http: &reqwest::Client,
    token: &str,
    method: &str,
    url: String,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http.request(method.parse().unwrap(), url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

/// A new API token of `email`, made with `depot token create`.
pub fn token(mut cmd: Command, email: &str) -> String {
    let out = cmd.args(["token", "create", email]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// The CSRF token of a fresh sign-in form, fetched with `client` (whose cookies it binds to).
pub async fn sign_in_csrf(client: &reqwest::Client, base: &str) -> String {
    form_csrf(client, &format!("{base}/sign-in")).await
}

/// The CSRF token of the first form on the page at `url`, fetched with `client`.
pub async fn form_csrf(client: &reqwest::Client, url: &str) -> String {
    page(client, url)
        .await
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("{url} has a form with a CSRF token"))
        .to_string()
}

/// A browser session of `email` (password `depot-demo`), signed in through the form, built from
/// `builder` (cookies on, redirects off).
pub async fn signed_in_with(builder: reqwest::ClientBuilder, base: &str, email: &str) -> reqwest::Client {
    let client = builder
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csrf = sign_in_csrf(&client, base).await;
    let res = client
        .post(format!("{base}/sign-in"))
        .form(&[
            ("email", email),
            ("password", "depot-demo"),
            ("csrf", &csrf),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{email} signs in");
    client
}

pub async fn signed_in(base: &str, email: &str) -> reqwest::Client {
    signed_in_with(reqwest::Client::builder(), base, email).await
}

/// Whether the suite runs on PostgreSQL (`DEPOT_TEST_DB=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("DEPOT_TEST_DB").as_deref() == Ok("postgres")
}

/// The PostgreSQL server's maintenance database (`DEPOT_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("DEPOT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test or run: a SQLite file in a temporary directory, or a
/// uniquely named PostgreSQL database. Removed when dropped, unless kept.
pub struct ScratchDb {
    pub url: String,
    place: Option<Place>,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl ScratchDb {
    /// On the engine the suite runs on; `label` goes into the name, to tell leftovers apart.
    pub async fn for_suite(label: &str) -> ScratchDb {
        ScratchDb::new(label, on_postgres(), &std::env::temp_dir()).await
    }

    /// On PostgreSQL or, in a new directory under `parent`, on SQLite.
    pub async fn new(label: &str, postgres: bool, parent: &std::path::Path) -> ScratchDb {
        use sea_orm::ConnectionTrait;
        let name = format!("depot_{label}_{}", uuid::Uuid::now_v7().simple());
        if postgres {
            let admin_url = postgres_admin_url();
            let admin = sea_orm::Database::connect(&admin_url)
                .await
                .expect("PostgreSQL reachable");
            drop_stale_test_databases(&admin).await;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            admin.close().await.unwrap();
            let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
            ScratchDb {
                url,
                place: Some(Place::Postgres { admin_url, name }),
            }
        } else {
            std::fs::create_dir_all(parent).unwrap();
            let dir = tempfile::tempdir_in(parent).unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join(format!("{name}.db")).display());
            ScratchDb {
                url,
                place: Some(Place::Sqlite(dir)),
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.place, Some(Place::Postgres { .. }))
    }

    /// Leaves the database where it is; returns its URL.
    pub fn keep(mut self) -> String {
        if let Some(Place::Sqlite(dir)) = self.place.take() {
            let _ = dir.keep();
        }
        self.url.clone()
    }
}

/// Removes scratch databases that earlier runs never dropped (a test process killed midway by a
/// timeout or a cancelled run). Only those over an hour old by the UUIDv7 time in their name, none
/// still in use (`DROP DATABASE` without `FORCE` refuses a database with a session open), and never
/// a bench database, which `BENCH_KEEP` keeps on purpose.
async fn drop_stale_test_databases(admin: &sea_orm::DatabaseConnection) {
    use sea_orm::{ConnectionTrait, Statement};
    let Ok(rows) = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'depot\\_%' AND datname NOT LIKE 'depot\\_bench\\_%'",
        ))
        .await
    else {
        return;
    };
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(3600);
    for row in rows {
        let Ok(name) = row.try_get_by_index::<String>(0) else {
            continue;
        };
        let created = name
            .rsplit('_')
            .next()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|t| t.to_unix().0);
        if created.is_some_and(|secs| secs < hour_ago) {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await;
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Some(Place::Postgres { admin_url, name }) = self.place.take() {
            // Drop may run inside a test's runtime; a thread with its own runtime can block on it.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sea_orm::ConnectionTrait;
                    if let Ok(db) = sea_orm::Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The text of the page at `url`, fetched with `client` (a signed-in browser).
pub async fn page(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
