//! The server version check: this design needs atomic batches (NATS 2.12), which older
//! servers silently ignore. (The design notes also name multi-filter consumers; no
//! consumer of Natter's uses more than one filter.)

use crate::LogError;

/// The oldest NATS server Natter runs on.
pub const MIN_SERVER_VERSION: ServerVersion = ServerVersion(2, 12, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32, pub u32, pub u32);

impl ServerVersion {
    /// Parses `2.15.1`, `v2.12.0-beta.1` and the like; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self(major, minor, patch))
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Refuses a server older than [`MIN_SERVER_VERSION`], naming both versions.
pub fn check_server_version(reported: &str) -> Result<(), LogError> {
    match ServerVersion::parse(reported) {
        Some(found) if found >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(LogError::ServerTooOld {
            found: reported.to_owned(),
            needed: MIN_SERVER_VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(
            ServerVersion::parse("2.15.1"),
            Some(ServerVersion(2, 15, 1))
        );
        assert_eq!(
            ServerVersion::parse("v2.12.0-RC.3"),
            Some(ServerVersion(2, 12, 0))
        );
        assert_eq!(ServerVersion::parse("2.9"), Some(ServerVersion(2, 9, 0)));
        assert_eq!(ServerVersion::parse(""), None);
        assert!(check_server_version("2.12.0").is_ok());
        assert!(check_server_version("2.15.1").is_ok());
        assert!(matches!(
            check_server_version("2.9.25"),
            Err(LogError::ServerTooOld { .. })
        ));
        assert!(check_server_version("garbage").is_err());
    }
}
