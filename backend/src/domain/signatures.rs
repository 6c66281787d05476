//! The signatures other systems put on the requests they send depot, checked exactly as their
//! publishers document them. Pure functions: the secret, the raw body and the headers in, a verdict
//! out.
use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Verifies `expected_hex` (hex digits) against the HMAC of `parts`, in constant time.
fn hex_matches(mac: HmacSha256, expected_hex: &str) -> bool {
    hex::decode(expected_hex.trim()).is_ok_and(|sent| mac.verify_slice(&sent).is_ok())
}

/// EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex of HMAC-SHA256 over the raw body>`, keyed
/// with the webhook secret normalised to Unicode NFKD (as EasyPost's client libraries check it).
pub fn easypost_valid(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let key: String = secret.nfkd().collect();
    header
        .and_then(|h| h.strip_prefix("hmac-sha256-hex="))
        .is_some_and(|hex| hex_matches(hmac_sha256(key.as_bytes(), &[body]), hex))
}

/// How far a Slack request's timestamp may be from now before it counts as a replay.
pub const SLACK_MAX_SKEW_SECONDS: i64 = 5 * 60;

/// Why a Slack request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlackRefusal {
    #[error("X-Slack-Request-Timestamp is missing or not a number")]
    NoTimestamp,
    #[error("the request is more than 5 minutes old (or from the future): a replay is refused")]
    Stale,
    #[error("X-Slack-Signature does not match the signing secret")]
    BadSignature,
}

/// Slack: `X-Slack-Signature: v0=<hex of HMAC-SHA256 of "v0:{timestamp}:{raw body}">` keyed with the
/// app's signing secret, and `X-Slack-Request-Timestamp` within five minutes of `now` (seconds).
pub fn slack_valid(
    secret: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), SlackRefusal> {
    let ts = timestamp.map(str::trim).ok_or(SlackRefusal::NoTimestamp)?;
    let seconds: i64 = ts.parse().map_err(|_| SlackRefusal::NoTimestamp)?;
    if (now - seconds).abs() > SLACK_MAX_SKEW_SECONDS {
        return Err(SlackRefusal::Stale);
    }
    let mac = hmac_sha256(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]);
    match signature.and_then(|s| s.trim().strip_prefix("v0=")) {
        Some(hex) if hex_matches(mac, hex) => Ok(()),
        _ => Err(SlackRefusal::BadSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's own worked example (api.slack.com, "Verifying requests from Slack").
    #[test]
    fn slacks_documented_example_verifies() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(
            slack_valid(secret, body, Some("1531420618"), Some(sig), 1531420618),
            Ok(())
        );
        assert_eq!(
            slack_valid(secret, body, Some("1531420618"), Some(sig), 1531420618 + 301),
            Err(SlackRefusal::Stale)
        );
        assert_eq!(
            slack_valid("other", body, Some("1531420618"), Some(sig), 1531420618),
            Err(SlackRefusal::BadSignature)
        );
        assert_eq!(
            slack_valid(secret, body, None, Some(sig), 0),
            Err(SlackRefusal::NoTimestamp)
        );
    }

    #[test]
    fn easypost_keys_with_the_nfkd_secret() {
        let body = br#"{"id":"evt_1"}"#;
        // "ﬁ" (U+FB01) normalises to "fi" under NFKD: both spellings of the secret verify.
        let mac = hmac_sha256("fi-secret".as_bytes(), &[body]);
        let header = format!("hmac-sha256-hex={}", hex::encode(mac.finalize().into_bytes()));
        assert!(easypost_valid("fi-secret", body, Some(&header)));
        assert!(easypost_valid("\u{fb01}-secret", body, Some(&header)));
        assert!(!easypost_valid("other", body, Some(&header)));
        assert!(!easypost_valid("fi-secret", b"{}", Some(&header)));
        assert!(!easypost_valid("fi-secret", body, None));
        assert!(!easypost_valid("fi-secret", body, Some("sha256=00")));
    }
}
