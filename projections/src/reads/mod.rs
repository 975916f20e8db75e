//! Queries of the read models for their readers (the API and the gateway), beside the
//! projections that write them: each names its tables through the projection's own
//! version (`table::<P>`), so a new version of a read model changes its readers here, in
//! one place, and a reader never names a table by hand.
//!
//! A module per reader's subject: `chats` (chat list, details, markers, memberships),
//! `messages` (history, single messages, stars, receipts), `users` (profiles, blocks,
//! last seen), `sessions`, `media` (who may see an item, what the collector collects) and
//! `search` (full text). Each query's SQL is built once, on first use.

pub mod chats;
pub mod media;
pub mod messages;
pub mod push;
pub mod search;
pub mod sessions;
pub mod users;

use crate::Projection;

/// Table `name` of projection `P` at its current version: `<name>_v<VERSION>`.
pub fn table<P: Projection>(name: &str) -> String {
    let table = format!("{name}_v{}", P::VERSION);
    debug_assert!(
        P::TABLES.contains(&table.as_str()),
        "{table} is not a table of {}",
        P::NAME
    );
    table
}

/// A stream sequence as the read models store it (`bigint`); never negative there.
fn sequence(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A stream sequence as a bound of a query: beyond `bigint`, the greatest.
fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chats, UserDirectory};

    #[test]
    fn tables_are_named_by_their_projections_version() {
        assert_eq!(table::<Chats>("chat_members"), "chat_members_v1");
        assert!(Chats::TABLES.contains(&table::<Chats>("chat_members").as_str()));
        assert!(UserDirectory::TABLES.contains(&table::<UserDirectory>("user_blocks").as_str()));
    }
}
