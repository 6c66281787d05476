//! `make bench`: generates a dataset, serves it with the real `depot serve` on loopback, drives it
//! with 2 and 16 clients and compares the write rate with the database's own (its command-line
//! client, and depot's pool without HTTP), measured in the same run.
//!
//! Settings (environment): `BENCH_RMAS` (20000; 1000000 for the full run), `BENCH_DB`
//! (`sqlite,postgres`), `BENCH_SECONDS` (10, the time bound of every loop), `BENCH_REQUESTS` (3000,
//! the count bound of every read loop), `BENCH_WRITES` (1500, the count bound of every write loop),
//! `DEPOT_TEST_POSTGRES_URL` (the PostgreSQL server to create the bench database on), `BENCH_KEEP`
//! (set: keep the database, the SQLite file under `target/bench` or the PostgreSQL one, to look into).
mod dataset;
mod history;
mod load;
mod raw;
mod sql;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

use load::{Bounds, Measured};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A `depot serve` process.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(database_url: &str) -> Server {
        let mut cmd = support::depot(database_url);
        cmd.env_remove("SMTP_URL");
        let (child, url) = support::serve(cmd);
        Server { child, url }
    }

    /// The most memory the process has held (VmHWM), in MB.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive connection per client, as a browser or an integration would hold.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
}

fn api_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    client_builder().default_headers(headers).build().unwrap()
}

async fn expect(res: reqwest::Result<reqwest::Response>, want: u16) -> Result<(), String> {
    let res = res.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    if status == want {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ))
    }
}

/// The most clients a write scenario runs.
const MAX_CLIENTS: usize = 16;

/// The servers the clients talk to (the same one, or one each of two, alternately) and how they sign in.
struct Target {
    urls: [String; 2],
    api: Vec<reqwest::Client>,
    pages: [reqwest::Client; 2],
}

impl Target {
    async fn new(urls: [String; 2], token: &str) -> Target {
        let pages = [
            support::signed_in_with(client_builder(), &urls[0], "fe@vast.example").await,
            support::signed_in_with(client_builder(), &urls[1], "fe@vast.example").await,
        ];
        Target {
            api: (0..MAX_CLIENTS).map(|_| api_client(token)).collect(),
            pages,
            urls,
        }
    }
}

/// GETs `path(i)` from both clients; 200 is success.
async fn reads(
    target: &Arc<Target>,
    bounds: Bounds,
    pages: bool,
    path: impl Fn(usize) -> String + Clone + Send + Sync + 'static,
) -> Measured {
    let target = target.clone();
    load::drive(2, bounds, move |c, i| {
        let target = target.clone();
        let url = format!("{}{}", target.urls[c], path(i));
        async move {
            let client = if pages { &target.pages[c] } else { &target.api[c] };
            expect(client.get(url).send().await, 200).await
        }
    })
    .await
}

async fn transitions(target: &Arc<Target>, clients: usize, numbers: Vec<String>, bounds: Bounds) -> Measured {
    let target = target.clone();
    let numbers = Arc::new(numbers);
    load::drive(clients, bounds, move |c, i| {
        let target = target.clone();
        let numbers = numbers.clone();
        async move {
            let number = numbers.get(i).ok_or("the write pool is used up")?;
            let url = format!("{}/api/v1/rmas/{number}/transitions", target.urls[c % 2]);
            let body = serde_json::json!({"to": "cancelled", "version": 1, "reason": "bench: duplicate report"});
            expect(target.api[c].post(url).json(&body).send().await, 200).await
        }
    })
    .await
}

/// The write pools of the dataset: raw with 1, 2 and 16 clients, same-stack, HTTP with 2 and 16,
/// and two PostgreSQL instances.
const WRITE_POOLS: usize = 7;

/// The ids of the RMAs numbered in `pools` (the raw clients write by id, as the server does once it
/// has looked the number up).
async fn rma_ids(
    db: &sea_orm::DatabaseConnection,
    pools: &[&[String]],
) -> std::collections::HashMap<String, uuid::Uuid> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let mut out = std::collections::HashMap::new();
    for numbers in pools.iter().flat_map(|p| p.chunks(500)) {
        let rows: Vec<(uuid::Uuid, String)> = depot::entities::rma::Entity::find()
            .select_only()
            .column(depot::entities::rma::Column::Id)
            .column(depot::entities::rma::Column::Number)
            .filter(depot::entities::rma::Column::Number.is_in(numbers.iter().cloned()))
            .into_tuple()
            .all(db)
            .await
            .unwrap();
        out.extend(rows.into_iter().map(|(id, n)| (n, id)));
    }
    out
}

/// One column of the results table.
#[derive(Default)]
struct Column {
    title: String,
    cells: Vec<(String, String)>,
}

impl Column {
    fn put(&mut self, row: &str, value: String) {
        self.cells.push((row.to_string(), value));
    }
    fn latency(&mut self, row: &str, m: &Measured) {
        let failures = if m.failed > 0 {
            format!(" ({} failed: {})", m.failed, m.first_failure.as_deref().unwrap_or(""))
        } else {
            String::new()
        };
        self.put(
            row,
            format!(
                "{:.2} / {:.2} ms (n={}){failures}",
                m.quantile_ms(0.5),
                m.quantile_ms(0.99),
                m.done
            ),
        );
    }
}

struct Run {
    rmas: usize,
    writes: usize,
    bounds: Bounds,
}

async fn bench_backend(run: &Run, postgres: bool) -> Vec<Column> {
    let target_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let scratch = support::ScratchDb::new("bench", postgres, &target_dir).await;
    // The server and the database share the host: no TLS on loopback (sqlx would negotiate it with a
    // server that offers it, and encrypt every row on both sides).
    let url = match postgres {
        true => format!("{}?sslmode=disable", scratch.url),
        false => scratch.url.clone(),
    };
    let settings = depot::config::Settings::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone())).unwrap();
    let db = depot::db::connect(&settings).await.unwrap();
    depot::app::migrate(&db).await.unwrap();
    depot::services::fixtures::load_str(&db, depot::services::fixtures::DEMO)
        .await
        .unwrap();

    let mut one = Column {
        title: if postgres { "PostgreSQL" } else { "SQLite" }.into(),
        ..Default::default()
    };
    let started = Instant::now();
    let ds = dataset::generate(&db, run.rmas, WRITE_POOLS * run.writes, chrono::Utc::now())
        .await
        .unwrap();
    let generated = started.elapsed();
    println!(
        "{}: generated {} RMAs, {} events, {} units in {:.1} s",
        one.title,
        ds.rmas,
        ds.events,
        ds.units,
        generated.as_secs_f64()
    );
    one.put(
        "dataset (RMAs / events / units)",
        format!("{} / {} / {}", ds.rmas, ds.events, ds.units),
    );
    one.put("dataset generated in", format!("{:.1} s", generated.as_secs_f64()));

    // The scheduler's first sweep catches up on alerts a live system would have sent already; the
    // next is one minute's, by the same scheduler, as a server runs them; the last, its reference,
    // by a new scheduler that remembers no key (a restarted instance's first steady sweep).
    let mut schedulers = [depot::jobs::Scheduler::default(), depot::jobs::Scheduler::default()];
    for (label, which) in [
        ("scheduler sweep, first (catch-up)", 0),
        ("scheduler sweep, steady", 0),
        ("scheduler sweep, steady, by a new scheduler (the reference)", 1),
    ] {
        let scheduler = &mut schedulers[which];
        let t = Instant::now();
        let queued = scheduler
            .run_once(&db, "http://bench", chrono::Utc::now())
            .await
            .unwrap();
        one.put(
            label,
            format!("{:.0} ms ({queued} queued)", t.elapsed().as_secs_f64() * 1000.0),
        );
    }
    // The reliability figures of the whole fleet, as the server precomputes them (at start and
    // every refresh interval): how long one computation takes at this size.
    let t = Instant::now();
    let figures = depot::services::reliability::Snapshot::compute(&db, None)
        .await
        .unwrap();
    one.put(
        "reliability figures computed in",
        format!(
            "{:.1} s ({} parts, {} fixes tables)",
            t.elapsed().as_secs_f64(),
            figures.weibull.len(),
            figures.fixes_tables()
        ),
    );
    drop(figures);
    let token = depot::services::tokens::create(&db, "fe@vast.example", "bench")
        .await
        .unwrap();

    // The references and the server take turns, a round each at a time, so that all meet the same
    // moments of a shared machine; the rates are totals over the rounds.
    const ROUNDS: usize = 5;
    // A multiple of the clients, so that every client has its share of a round's pool.
    let round_writes = run.writes / ROUNDS / MAX_CLIENTS * MAX_CLIENTS;
    let write_bounds = Bounds {
        requests: round_writes,
        time: run.bounds.time / ROUNDS as u32,
    };
    let mut pools = ds.pool.chunks(run.writes).map(<[String]>::to_vec);
    let mut pool = || pools.next().expect("a write pool per scenario");
    let (raw_pool, raw16_pool, same_stack_pool, http_pool, http16_pool, two_pool, raw1_pool) =
        (pool(), pool(), pool(), pool(), pool(), pool(), pool());
    let ids = rma_ids(&db, &[&raw_pool, &raw16_pool, &raw1_pool]).await;
    let server = Server::start(&url);
    let target = Arc::new(Target::new([server.url.clone(), server.url.clone()], &token).await);
    settled(&target, 0).await;
    let (mut raw1, mut raw2, mut raw16) = ((0, Duration::ZERO), (0, Duration::ZERO), (0, Duration::ZERO));
    let (mut same_stack, mut http, mut http16) = (Measured::default(), Measured::default(), Measured::default());
    // The first round meets the pool's connections new: each statement's first use on each is
    // prepared and its first plans made for their values (PostgreSQL). Its latencies are shown
    // apart from the later rounds', which show the server as it runs between connection renewals.
    let (mut http_first_round, mut http_later_rounds) = (Measured::default(), Measured::default());
    for round in 0..ROUNDS {
        let slice = |pool: &[String]| pool[round * round_writes..(round + 1) * round_writes].to_vec();
        let ids_of =
            |pool: &[String]| -> Vec<(uuid::Uuid, String)> { slice(pool).into_iter().map(|n| (ids[&n], n)).collect() };
        let (n, t) = raw::run(&url, 2, &ids_of(&raw_pool));
        raw2 = (raw2.0 + n, raw2.1 + t);
        // One client: the database's own limit, without waiting for its lock.
        let (n, t) = raw::run(&url, 1, &ids_of(&raw1_pool));
        raw1 = (raw1.0 + n, raw1.1 + t);
        same_stack.absorb(load::direct_transitions(&db, slice(&same_stack_pool), write_bounds).await);
        let this_round = transitions(&target, 2, slice(&http_pool), write_bounds).await;
        match round {
            0 => http_first_round.absorb(this_round.clone()),
            _ => http_later_rounds.absorb(this_round.clone()),
        }
        http.absorb(this_round);
        let (n, t) = raw::run(&url, MAX_CLIENTS, &ids_of(&raw16_pool));
        raw16 = (raw16.0 + n, raw16.1 + t);
        http16.absorb(transitions(&target, MAX_CLIENTS, slice(&http16_pool), write_bounds).await);
    }
    let rate = |(n, t): (usize, Duration)| n as f64 / t.as_secs_f64().max(1e-9);
    let (raw1, raw2, raw16) = (rate(raw1), rate(raw2), rate(raw16));
    let client = if postgres { "pgbench" } else { "sqlite3 CLI" };
    one.put(
        &format!("raw reference ({client}, 1 client), writes/s"),
        format!("{raw1:.0}"),
    );
    one.put(
        &format!("raw reference ({client}, 2 clients), writes/s"),
        format!("{raw2:.0}"),
    );
    one.put(
        &format!("raw reference ({client}, 16 clients), writes/s"),
        format!("{raw16:.0}"),
    );
    one.put(
        "same-stack reference (depot's pool, no HTTP, 2 clients), writes/s",
        format!(
            "{:.0} ({:.0} % of raw with 2 clients; n={}, failed {})",
            same_stack.per_second(),
            100.0 * same_stack.per_second() / raw2,
            same_stack.done,
            same_stack.failed
        ),
    );
    let failures = |m: &Measured| match m.failed {
        0 => String::new(),
        n => format!(" {n} failed: {:?}", m.first_failure),
    };
    one.put(
        "HTTP transitions/s, 2 clients (of raw 1 client / raw 2 / same-stack)",
        format!(
            "{:.0} ({:.0} % / {:.0} % / {:.0} %){}",
            http.per_second(),
            100.0 * http.per_second() / raw1,
            100.0 * http.per_second() / raw2,
            100.0 * http.per_second() / same_stack.per_second(),
            failures(&http)
        ),
    );
    one.put(
        "HTTP transitions/s, 16 clients (of raw 1 client / raw 16 / × HTTP with 2)",
        format!(
            "{:.0} ({:.0} % / {:.0} % / {:.2}×){}",
            http16.per_second(),
            100.0 * http16.per_second() / raw1,
            100.0 * http16.per_second() / raw16,
            http16.per_second() / http.per_second(),
            failures(&http16)
        ),
    );
    one.latency("transition p50 / p99, 2 clients (rounds 2-5)", &http_later_rounds);
    one.latency(
        "transition p50 / p99, 2 clients, first round (the pool's connections new)",
        &http_first_round,
    );
    one.latency("transition p50 / p99, 16 clients", &http16);
    for (row, m) in history::long_and_short(&db, &server.url).await {
        one.latency(&row, &m);
    }
    let scenarios = read_scenarios(&target, &ds, run.bounds).await;
    for (row, m) in &scenarios {
        one.latency(row, m);
    }
    one.put("server peak RSS", format!("{:.0} MB", server.peak_rss_mb()));
    let mut columns = vec![one];

    if postgres {
        // Two instances on the one database, one client each; the ratio is to the single instance.
        let second = Server::start(&url);
        let target = Arc::new(Target::new([server.url.clone(), second.url.clone()], &token).await);
        settled(&target, 1).await;
        let mut two = Column {
            title: "PostgreSQL, 2 instances".into(),
            ..Default::default()
        };
        let all_writes = Bounds {
            requests: run.writes,
            time: run.bounds.time,
        };
        let http2 = transitions(&target, 2, two_pool.to_vec(), all_writes).await;
        two.put(
            "HTTP transitions/s, 2 clients (of raw 1 client / raw 2 / same-stack)",
            format!(
                "{:.0} ({:.0} % / {:.0} % / {:.0} %; {:.2}× one instance)",
                http2.per_second(),
                100.0 * http2.per_second() / raw1,
                100.0 * http2.per_second() / raw2,
                100.0 * http2.per_second() / same_stack.per_second(),
                http2.per_second() / http.per_second()
            ),
        );
        two.latency("transition p50 / p99, 2 clients", &http2);
        for (row, m) in read_scenarios(&target, &ds, run.bounds).await {
            two.latency(&row, &m);
        }
        two.put(
            "server peak RSS",
            format!("{:.0} + {:.0} MB", server.peak_rss_mb(), second.peak_rss_mb()),
        );
        columns.push(two);
        drop(second);
    }
    drop(server);
    db.close().await.ok();
    if std::env::var("BENCH_KEEP").is_ok() {
        println!("kept {}", scratch.keep());
    }
    columns
}

/// Waits until the server behind `target.urls[instance]` has done its start-up work: it computes
/// the reliability figures at start (tens of seconds of a core at a million RMAs), and a measurement
/// taken meanwhile would measure a busy server. A request for them waits for them (past the
/// clients' timeout at that size: asked again until they answer).
async fn settled(target: &Target, instance: usize) {
    let t = Instant::now();
    let url = format!("{}/api/v1/reliability/afr", target.urls[instance]);
    while !target.api[instance]
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "server {instance} never settled"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "  server {instance} settled (its reliability figures computed) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

async fn read_scenarios(target: &Arc<Target>, ds: &dataset::Dataset, bounds: Bounds) -> Vec<(String, Measured)> {
    let numbers = Arc::new(ds.sample_numbers.clone());
    let serials = Arc::new(ds.sample_serials.clone());
    let sites = Arc::new(ds.site_codes.clone());
    const STATUSES: [&str; 5] = ["triage", "returned_to_stock", "reported", "approved", "cancelled"];
    let filter = {
        let sites = sites.clone();
        move |i: usize| {
            format!(
                "status={}&site={}",
                STATUSES[i % STATUSES.len()],
                sites[(i / STATUSES.len()) % sites.len()]
            )
        }
    };
    let mut out = vec![];
    let n = numbers.clone();
    out.push((
        "RMA GET p50 / p99".into(),
        reads(target, bounds, false, move |i| {
            format!("/api/v1/rmas/{}", n[i % n.len()])
        })
        .await,
    ));
    let f = filter.clone();
    out.push((
        "list with filters, API p50 / p99".into(),
        reads(target, bounds, false, move |i| {
            format!("/api/v1/rmas?{}&limit=50", f(i))
        })
        .await,
    ));
    let f = filter.clone();
    out.push((
        "list with filters, HTML p50 / p99".into(),
        reads(target, bounds, true, move |i| format!("/rmas?{}", f(i))).await,
    ));
    let s = serials.clone();
    out.push((
        "search by serial p50 / p99".into(),
        reads(target, bounds, false, move |i| {
            format!("/api/v1/rmas?q={}", s[i % s.len()])
        })
        .await,
    ));
    out.push((
        "dashboard (HTML) p50 / p99".into(),
        reads(target, bounds, true, |_| "/".to_string()).await,
    ));
    const BY: [&str; 4] = ["part", "site", "organization", "lot"];
    out.push((
        "failure rates, API p50 / p99".into(),
        reads(target, bounds, false, |i| {
            format!("/api/v1/reliability/afr?by={}", BY[i % 4])
        })
        .await,
    ));
    out.push((
        "reliability page (HTML) p50 / p99".into(),
        reads(target, bounds, true, |i| {
            format!("/reports/reliability?by={}", BY[i % 4])
        })
        .await,
    ));
    out
}

fn table(run: &Run, columns: &[Column]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut rows: Vec<String> = vec![];
    for c in columns {
        for (row, _) in &c.cells {
            if !rows.contains(row) {
                rows.push(row.clone());
            }
        }
    }
    let mut out = format!(
        "# depot bench, {}\n\n{cores} cores; {} RMAs; loops bounded by {} requests ({} writes) and {} s; 2 clients on loopback.\n\n| | {} |\n|---|{}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        run.rmas,
        run.bounds.requests,
        run.writes,
        run.bounds.time.as_secs(),
        columns.iter().map(|c| c.title.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(columns.len()),
    );
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                c.cells
                    .iter()
                    .find(|(r, _)| *r == row)
                    .map_or("—".to_string(), |(_, v)| v.clone())
            })
            .collect();
        out += &format!("| {row} | {} |\n", cells.join(" | "));
    }
    out
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let run = Run {
        rmas: env_number("BENCH_RMAS", 20_000),
        writes: env_number("BENCH_WRITES", 1_500),
        bounds: Bounds {
            requests: env_number("BENCH_REQUESTS", 3_000),
            time: Duration::from_secs(env_number("BENCH_SECONDS", 10) as u64),
        },
    };
    let backends = std::env::var("BENCH_DB").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut columns = vec![];
    for backend in backends.split(',').map(str::trim) {
        match backend {
            "sqlite" => columns.extend(bench_backend(&run, false).await),
            "postgres" => columns.extend(bench_backend(&run, true).await),
            other => panic!("BENCH_DB: unknown database `{other}` (sqlite, postgres)"),
        }
    }
    let report = table(&run, &columns);
    println!("\n{report}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/results.md");
    std::fs::write(&path, &report).unwrap();
    println!("written to {}", path.display());
}
