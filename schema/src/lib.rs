//! The shapes of everything Natter stores: the event envelope with its versioned payloads
//! (and the upcasters that bring old versions to the current shape), and the SQL
//! migrations of the read models.

pub mod envelope;
pub mod events;

pub use envelope::{Envelope, Metadata};
pub use events::{ClaimMade, ClaimReleased, SchemaError, current_version, decode, encode};

/// The read models' migrations, embedded from `schema/migrations`. Never edit an applied
/// migration: add a new one.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
