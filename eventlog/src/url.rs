//! NATS server URLs with credentials in them (`nats://user:password@host:port`,
//! `nats://token@host:port`): async-nats connects to such a URL without sending them.

use std::fmt;

/// A NATS URL split into the address to dial and the credentials to present.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// The URL without its credentials: safe to log.
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
    pub fn parse(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
        let host_start = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..host_start].rfind('@') else {
            return Self {
                address: url.to_owned(),
                credentials: Credentials::None,
            };
        };
        let userinfo = &rest[..at];
        let credentials = match userinfo.split_once(':') {
            Some((user, password)) => {
                Credentials::UserPassword(percent_decode(user), percent_decode(password))
            }
            None => Credentials::Token(percent_decode(userinfo)),
        };
        Self {
            address: format!("{scheme}://{}", &rest[at + 1..]),
            credentials,
        }
    }

    /// The address to dial, without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Connect options that present the URL's credentials.
    pub fn options(&self) -> async_nats::ConnectOptions {
        match &self.credentials {
            Credentials::None => async_nats::ConnectOptions::new(),
            Credentials::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            Credentials::UserPassword(user, password) => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
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
        let plain = NatsUrl::parse("nats://127.0.0.1:4222");
        assert!(plain.credentials == Credentials::None);
        assert_eq!(plain.address(), "nats://127.0.0.1:4222");
    }
}
