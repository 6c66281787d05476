//! The `depot` binary: parses the command line and calls into the library.
use anyhow::Context;
use clap::{Parser, Subcommand};
use depot::config::Settings;
use depot::services::{fixtures, tokens};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "depot", version, about = "RMA and hardware-depot lifecycle system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the database schema.
    Migrate,
    /// Load the demo data (idempotent).
    LoadFixtures {
        /// Folder of fixture files.
        #[arg(long, default_value = "fixtures")]
        dir: PathBuf,
    },
    /// Migrate, then serve the API and web UI until SIGINT or SIGTERM.
    Serve,
    /// Copy every record of DATABASE_URL into another, empty database (e.g. SQLite to PostgreSQL).
    Copy {
        /// The target database URL; it is migrated first and must hold no records.
        #[arg(long)]
        to: String,
    },
    /// Write a consistent copy of the SQLite database to PATH, while depot serves.
    Backup { path: PathBuf },
    /// Restore a backup written by `depot backup` into DATABASE_URL, which must be empty.
    Restore { path: PathBuf },
    /// Import sites, slots or units from a CSV file: every row is checked first, errors are named
    /// by line, and then all rows go in together or none.
    Import {
        #[arg(value_enum)]
        kind: depot::services::csv_files::Kind,
        file: PathBuf,
    },
    /// Export RMAs or the stock as CSV (to standard output, or --out FILE).
    Export {
        #[arg(value_enum)]
        what: Export,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Nodes' BMCs (DMTF Redfish).
    Bmc {
        #[command(subcommand)]
        command: BmcCommand,
    },
}

#[derive(Subcommand)]
enum BmcCommand {
    /// Subscribe depot to the events of SERIAL's BMC at URL (e.g. https://10.1.2.3). The BMC's
    /// password comes from BMC_PASSWORD; it is kept sealed under DEPOT_SECRET_KEY.
    Subscribe {
        serial: String,
        url: String,
        /// The BMC user that may create subscriptions.
        #[arg(long, default_value = "root")]
        user: String,
        #[arg(long, env = "BMC_PASSWORD", hide_env_values = true)]
        password: String,
        /// The admin the change is recorded for (default: the first admin).
        #[arg(long = "as")]
        admin: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token for the user with EMAIL (on the last line).
    Create {
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Revoke every API token of the user with EMAIL.
    Revoke { email: String },
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc's malloc, left to itself, gives a server like this one an arena per thread (sqlx's
/// SQLite connections each run on a thread of their own) and raises its mmap threshold to 32 MB as
/// large blocks are freed: the reliability figures' passes over a million rows then left some
/// 200 MB of freed memory held by the process after each pass, and the next pass grew on top of
/// it (peak RSS 395 MB at start-up on the bench's million-RMA file, 290 MB with these settings).
/// Two arenas, large blocks mapped and unmapped on their own, and freed memory given back once
/// 1 MB of it sits at the top of a heap. Set before any thread starts.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's parameters; no thread has started yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Migrate => {
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            println!("database is up to date");
        }
        Command::LoadFixtures { dir } => {
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            let loaded = if dir.is_dir() {
                fixtures::load_dir(&db, &dir).await?
            } else {
                // Run from elsewhere than the checkout: the demo data compiled into the binary.
                eprintln!("{} is not a folder; loading the built-in demo fixtures", dir.display());
                fixtures::load_str(&db, fixtures::DEMO).await?
            };
            println!(
                "fixtures loaded from {}: {} new units, {} new users, {} new cases",
                dir.display(),
                loaded.units,
                loaded.users,
                loaded.cases
            );
        }
        Command::Serve => {
            let app = depot::app::App::build(settings.clone()).await?;
            if settings.metrics_token.is_none() && !settings.bind.ip().is_loopback() {
                tracing::warn!(
                    "/metrics is open to anyone who can reach {}; set DEPOT_METRICS_TOKEN",
                    settings.bind
                );
            }
            let url = format!("http://{}:{}", settings.bind.ip(), app.port());
            // A server must not die because whoever started it stopped reading its output.
            let mut banner = format!("depot is serving on {url}\n");
            let demo = fixtures::users_with_password(&app.state.db, DEMO_PASSWORD).await?;
            if !demo.is_empty() {
                banner += &format!("demo sign-ins (password `{DEMO_PASSWORD}`):\n");
                for (email, role) in demo {
                    banner += &format!("  {email:<28} {role}\n");
                }
                banner += "API token: depot token create fe@vast.example\n";
            }
            let mut stdout = std::io::stdout();
            let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes())
                .and_then(|()| std::io::Write::flush(&mut stdout));
            app.run_until(depot::app::shutdown_signal()).await?;
        }
        Command::Bmc {
            command:
                BmcCommand::Subscribe {
                    serial,
                    url,
                    user,
                    password,
                    admin,
                },
        } => {
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            let actor = tokens::admin_actor(&db, admin.as_deref()).await?;
            let http = depot::outbound::client(&settings.webhook_allow)?;
            let login = depot::services::redfish::BmcLogin {
                url: &url,
                user: &user,
                password: &password,
            };
            let done = depot::services::redfish::subscribe(&db, &settings, &http, &actor, &serial, &login)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "subscribed: {} sends its events to {} ({})",
                done.bmc_url,
                done.destination,
                done.subscription_uri.as_deref().unwrap_or("the BMC gave no Location")
            );
        }
        Command::Copy { to } => {
            copy_database(&settings, &settings.with_database(to)).await?;
            println!("copied; point DATABASE_URL at the new database and start depot there");
        }
        Command::Import { kind, file } => {
            use depot::services::csv_files;
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let lines = text.lines().count().saturating_sub(1) as u64;
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            let bar = indicatif::ProgressBar::new(lines).with_message("checking rows");
            match csv_files::import(&db, kind, &text, &|n| bar.set_position(n)).await {
                Ok(rows) => {
                    bar.finish_and_clear();
                    println!("imported {rows} rows from {}", file.display());
                }
                Err(err) => {
                    bar.abandon();
                    anyhow::bail!("nothing was imported from {}:\n{err}", file.display());
                }
            }
        }
        Command::Export { what, out } => {
            use depot::services::csv_files;
            let db = depot::db::connect(&settings).await?;
            let sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::fs::File::create(path)?),
                None => Box::new(std::io::stdout().lock()),
            };
            let (written, noun) = match what {
                Export::Rmas => (csv_files::export_rmas(&db, sink).await?, "RMAs"),
                Export::Stock => (csv_files::export_stock(&db, sink).await?, "units in stock"),
            };
            eprintln!("exported {written} {noun}");
        }
        Command::Backup { path } => {
            let db = depot::db::connect(&settings).await?;
            let bytes = depot::services::transfer::backup(&db, &path).await?;
            println!(
                "backed up to {} ({bytes} bytes); restore with `depot restore {}`",
                path.display(),
                path.display()
            );
        }
        Command::Restore { path } => {
            anyhow::ensure!(path.is_file(), "no backup at {}", path.display());
            // A backup from an older depot is brought up to this version's schema on the way.
            let backup = settings.with_database(format!("sqlite://{}", path.display()));
            copy_database(&backup, &settings).await?;
            println!("restored {}", path.display());
        }
        Command::Token {
            command: TokenCommand::Revoke { email },
        } => {
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            let revoked = tokens::revoke_all(&db, &email).await?;
            println!("revoked {revoked} token(s) of {email}");
        }
        Command::Token {
            command: TokenCommand::Create { email, label },
        } => {
            let db = depot::db::connect(&settings).await?;
            depot::app::migrate(&db).await?;
            let token = tokens::create(&db, &email, &label).await?;
            println!("token for {email} (shown once; send as `Authorization: Bearer <token>`):");
            println!("{token}");
        }
    }
    Ok(())
}

const DEMO_PASSWORD: &str = "depot-demo";

/// What `depot export` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Export {
    Rmas,
    Stock,
}

/// Migrates both databases and copies every record of `from` into `to`, which must be empty.
async fn copy_database(from: &Settings, to: &Settings) -> anyhow::Result<()> {
    let from = depot::db::connect(from).await?;
    depot::app::migrate(&from).await?;
    let to = depot::db::connect(to).await?;
    depot::app::migrate(&to).await?;
    for (table, rows) in depot::services::transfer::copy_all(&from, &to).await? {
        println!("{table:<18} {rows}");
    }
    Ok(())
}
