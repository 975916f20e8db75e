//! Web Push for Natter (RFC 8030, 8291, 8292): the server's VAPID keys, which endpoints
//! it sends to, and the notifier that pushes new messages to members who are away.
//!
//! Invariants:
//! - A subscription belongs to one session (`PushSubscribed` on the session aggregate)
//!   and ends with it: the notifier reads only live sessions' subscriptions.
//! - Nothing is sent to an endpoint on a private, loopback or local address unless
//!   `NATTER_PUSH_ALLOW_PRIVATE` says so (`endpoint`).
//! - A push carries no message text, sender or chat name for a device that asked for
//!   none (`previews: false`), nor for a chat its member asked that of
//!   (`ChatPreviewsSet`).

pub mod endpoint;
pub mod notifier;
pub mod vapid;

pub use endpoint::{EndpointError, check_endpoint};
pub use notifier::{Notifier, NotifierConfig, PushPayload};
pub use vapid::{Vapid, VapidError};
