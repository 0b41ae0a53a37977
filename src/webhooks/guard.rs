//! The SSRF guard: unless `--webhook-allow-private`, a webhook URL may not reach loopback,
//! private, link-local, shared (CGNAT), unspecified, multicast or other special addresses.
//! Checked when an endpoint is created ([`check_url`], 400 otherwise) and again at every
//! delivery by the HTTP client's own resolver ([`GuardedResolver`]), which only ever hands the
//! connector allowed addresses: a name that is re-pointed at an internal address after creation
//! (DNS rebinding) cannot be reached, since the address checked is the address connected to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error(
        "{host} resolves to {addr}, a loopback, private or link-local address (allowed only with --webhook-allow-private)"
    )]
    Private { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Whether `ip` is one a public webhook must not reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x64 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

/// Resolves `host` and refuses it when any address is internal (at creation a name must be
/// wholly public; at delivery [`GuardedResolver`] drops the internal ones).
pub async fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), GuardError> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    for addr in resolve(&host, port).await? {
        if is_internal(addr.ip()) {
            return Err(GuardError::Private {
                host,
                addr: addr.ip(),
            });
        }
    }
    Ok(())
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| GuardError::Unresolved {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(GuardError::Unresolved {
            host: host.to_string(),
            reason: "no addresses".to_string(),
        });
    }
    Ok(addrs)
}

/// The delivery client's resolver: the system's answers without the internal addresses, or an
/// error when none is left. A URL with a literal IP does not reach a resolver, so the delivery
/// checks those itself with [`is_internal`].
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host, 0).await?;
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_internal(a.ip()))
                .collect();
            match (allowed.is_empty(), addrs.first()) {
                (true, Some(first)) => Err(Box::new(GuardError::Private {
                    host,
                    addr: first.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn private_urls_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/h",
            "http://localhost/h",
            "http://[::1]/",
            "http://10.0.0.1/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(check_url(&url, false).await.is_err(), "{url}");
            assert!(check_url(&url, true).await.is_ok(), "{url}");
        }
    }
}
