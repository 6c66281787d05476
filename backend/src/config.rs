//! Typed settings read once from the environment (SPEC §9).
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A value that must not appear in logs (it may carry a password).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The wrapped value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything depot reads from its environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `DATABASE_URL`: a `sqlite://` file (default `./data/depot.db`) or a `postgres://` URL.
    pub database_url: Secret,
    /// `DEPOT_BIND`: where `depot serve` listens (default `127.0.0.1:3000`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// `DEPOT_BASE_URL`: the public address used in emails and QR codes.
    pub base_url: String,
    /// `SMTP_URL`: the mail relay; unset means mail stays queued.
    pub smtp_url: Option<Secret>,
    /// `DEPOT_MAIL_FROM`: the sender of depot's emails.
    pub mail_from: String,
    /// `DEPOT_MAIL_MAX_ATTEMPTS`: tries before a message is dead-lettered (default 8).
    pub mail_max_attempts: i32,
    /// `DEPOT_MAIL_BACKOFF_MS`: the first retry delay, doubled per attempt (default 5000).
    pub mail_backoff: Duration,
    /// `DEPOT_MAIL_POLL_MS`: how often an idle dispatcher looks for due messages (default 1000).
    pub mail_poll: Duration,
    /// `DEPOT_JOBS_INTERVAL_S`: how often reminders and SLA alerts are checked (default 60).
    pub jobs_interval: Duration,
    /// `DEPOT_MAIL_LEASE_S`: how long an instance holds a message it is sending; if it dies, another
    /// instance takes the message over after this (default 120).
    pub mail_lease: Duration,
    /// `DEPOT_DB_BUSY_TIMEOUT_MS`: how long a request waits for the database (SQLite's write lock,
    /// or a usable connection from the pool) before it answers 503 (default 10000).
    pub db_busy_timeout: Duration,
    /// `DEPOT_DB_CONNECTION_LIFETIME_S`: connections are renewed after this long, so one opened
    /// while the database was read-only or failing over does not stay so (default 300).
    pub db_connection_lifetime: Duration,
    /// `DEPOT_WEBHOOK_ALLOW`: hosts (names, addresses or networks, comma-separated) that outbound
    /// webhooks may reach over plain http or at private addresses; by default none.
    pub webhook_allow: crate::outbound::Allowed,
    /// `DEPOT_METRICS_TOKEN`: when set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// `EASYPOST_WEBHOOK_SECRET`: the secret EasyPost signs its webhook events with; unset refuses them.
    pub easypost_webhook_secret: Option<Secret>,
    /// `SLACK_SIGNING_SECRET`: the Slack app's signing secret; unset refuses Slack's requests.
    pub slack_signing_secret: Option<Secret>,
    /// `SLACK_BOT_TOKEN`: the Slack app's bot token, for chat destinations written `slack:CHANNEL`
    /// (messages threaded per RMA through `chat.postMessage`).
    pub slack_bot_token: Option<Secret>,
    /// `SLACK_API_URL`: Slack's Web API (default `https://slack.com/api`).
    pub slack_api_url: String,
    /// `DEPOT_SECRET_KEY`: 64 hex digits (32 bytes) that seal stored credentials (BMC passwords);
    /// unset means depot stores none.
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// `DEPOT_RELIABILITY_REFRESH_S`: how old the precomputed reliability figures may grow before
    /// they are recomputed in the background (default 600; 0 computes them on every request).
    pub reliability_refresh: Duration,
}

/// A positive whole number from the environment, or its default.
fn number(lookup: &impl Fn(&str) -> Option<String>, key: &str, default: u64) -> anyhow::Result<u64> {
    match lookup(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow::anyhow!("{key} `{v}` is not a positive whole number")),
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/depot.db?mode=rwc";
/// `DEPOT_DB_BUSY_TIMEOUT_MS` unless set.
pub const DEFAULT_DB_BUSY_TIMEOUT_MS: u64 = 10_000;
/// `DEPOT_DB_CONNECTION_LIFETIME_S` unless set.
pub const DEFAULT_DB_CONNECTION_LIFETIME_S: u64 = 300;

impl Settings {
    /// The same settings on another database.
    pub fn with_database(&self, url: impl Into<String>) -> Settings {
        Settings {
            database_url: Secret::new(url),
            ..self.clone()
        }
    }

    /// Reads the environment; a malformed value is an error naming the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads settings through `lookup`, so tests can supply their own values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let bind = lookup("DEPOT_BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
        let bind: SocketAddr = bind
            .parse()
            .map_err(|e| anyhow::anyhow!("DEPOT_BIND `{bind}` is not an address like 127.0.0.1:3000: {e}"))?;
        let base_url = lookup("DEPOT_BASE_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_string();
        Ok(Settings {
            database_url: Secret::new(lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into())),
            bind,
            base_url,
            smtp_url: lookup("SMTP_URL").map(Secret::new),
            mail_from: lookup("DEPOT_MAIL_FROM").unwrap_or_else(|| "depot <depot@localhost>".into()),
            mail_max_attempts: number(&lookup, "DEPOT_MAIL_MAX_ATTEMPTS", 8)? as i32,
            mail_backoff: Duration::from_millis(number(&lookup, "DEPOT_MAIL_BACKOFF_MS", 5000)?),
            mail_poll: Duration::from_millis(number(&lookup, "DEPOT_MAIL_POLL_MS", 1000)?),
            jobs_interval: Duration::from_secs(number(&lookup, "DEPOT_JOBS_INTERVAL_S", 60)?),
            mail_lease: Duration::from_secs(number(&lookup, "DEPOT_MAIL_LEASE_S", 120)?),
            db_busy_timeout: Duration::from_millis(number(
                &lookup,
                "DEPOT_DB_BUSY_TIMEOUT_MS",
                DEFAULT_DB_BUSY_TIMEOUT_MS,
            )?),
            db_connection_lifetime: Duration::from_secs(number(
                &lookup,
                "DEPOT_DB_CONNECTION_LIFETIME_S",
                DEFAULT_DB_CONNECTION_LIFETIME_S,
            )?),
            webhook_allow: crate::outbound::Allowed::parse(&lookup("DEPOT_WEBHOOK_ALLOW").unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("DEPOT_WEBHOOK_ALLOW: {e}"))?,
            metrics_token: lookup("DEPOT_METRICS_TOKEN").map(Secret::new),
            easypost_webhook_secret: lookup("EASYPOST_WEBHOOK_SECRET").map(Secret::new),
            slack_signing_secret: lookup("SLACK_SIGNING_SECRET").map(Secret::new),
            slack_bot_token: lookup("SLACK_BOT_TOKEN").map(Secret::new),
            slack_api_url: lookup("SLACK_API_URL")
                .unwrap_or_else(|| "https://slack.com/api".into())
                .trim_end_matches('/')
                .to_string(),
            reliability_refresh: Duration::from_secs(match lookup("DEPOT_RELIABILITY_REFRESH_S") {
                None => 600,
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    anyhow::anyhow!("DEPOT_RELIABILITY_REFRESH_S `{v}` is not a whole number of seconds")
                })?,
            }),
            secret_key: lookup("DEPOT_SECRET_KEY")
                .map(|k| crate::secrets::SecretKey::parse(&k))
                .transpose()
                .map_err(|e| anyhow::anyhow!("DEPOT_SECRET_KEY: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_bind() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url.expose(), DEFAULT_DATABASE_URL);
        assert!(format!("{:?}", s.database_url).contains("***"));
        let err = Settings::from_lookup(|k| (k == "DEPOT_BIND").then(|| "nope".into())).unwrap_err();
        assert!(err.to_string().contains("DEPOT_BIND"));
    }
}
