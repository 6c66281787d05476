//! Requests depot makes to other systems (chat webhooks) go only where an operator meant them to:
//! `https`, to public addresses, no redirects, short timeouts. Plain `http` and private addresses
//! are for the hosts an operator lists in `DEPOT_WEBHOOK_ALLOW`.
//!
//! A URL is checked when it is saved (so an admin hears about a mistake at once) and again at every
//! request: the client's resolver drops every resolved address that is not public, so a name that
//! resolves differently later (DNS rebinding) still cannot reach inside.
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// How long an outbound request may take in all, and to connect.
const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// IANA's special-purpose ranges that no public service answers on (RFC 6890 and its updates):
/// this network, private, shared (CGNAT), loopback, link-local (cloud metadata), protocol
/// assignments, documentation, benchmarking, multicast, reserved, broadcast.
const NOT_PUBLIC_V4: [Ipv4Net; 15] = [
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10),
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15),
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4),
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// The IPv6 ranges of the same kinds: unspecified and loopback, discard, documentation, ORCHID,
/// unique local, link-local, site-local, multicast. Ranges that embed an IPv4 address (mapped,
/// NAT64, 6to4) are judged by that address.
const NOT_PUBLIC_V6: [Ipv6Net; 9] = [
    Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128),
    Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
    Ipv6Net::new_assert(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28),
    Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    Ipv6Net::new_assert(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
    Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !NOT_PUBLIC_V4.iter().any(|net| net.contains(&v4)) && v4 != Ipv4Addr::BROADCAST,
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => !NOT_PUBLIC_V6.iter().any(|net| net.contains(&v6)),
        },
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address: where a packet to it really goes.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last_32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_32()),
        [0, 0, 0, 0, 0, 0, _, _] if v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST => Some(last_32()),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

/// The hosts an operator lets outbound requests reach over plain `http` or at private addresses
/// (`DEPOT_WEBHOOK_ALLOW`: host names, IP addresses or networks, comma-separated).
#[derive(Clone, Debug, Default)]
pub struct Allowed {
    names: HashSet<String>,
    networks: Vec<IpNet>,
}

impl Allowed {
    /// Parses the setting's value; an entry that is not a host name, address or network is an error.
    pub fn parse(list: &str) -> Result<Allowed, String> {
        let mut allowed = Allowed::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.to_lowercase();
            if let Ok(net) = entry.parse::<IpNet>() {
                allowed.networks.push(net);
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                allowed.networks.push(IpNet::from(ip));
            } else if Host::parse(&entry).is_ok_and(|h| matches!(h, Host::Domain(_))) {
                allowed.names.insert(entry.trim_end_matches('.').to_string());
            } else {
                return Err(format!("`{entry}` is not a host name, an IP address or a network"));
            }
        }
        Ok(allowed)
    }

    fn allows_name(&self, name: &str) -> bool {
        self.names.contains(name.trim_end_matches('.').to_lowercase().as_str())
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&ip))
    }

    fn allows_host(&self, host: &Host<&str>) -> bool {
        match host {
            Host::Domain(name) => self.allows_name(name),
            Host::Ipv4(ip) => self.allows_ip(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => self.allows_ip(IpAddr::V6(*ip)),
        }
    }
}

/// Checks a URL depot is asked to call: `https` (or `http` to an allowed host), a host that is not
/// a private, loopback, link-local or unspecified address, nor `localhost`. Returns the URL as the
/// URL standard reads it (so `http://2130706433/` is seen as the `127.0.0.1` it is).
pub fn check_url(raw: &str, allowed: &Allowed) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("`{}` is not a URL: {e}", raw.trim()))?;
    let host = url.host().ok_or_else(|| format!("`{url}` has no host"))?;
    let allowed_host = allowed.allows_host(&host);
    match url.scheme() {
        "https" => {}
        "http" if allowed_host => {}
        "http" => {
            return Err(format!(
                "`{url}` is plain http; use https, or allow its host in DEPOT_WEBHOOK_ALLOW"
            ));
        }
        other => return Err(format!("`{url}`: the scheme `{other}` is not https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{url}` carries credentials in the URL"));
    }
    let private = match &host {
        Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private && !allowed_host {
        return Err(format!(
            "`{url}` points at a private, loopback or link-local address; depot only calls public \
             hosts unless DEPOT_WEBHOOK_ALLOW names it"
        ));
    }
    Ok(url)
}

/// Resolves names as the system does, then keeps only the public addresses (all of them for a
/// host the operator allowed). A name left with none fails the request before it connects.
struct PublicOnly {
    allowed: Arc<Allowed>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let keep_all = allowed.allows_name(&host);
            let usable: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| keep_all || is_public(a.ip()) || allowed.allows_ip(a.ip()))
                .collect();
            if usable.is_empty() {
                return Err(format!("{host} resolves to no public address; not calling it").into());
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for calls to other systems: its resolver keeps to public addresses, it follows
/// no redirects, uses no proxy from the environment, and gives up after a few seconds.
pub fn client(allowed: &Allowed) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PublicOnly {
            allowed: Arc::new(allowed.clone()),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_the_review_tried_and_their_cousins() {
        let none = Allowed::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:5432/",
            "https://127.0.0.1:5432/",
            "http://[::1]:22/",
            "https://[::1]:22/",
            "http://2130706433/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "http://localhost:3000/admin",
            "https://localhost:3000/admin",
            "https://api.localhost/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://user:pw@hooks.example.com/",
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "file:///etc/passwd",
            "gopher://hooks.example.com/",
            "not a url",
        ] {
            assert!(check_url(url, &none).is_err(), "{url} was accepted");
        }
        for url in [
            "https://hooks.slack.com/services/T0/B0/x",
            "https://93.184.215.14/hook",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, &none).is_ok(), "{url} was refused");
        }
    }

    /// A name that passes the URL check but resolves inside (DNS rebinding, a hosts file) is
    /// still refused when the request is made.
    #[tokio::test]
    async fn the_resolver_keeps_to_public_addresses() {
        let resolve = |allowed: &str| {
            let resolver = PublicOnly {
                allowed: Arc::new(Allowed::parse(allowed).unwrap()),
            };
            resolver.resolve("localhost".parse().unwrap())
        };
        let refused = resolve("").await.err().expect("localhost resolves to loopback only");
        assert!(refused.to_string().contains("no public address"), "{refused}");
        let allowed: Vec<SocketAddr> = resolve("localhost").await.expect("allowed by name").collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());
        assert!(resolve("127.0.0.1, ::1").await.is_ok(), "allowed by address");
    }

    #[test]
    fn an_operator_may_allow_a_host() {
        let allowed = Allowed::parse("127.0.0.1, chat.internal, 10.20.0.0/16").unwrap();
        assert!(check_url("http://127.0.0.1:8080/hook", &allowed).is_ok());
        assert!(
            check_url("http://2130706433:8080/hook", &allowed).is_ok(),
            "the same address"
        );
        assert!(check_url("http://chat.internal/hook", &allowed).is_ok());
        assert!(check_url("http://CHAT.internal./hook", &allowed).is_ok());
        assert!(check_url("https://10.20.3.4/hook", &allowed).is_ok());
        assert!(check_url("http://127.0.0.2/hook", &allowed).is_err());
        assert!(check_url("http://localhost/hook", &allowed).is_err());
        assert!(check_url("http://10.21.0.1/hook", &allowed).is_err());
        assert!(Allowed::parse("not a host!").is_err());
    }
}
