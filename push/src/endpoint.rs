//! Which push endpoints the server sends to. A subscription's endpoint is a URL a client
//! chose, and the notifier posts to it: without a check, a client could point it at
//! the server's own network (server-side request forgery). Endpoints are `https` URLs
//! of public hosts, checked when subscribed and again, by address, when resolved for
//! each push; `NATTER_PUSH_ALLOW_PRIVATE` lifts both checks for development and tests
//! on loopback.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the endpoint is not a URL")]
    NotUrl,
    #[error("the endpoint is an https URL")]
    NotHttps,
    #[error("the endpoint names a private, loopback or local address")]
    Private,
}

/// The endpoint as a URL, if the server may send to it.
pub fn check_endpoint(endpoint: &str, allow_private: bool) -> Result<Url, EndpointError> {
    let url = Url::parse(endpoint).map_err(|_| EndpointError::NotUrl)?;
    let secure = url.scheme() == "https";
    if !(secure || (allow_private && url.scheme() == "http")) {
        return Err(EndpointError::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::NotUrl);
    }
    if allow_private {
        return Ok(url);
    }
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") || !name.contains('.') {
                return Err(EndpointError::Private);
            }
        }
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            return Err(EndpointError::Private);
        }
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            return Err(EndpointError::Private);
        }
        Some(_) => {}
        None => return Err(EndpointError::NotUrl),
    }
    Ok(url)
}

/// Whether an address is one of the public internet's.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                || ip.is_multicast()
                || a == 0
                // Shared address space (carrier-grade NAT), 100.64.0.0/10.
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A resolver that drops every address that is not public, so that a name that
/// resolves into the server's own network is not sent to.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let found: Vec<SocketAddr> = tokio::net::lookup_host(host)
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if found.is_empty() {
                return Err("the push endpoint's host has no public address".into());
            }
            let addresses: Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

/// The HTTP client pushes go through.
pub fn client(allow_private: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(4);
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    builder.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_endpoints_are_taken() {
        assert!(check_endpoint("https://fcm.googleapis.com/fcm/send/x", false).is_ok());
        for (endpoint, error) in [
            ("http://fcm.googleapis.com/x", EndpointError::NotHttps),
            ("https://127.0.0.1/x", EndpointError::Private),
            ("https://10.1.2.3/x", EndpointError::Private),
            ("https://[::1]/x", EndpointError::Private),
            ("https://[::ffff:192.168.1.1]/x", EndpointError::Private),
            ("https://localhost/x", EndpointError::Private),
            ("https://metadata/x", EndpointError::Private),
            ("https://100.100.1.1/x", EndpointError::Private),
            ("https://user:pw@push.example.com/x", EndpointError::NotUrl),
            ("not a url", EndpointError::NotUrl),
        ] {
            assert_eq!(check_endpoint(endpoint, false), Err(error), "{endpoint}");
        }
        assert!(check_endpoint("http://127.0.0.1:9/x", true).is_ok());
    }
}
