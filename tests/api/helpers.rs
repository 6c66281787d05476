//! Spawns the real server on a random port with its own database (a temp SQLite file, or a fresh
//! PostgreSQL database when `DEPOT_TEST_DB=postgres`), migrated and loaded with the demo fixtures.
use depot::app::App;
use depot::config::Settings;
use depot::services::{fixtures, tokens};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::support::ScratchDb;

/// The public address the test server puts in labels and emails.
pub const BASE_URL: &str = "https://depot.example.test";

pub const FE: &str = "fe@vast.example";
pub const ADMIN: &str = "admin@vast.example";
pub const CAM: &str = "cam@vast.example";
pub const SAC: &str = "sac@vast.example";
pub const CW_TECH: &str = "dctech@coreweave.example";
pub const XAI_TECH: &str = "dctech@xai.example";
/// A machine that reports signals (carrier scans, BMC events).
pub const INTEGRATION: &str = "integration@vast.example";

pub struct TestApp {
    pub base: String,
    pub database_url: String,
    pub client: reqwest::Client,
    tokens: HashMap<&'static str, String>,
    pub db: sea_orm::DatabaseConnection,
    _db: ScratchDb,
}

/// Extra units for tests that need many RMAs: a rack of C-nodes at cw-ord1, spares on site and in both depots.
fn extra_fixtures() -> String {
    let mut t = String::from(
        "[[clusters]]\nsite = \"cw-ord1\"\nname = \"cw-ord1-test\"\nkind = \"object\"\n[[clusters.racks]]\nname = \"T01\"\nnodes = [\n",
    );
    for i in 1..=60 {
        t += &format!("  {{ u = {i}, hostname = \"t01-c{i:02}\", part = \"CN-5000\", serial = \"CN-T01-{i:04}\" }},\n");
    }
    t += "]\n";
    for depot in ["CAM", "SAC"] {
        let serials: Vec<String> = (1..=60).map(|i| format!("\"CN-{depot}-T{i:03}\"")).collect();
        t += &format!(
            "[[stock]]\ndepot = \"{depot}\"\npart = \"CN-5000\"\ncondition = \"new\"\nserials = [{}]\n",
            serials.join(", ")
        );
    }
    let spares: Vec<String> = (1..=10).map(|i| format!("\"CN-ORD1-TSP{i:02}\"")).collect();
    t += &format!(
        "[[site_spares]]\nsite = \"cw-ord1\"\npart = \"CN-5000\"\ncondition = \"new\"\nserials = [{}]\n",
        spares.join(", ")
    );
    t
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Settings of a test server on `url`: a free port, the test base URL, and `extra` on top.
fn test_settings(url: &str, extra: &[(&str, String)]) -> Settings {
    Settings::from_lookup(|key| match key {
        _ if extra.iter().any(|(k, _)| *k == key) => extra.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()),
        "DATABASE_URL" => Some(url.to_string()),
        "DEPOT_BIND" => Some("127.0.0.1:0".into()),
        "DEPOT_BASE_URL" => Some(BASE_URL.into()),
        // Tests read their own writes: the reliability figures are computed per request.
        "DEPOT_RELIABILITY_REFRESH_S" => Some("0".into()),
        _ => None,
    })
    .unwrap()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns the app with extra environment settings (e.g. `SMTP_URL`).
pub async fn spawn_app_with(extra: &[(&str, String)]) -> TestApp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let scratch = ScratchDb::for_suite("test").await;
    let url = scratch.url.clone();
    let app = App::build(test_settings(&url, extra)).await.expect("app builds");
    let port = app.port();
    let db = app.state.db.clone();
    // The demo's records without its cases under way: each test starts from an idle depot.
    fixtures::load_str(&db, fixtures::DEMO).await.unwrap();
    fixtures::load_str(&db, &extra_fixtures()).await.unwrap();
    let mut issued = HashMap::new();
    for email in [FE, ADMIN, CAM, SAC, CW_TECH, XAI_TECH, INTEGRATION] {
        issued.insert(email, tokens::create(&db, email, "test").await.unwrap());
    }
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        database_url: url,
        client: reqwest::Client::new(),
        tokens: issued,
        db,
        _db: scratch,
    }
}

/// An answer: its status and its JSON body (Null when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// Asserts the status and, for errors, the contract's error shape.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        if status >= 400 {
            let err = &self.body["error"];
            assert!(
                err["code"].is_string() && err["message"].is_string(),
                "not the error shape: {}",
                self.body
            );
        }
        self.body
    }
}

impl TestApp {
    /// Starts another instance on the same database (as a second server behind a load balancer).
    pub async fn another_instance(&self, extra: &[(&str, String)]) -> String {
        let app = App::build(test_settings(&self.database_url, extra))
            .await
            .expect("second instance builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        base
    }

    pub fn token(&self, who: &str) -> &str {
        &self.tokens[who]
    }

    /// The status and JSON body of a response.
    pub async fn answer(res: reqwest::Response) -> Answer {
        let status = res.status();
        let text = res.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// A request to `path` as `who`, ready for a body.
    fn request(&self, method: reqwest::Method, who: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token(who))
    }

    pub async fn get(&self, who: &str, path: &str) -> Answer {
        let res = self.request(reqwest::Method::GET, who, path).send().await.unwrap();
        Self::answer(res).await
    }

    /// The raw bytes of a GET.
    pub async fn download(&self, who: &str, path: &str) -> (u16, Vec<u8>) {
        let res = self.request(reqwest::Method::GET, who, path).send().await.unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    pub async fn post(&self, who: &str, path: &str, body: &Value) -> Answer {
        let res = self
            .request(reqwest::Method::POST, who, path)
            .json(body)
            .send()
            .await
            .unwrap();
        Self::answer(res).await
    }

    pub async fn put(&self, who: &str, path: &str, body: &Value) -> Answer {
        let res = self
            .request(reqwest::Method::PUT, who, path)
            .json(body)
            .send()
            .await
            .unwrap();
        Self::answer(res).await
    }

    pub async fn post_raw(&self, who: &str, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let res = self
            .request(reqwest::Method::POST, who, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(res).await
    }

    pub async fn open(&self, who: &str, site: &str, serial: &str) -> Value {
        self.post(
            who,
            "/api/v1/rmas",
            &json!({"site": site, "serial": serial, "severity": "sev2", "symptom": "node down"}),
        )
        .await
        .expect(201)
    }

    pub async fn rma(&self, number: &str) -> Value {
        self.get(FE, &format!("/api/v1/rmas/{number}")).await.expect(200)
    }

    pub async fn unit(&self, serial: &str) -> Value {
        self.get(FE, &format!("/api/v1/units/{serial}")).await.expect(200)
    }

    /// Opens an RMA as `who` and carries it through diagnosis to `approved` (a whole-unit
    /// replacement unless `approval` says otherwise); returns its number.
    pub async fn approved(&self, who: &str, site: &str, serial: &str, approval: Option<Value>) -> String {
        let number = self.open(who, site, serial).await["number"]
            .as_str()
            .unwrap()
            .to_string();
        self.step(FE, &number, "diagnosing", json!({})).await;
        let approval = approval.unwrap_or_else(|| json!({"fault_code": "BOOT_FAIL", "replacement_kind": "whole_unit"}));
        self.step(FE, &number, "approved", approval).await;
        number
    }

    /// Carries an approved RMA through shipping (a CN-5000 spare from CAM) and delivery to the
    /// swap at the site; returns the replacement's serial.
    pub async fn swapped(&self, number: &str, who: &str, pulled: &str) -> String {
        let replacement = self.stock_unit("CAM", "CN-5000").await;
        let ship =
            json!({"replacement_serial": replacement, "carrier": "UPS", "tracking_number": tracking_for(number)});
        self.step(CAM, number, "replacement_shipped", ship).await;
        self.step(who, number, "replacement_delivered", json!({})).await;
        let swap = json!({"installed_serial": replacement, "pulled_serial": pulled});
        self.step(who, number, "swapped", swap).await;
        replacement
    }

    /// Sends a swapped RMA's failed unit `pulled` back to CAM, where it is received and triaged.
    pub async fn back_at_triage(&self, number: &str, who: &str, pulled: &str) {
        let back = json!({"carrier": "FedEx", "tracking_number": "123456789012", "depot": "CAM"});
        self.step(who, number, "return_shipped", back).await;
        self.step(CAM, number, "received", json!({"scanned_serial": pulled}))
            .await;
        self.step(CAM, number, "triage", json!({})).await;
    }

    /// Attempts a transition with the RMA's current version.
    pub async fn try_move(&self, who: &str, number: &str, to: &str, fields: Value) -> Answer {
        let version = self.rma(number).await["version"].clone();
        let mut body = fields;
        body["to"] = json!(to);
        body["version"] = version;
        self.post(who, &format!("/api/v1/rmas/{number}/transitions"), &body)
            .await
    }

    /// The Prometheus exposition at `/metrics`, as a scraper reads it.
    pub async fn metrics(&self) -> String {
        let res = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap();
        res.text().await.unwrap()
    }

    pub async fn step(&self, who: &str, number: &str, to: &str, fields: Value) -> Value {
        let rma = self.try_move(who, number, to, fields).await.expect(200);
        assert_eq!(rma["status"], to);
        rma
    }

    /// The first serial in stock at `depot` of `part`.
    pub async fn stock_unit(&self, depot: &str, part: &str) -> String {
        let page = self
            .get(CAM, &format!("/api/v1/stock?depot={depot}&part={part}&limit=1"))
            .await
            .expect(200);
        page["items"][0]["serial"].as_str().expect("stock left").to_string()
    }

    pub async fn events(&self, number: &str) -> Vec<Value> {
        let page = self
            .get(FE, &format!("/api/v1/rmas/{number}/events?limit=500"))
            .await
            .expect(200);
        page["items"].as_array().unwrap().clone()
    }

    /// What a refused request must leave alone: the RMA, its events, its units and the depots' stock.
    pub async fn snapshot(&self, number: &str) -> Value {
        let rma = self.rma(number).await;
        let mut units = vec![];
        for key in ["serial", "returned_serial", "replacement_serial"] {
            if let Some(serial) = rma[key].as_str() {
                units.push(self.unit(serial).await);
            }
        }
        let mut stock = vec![];
        for depot in ["CAM", "SAC"] {
            stock.push(
                self.get(CAM, &format!("/api/v1/stock?depot={depot}&limit=500"))
                    .await
                    .expect(200),
            );
        }
        // Clocks count down by themselves; everything else must stand still.
        let mut rma = rma;
        rma.as_object_mut().unwrap().remove("clocks");
        json!({"rma": rma, "events": self.events(number).await, "units": units, "stock": stock})
    }
}

/// Runs `test` on `cases` inputs drawn from `strategy` (a failure is shrunk to its smallest input),
/// all against one `world`, which is dropped when the run ends: a test server kept in a static
/// would never give its database back.
pub fn check_cases<W, S>(world: W, cases: u32, strategy: S, test: impl Fn(&W, S::Value))
where
    S: proptest::strategy::Strategy,
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config, TestRunner};
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let outcome = TestRunner::new(config).run(&strategy, |value| {
        test(&world, value);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// A UPS-shaped tracking number unique to an RMA (`1Z`, then 16 letters or digits).
pub fn tracking_for(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    format!("1Z999AA1{:0>10}", &digits[digits.len().saturating_sub(10)..])
}
