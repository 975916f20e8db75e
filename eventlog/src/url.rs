//! NATS server URLs, one or a comma-separated list of a cluster's, with credentials in
//! them (`nats://user:password@host:port`, `nats://token@host:port`): async-nats takes
//! one URL per server, and connects to such a URL without sending its credentials.

use std::fmt;

/// NATS URLs split into the servers to dial and the credentials to present.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// Each server's URL without its credentials: safe to log.
    servers: Vec<String>,
    /// The servers, comma-separated.
    address: String,
    credentials: Credentials,
}

#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    None,
    Token(String),
    UserPassword(String, String),
}

impl NatsUrl {
    /// Parses one URL or a comma-separated list of them (a cluster); the credentials are
    /// the first found. What looks like credentials never stays in the address.
    pub fn parse(url: &str) -> Self {
        let mut credentials = Credentials::None;
        let servers: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .map(|server| {
                let (scheme, rest) = server.split_once("://").unwrap_or(("nats", server));
                // A host never holds '@': everything up to the last one is credentials.
                let Some(at) = rest.rfind('@') else {
                    return server.to_owned();
                };
                if credentials == Credentials::None {
                    let userinfo = &rest[..at];
                    credentials = match userinfo.split_once(':') {
                        Some((user, password)) => Credentials::UserPassword(
                            percent_decode(user),
                            percent_decode(password),
                        ),
                        None => Credentials::Token(percent_decode(userinfo)),
                    };
                }
                format!("{scheme}://{}", &rest[at + 1..])
            })
            .collect();
        Self {
            address: servers.join(","),
            servers,
            credentials,
        }
    }

    /// The servers, comma-separated, without credentials: for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The servers to dial, one URL each, without credentials: what
    /// `ConnectOptions::connect` takes (it parses one URL per item, never a list).
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Connect options that present the URL's credentials. A named user gets inboxes
    /// of its own (`_INBOX_<user>`), so that a server can let it read its replies and
    /// no one else's.
    pub fn options(&self) -> async_nats::ConnectOptions {
        match &self.credentials {
            Credentials::None => async_nats::ConnectOptions::new(),
            Credentials::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            Credentials::UserPassword(user, password) => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
                    .custom_inbox_prefix(format!("_INBOX_{user}"))
            }
        }
    }
}

/// Shows the address only.
impl fmt::Display for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match self.credentials {
            Credentials::None => "none",
            Credentials::Token(_) => "token",
            Credentials::UserPassword(..) => "user and password",
        };
        write!(f, "NatsUrl({}, credentials: {credentials})", self.address)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(high)), Some(Some(low))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            decoded.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_address() {
        let url = NatsUrl::parse("nats://analyst:read%40only@127.0.0.1:4333");
        assert_eq!(url.address(), "nats://127.0.0.1:4333");
        assert!(url.credentials == Credentials::UserPassword("analyst".into(), "read@only".into()));
        assert_eq!(url.to_string(), "nats://127.0.0.1:4333");
        let token = NatsUrl::parse("tls://s3cret@nats.example:4222");
        assert!(token.credentials == Credentials::Token("s3cret".into()));
        assert_eq!(token.address(), "tls://nats.example:4222");
        let cluster = NatsUrl::parse("nats://u:p@a:4222, nats://u:p@b:4222");
        assert_eq!(cluster.address(), "nats://a:4222,nats://b:4222");
        assert_eq!(cluster.servers(), ["nats://a:4222", "nats://b:4222"]);
        assert!(cluster.credentials == Credentials::UserPassword("u".into(), "p".into()));
        let slash = NatsUrl::parse("nats://u:pa/ss@a:4222");
        assert_eq!(slash.address(), "nats://a:4222");
        let plain = NatsUrl::parse("nats://127.0.0.1:4222");
        assert!(plain.credentials == Credentials::None);
        assert_eq!(plain.address(), "nats://127.0.0.1:4222");
        assert_eq!(plain.servers(), ["nats://127.0.0.1:4222"]);
        let trailing = NatsUrl::parse("nats://a:4222,");
        assert_eq!(trailing.servers(), ["nats://a:4222"]);
    }

    #[test]
    fn every_server_of_a_list_is_one_that_async_nats_parses() {
        let cluster = NatsUrl::parse("nats://u:p@a:4222,tls://b:4223, c:4224");
        assert_eq!(cluster.servers().len(), 3);
        for server in cluster.servers() {
            assert!(
                server.parse::<async_nats::ServerAddr>().is_ok(),
                "{server} does not parse"
            );
        }
        assert!(!format!("{cluster:?}").contains(":p@"));
    }
}
