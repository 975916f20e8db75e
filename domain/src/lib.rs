//! Natter's pure domain: aggregates as `decide` and `evolve` functions, with no IO,
//! no clock and no randomness (time and ids come in through [`Context`] and commands).

pub mod aggregate;
pub mod chat;
pub mod media;
pub mod prefs;
pub mod push;
pub mod session;
mod text;
pub mod user;

pub use aggregate::{Aggregate, Claim, ClaimAction, Context, DomainEvent};
