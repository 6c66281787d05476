//! `make bench`: generates a dataset, serves it with the real `depot serve` on loopback, drives it
//! with two clients and compares the write rate with the database's own, measured in the same run.
//!
//! Settings (environment): `BENCH_RMAS` (20000; 1000000 for the full run), `BENCH_DB`
//! (`sqlite,postgres`), `BENCH_SECONDS` (10, the time bound of every loop), `BENCH_REQUESTS` (3000,
//! the count bound of every read loop), `BENCH_WRITES` (1500, the count bound of every write loop),
//! `DEPOT_TEST_POSTGRES_URL` (the PostgreSQL server to create the bench database on), `BENCH_KEEP`
//! (set: keep the database, the SQLite file under `target/bench` or the PostgreSQL one, to look into).
mod dataset;
mod load;
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

/// The servers the two clients talk to (the same one twice, or one each) and how they sign in.
struct Target {
    urls: [String; 2],
    api: [reqwest::Client; 2],
    pages: [reqwest::Client; 2],
}

impl Target {
    async fn new(urls: [String; 2], token: &str) -> Target {
        let pages = [
            support::signed_in_with(client_builder(), &urls[0], "fe@vast.example").await,
            support::signed_in_with(client_builder(), &urls[1], "fe@vast.example").await,
        ];
        Target {
            api: [api_client(token), api_client(token)],
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

async fn transitions(target: &Arc<Target>, numbers: Vec<String>, bounds: Bounds) -> Measured {
    let target = target.clone();
    let numbers = Arc::new(numbers);
    load::drive(2, bounds, move |c, i| {
        let target = target.clone();
        let numbers = numbers.clone();
        async move {
            let number = numbers.get(i).ok_or("the write pool is used up")?;
            let url = format!("{}/api/v1/rmas/{number}/transitions", target.urls[c]);
            let body = serde_json::json!({"to": "cancelled", "version": 1, "reason": "bench: duplicate report"});
            expect(target.api[c].post(url).json(&body).send().await, 200).await
        }
    })
    .await
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
    let ds = dataset::generate(&db, run.rmas, 3 * run.writes, chrono::Utc::now())
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

    // The scheduler's first sweep catches up on alerts a live system would have sent already.
    for label in ["scheduler sweep, first (catch-up)", "scheduler sweep, steady"] {
        let t = Instant::now();
        let queued = depot::jobs::run_once(&db, "http://bench", chrono::Utc::now())
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

    // The reference and the server take turns, a round each at a time, so that both meet the same
    // moments of a shared machine; the rates are totals over the rounds.
    const ROUNDS: usize = 5;
    let round_writes = run.writes / ROUNDS;
    let write_bounds = Bounds {
        requests: round_writes,
        time: run.bounds.time / ROUNDS as u32,
    };
    let (reference_pool, rest) = ds.pool.split_at(run.writes);
    let (http_pool, two_pool) = rest.split_at(run.writes);
    let server = Server::start(&url);
    let target = Arc::new(Target::new([server.url.clone(), server.url.clone()], &token).await);
    let (mut reference, mut http) = (Measured::default(), Measured::default());
    for round in 0..ROUNDS {
        let slice = |pool: &[String]| pool[round * round_writes..(round + 1) * round_writes].to_vec();
        reference.absorb(load::direct_transitions(&db, slice(reference_pool), write_bounds).await);
        http.absorb(transitions(&target, slice(http_pool), write_bounds).await);
    }
    one.put(
        "direct-database reference, writes/s",
        format!(
            "{:.0} (n={}, failed {})",
            reference.per_second(),
            reference.done,
            reference.failed
        ),
    );
    one.put(
        "HTTP transitions/s (ratio to reference)",
        format!(
            "{:.0} ({:.0} %){}",
            http.per_second(),
            100.0 * http.per_second() / reference.per_second(),
            if http.failed > 0 {
                format!(" {} failed: {:?}", http.failed, http.first_failure)
            } else {
                String::new()
            }
        ),
    );
    one.latency("transition p50 / p99", &http);
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
        let mut two = Column {
            title: "PostgreSQL, 2 instances".into(),
            ..Default::default()
        };
        let all_writes = Bounds {
            requests: run.writes,
            time: run.bounds.time,
        };
        let http2 = transitions(&target, two_pool.to_vec(), all_writes).await;
        two.put(
            "HTTP transitions/s (ratio to reference)",
            format!(
                "{:.0} ({:.0} % of reference, {:.2}x one instance)",
                http2.per_second(),
                100.0 * http2.per_second() / reference.per_second(),
                http2.per_second() / http.per_second()
            ),
        );
        two.latency("transition p50 / p99", &http2);
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
    // The server computes the figures at start and keeps them; wait for the first ones (as the
    // first visitor after a start would), then measure the reads of them.
    let t = Instant::now();
    let warm = target.api[0]
        .get(format!("{}/api/v1/reliability/afr", target.urls[0]))
        .send()
        .await;
    println!(
        "  reliability figures ready {:.1} s after the reads began ({:?})",
        t.elapsed().as_secs_f64(),
        warm.map(|r| r.status())
    );
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
