//! Where a webhook may go: the shape of a `callback_url`, and the addresses it may reach.
//!
//! A callback URL is checked twice: when the job is posted (its shape, then where its host
//! resolves) and again before each delivery attempt, because what a name resolves to can change
//! (DNS rebinding). The delivery connects only to the addresses checked there
//! ([`Target::addrs`]), never resolving the name again.
//!
//! Refused unless the operator allows private targets (`ICP_WEBHOOK_ALLOW_PRIVATE=true`):
//! loopback, private (RFC 1918, ULA `fc00::/7`), link-local (`169.254.0.0/16` with the cloud
//! metadata address, `fe80::/10`) and shared (CGNAT `100.64.0.0/10`) addresses, in any form
//! (IPv4-mapped, IPv4-compatible and NAT64 IPv6 included). Always refused: unspecified,
//! multicast, broadcast and reserved addresses, and the service itself (its listening address
//! and port, any local address on its port when it listens on all of them, and the host names
//! of `ICP_WEBHOOK_SELF_HOSTS`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// The longest callback URL accepted.
pub const MAX_CALLBACK_URL_LEN: usize = 2048;
/// What a callback URL starts with, as the spec states it (lower case only).
pub const CALLBACK_URL_PATTERN: &str = "^https?://";
/// How long resolving a callback URL's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a callback URL's shape: absolute `http` or `https` (written in lower case), a host,
/// no user name or password, at most [`MAX_CALLBACK_URL_LEN`] bytes. The reason never
/// repeats the URL (it may carry a token).
pub fn parse_callback_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_CALLBACK_URL_LEN {
        return Err(format!("must be at most {MAX_CALLBACK_URL_LEN} bytes"));
    }
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err("must be an absolute http:// or https:// URL".to_owned());
    }
    let url = Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    match url.host() {
        Some(Host::Domain(d)) if !d.is_empty() => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {}
        _ => return Err("must name a host".to_owned()),
    }
    Ok(url)
}

/// Who the service is and what it may call: built once the service has bound its address.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    /// Loopback, private, link-local and shared addresses allowed.
    pub allow_private: bool,
    /// The address the service listens on (its real port, once bound).
    pub listen: SocketAddr,
    /// Host names the service is known by (lower case, no trailing dot).
    pub self_hosts: Vec<String>,
}

/// Why a callback URL may not be called. The message never repeats the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its host resolves to {0}, which the service may not call")]
    Forbidden(String),
    #[error("it points at this service itself")]
    ItSelf,
    #[error("its host does not resolve")]
    DoesNotResolve,
}

impl Refusal {
    /// A short name for logs and recorded attempts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Forbidden(_) => "refused_address",
            Self::ItSelf => "refused_self",
            Self::DoesNotResolve => "dns",
        }
    }
}

/// A callback URL with the addresses checked for it: connect to these, and only these.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host as the URL names it (a name, or an address).
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

impl TargetPolicy {
    /// Resolves the URL's host and checks every address it resolves to (and the name itself):
    /// one forbidden address refuses the whole URL.
    pub async fn check(&self, url: &Url) -> Result<Target, Refusal> {
        let port = url.port_or_known_default().unwrap_or(80);
        let (host, addrs) = match url.host() {
            Some(Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if self.self_hosts.contains(&name) {
                    return Err(Refusal::ItSelf);
                }
                let found =
                    tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((&*name, port)))
                        .await;
                let addrs: Vec<SocketAddr> = match found {
                    Ok(Ok(addrs)) => addrs.collect(),
                    _ => Vec::new(),
                };
                if addrs.is_empty() {
                    return Err(Refusal::DoesNotResolve);
                }
                (url.host_str().unwrap_or_default().to_owned(), addrs)
            }
            None => return Err(Refusal::DoesNotResolve),
        };
        for addr in &addrs {
            self.check_addr(*addr)?;
        }
        Ok(Target { host, addrs })
    }

    fn check_addr(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if self.is_self(ip, addr.port()) {
            return Err(Refusal::ItSelf);
        }
        match classify(ip) {
            None => Ok(()),
            Some(Class::Private(what)) if !self.allow_private => Err(Refusal::Forbidden(format!(
                "{what} address {ip}; set ICP_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            ))),
            Some(Class::Private(_)) => Ok(()),
            Some(Class::Never(what)) => Err(Refusal::Forbidden(format!("{what} address {ip}"))),
        }
    }

    /// The service's own listening socket: its address and port, or — listening on loopback
    /// or on every address — any address of this machine on its port.
    fn is_self(&self, ip: IpAddr, port: u16) -> bool {
        if port != self.listen.port() {
            return false;
        }
        let listen = canonical(self.listen.ip());
        ip == listen
            || ip.is_unspecified()
            || ((listen.is_unspecified() || listen.is_loopback())
                && (ip.is_loopback() || is_local(ip)))
    }
}

/// An address this machine holds: one it can bind a socket to.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64) as that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (::a.b.c.d, deprecated; not :: or ::1) and NAT64 (64:ff9b::/96).
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(tail)
}

enum Class {
    /// Refused unless private targets are allowed.
    Private(&'static str),
    /// Refused always.
    Never(&'static str),
}

fn classify(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some(Class::Never("an unspecified"))
    } else if ip.is_broadcast() {
        Some(Class::Never("the broadcast"))
    } else if ip.is_multicast() {
        Some(Class::Never("a multicast"))
    } else if a >= 240 {
        Some(Class::Never("a reserved"))
    } else if ip.is_loopback() {
        Some(Class::Private("a loopback"))
    } else if ip.is_private() {
        Some(Class::Private("a private"))
    } else if ip.is_link_local() {
        Some(Class::Private("a link-local"))
    } else if a == 100 && (64..128).contains(&b) {
        Some(Class::Private("a shared (CGNAT)"))
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some(Class::Never("an unspecified"))
    } else if ip.is_multicast() {
        Some(Class::Never("a multicast"))
    } else if ip.is_loopback() {
        Some(Class::Private("a loopback"))
    } else if first & 0xfe00 == 0xfc00 {
        Some(Class::Private("a unique local"))
    } else if first & 0xffc0 == 0xfe80 {
        Some(Class::Private("a link-local"))
    } else if first & 0xffc0 == 0xfec0 {
        Some(Class::Private("a site-local"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_private: bool) -> TargetPolicy {
        TargetPolicy {
            allow_private,
            listen: "127.0.0.1:8080".parse().unwrap(),
            self_hosts: vec!["icp.example.com".to_owned()],
        }
    }

    async fn check(p: &TargetPolicy, url: &str) -> Result<Target, Refusal> {
        p.check(&parse_callback_url(url).unwrap()).await
    }

    #[tokio::test]
    async fn private_and_special_addresses_are_refused_in_every_form() {
        let strict = policy(false);
        for url in [
            "http://10.0.0.1/hook",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:9000/",
            "http://0x7f.1:9000/",
            "http://2130706433:9000/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::a00:1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[ff02::1]/",
        ] {
            let refused = check(&strict, url).await;
            assert!(
                matches!(refused, Err(Refusal::Forbidden(_) | Refusal::ItSelf)),
                "{url}: {refused:?}"
            );
        }
        assert!(check(&strict, "https://93.184.215.14/hook").await.is_ok());
        assert!(check(&strict, "http://[2606:4700::1111]/").await.is_ok());
    }

    #[tokio::test]
    async fn private_targets_may_be_allowed_but_never_the_service_itself() {
        let open = policy(true);
        assert!(check(&open, "http://10.0.0.1/hook").await.is_ok());
        assert!(check(&open, "http://127.0.0.1:9000/").await.is_ok());
        for url in [
            "http://127.0.0.1:8080/v1/jobs",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[::1]:8080/",
            "http://localhost:8080/",
            "https://icp.example.com/hook",
            "https://ICP.example.com./hook",
        ] {
            assert_eq!(
                check(&open, url).await.err(),
                Some(Refusal::ItSelf),
                "{url}"
            );
        }
        assert!(matches!(
            check(&open, "http://0.0.0.0:9000/").await,
            Err(Refusal::Forbidden(_))
        ));
    }

    #[test]
    fn malformed_urls_are_refused_without_repeating_them() {
        for bad in [
            "",
            "ftp://example.com/",
            "HTTP://example.com/",
            "/relative",
            "http://",
            "http://user:token@example.com/",
            "http://user@example.com/",
            "http://exa mple.com/",
        ] {
            let reason = parse_callback_url(bad).unwrap_err();
            assert!(bad.is_empty() || !reason.contains(bad), "{reason}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_CALLBACK_URL_LEN));
        assert!(parse_callback_url(&long).is_err());
        assert!(parse_callback_url("https://example.com/hook?token=x").is_ok());
    }
}
