//! The shapes of everything Natter stores: the event envelope with its versioned payloads
//! (and the upcasters that bring old versions to the current shape), and the SQL
//! migrations of the read models.
//!
//! Invariants: a published event shape is never edited, nor an applied migration; a
//! change adds a version (with an upcaster from the one before, `events.rs`) or a
//! migration. Every event type has one current version, which `encode` writes and to
//! which `decode` brings every older one, so the domain only ever sees the current shape.
//! Decoding a type or version this build does not know is a `SchemaError`, never a guess.

pub mod envelope;
pub mod events;

pub use envelope::{Envelope, Metadata};
pub use events::{ClaimMade, ClaimReleased, SchemaError, current_version, decode, encode};

/// The read models' migrations, embedded from `schema/migrations`. Never edit an applied
/// migration: add a new one.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
