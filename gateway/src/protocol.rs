//! The frames of the realtime protocol, version 1 (documented with examples in
//! `docs/realtime.md`). Every frame is a JSON text frame with a `type`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version every server frame carries as `v`.
pub const VERSION: u32 = 1;

/// How long a typing indicator lasts unless renewed.
pub const TYPING_EXPIRES_MS: u64 = 6_000;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start delivery after `cursor` (the last sequence applied), or from now if null.
    Resume { cursor: Option<u64> },
    /// The sender is typing in a chat, or stopped.
    Typing { chat_id: Uuid, state: TypingState },
    /// Everything in the chat up to this sequence reached the device.
    Delivered { chat_id: Uuid, up_to: u64 },
    /// Everything in the chat up to this sequence was read.
    Read { chat_id: Uuid, up_to: u64 },
    /// Answered with a `pong` carrying the same id.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// A fresh access token of the same user, so that the connection outlives the first.
    Auth { token: String },
    /// Send the presence of these users now and whenever it changes (those who hide it
    /// from the caller are left out).
    PresenceSubscribe { user_ids: Vec<Uuid> },
}

/// Users one `presence_subscribe` may name, and one connection may watch.
pub const MAX_PRESENCE_PER_FRAME: usize = 64;
pub const MAX_PRESENCE_PER_CONNECTION: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    Start,
    Stop,
}

/// The longest ping id echoed back.
pub const MAX_PING_ID: usize = 64;

/// Why the server closes a connection: the close code, and the `code` of the error
/// frame sent just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The session or the account ended.
    SessionEnded,
    /// The access token expired and no fresh one came in an `auth` frame.
    TokenExpired,
    /// The client did not keep up; resume from the cursor.
    SlowConsumer,
    /// The server may have missed live events; resume from the cursor.
    Resync,
    /// The cursor is further back than the server replays; load history over REST and
    /// resume from the newest sequence.
    CursorTooOld,
    /// The cursor is past the end of the log.
    CursorAhead,
    /// No `resume` came in time.
    ResumeTimeout,
    /// Too many frames that could not be understood.
    ProtocolViolation,
    /// Nothing came from the client for too long.
    Unresponsive,
    /// The server is shutting down; reconnect.
    GoingAway,
    /// Something failed on the server; resume from the cursor.
    ServerError,
}

impl CloseReason {
    pub fn close_code(self) -> u16 {
        match self {
            Self::SessionEnded => 4001,
            Self::TokenExpired => 4002,
            Self::SlowConsumer => 4008,
            Self::Resync => 4009,
            Self::CursorTooOld => 4010,
            Self::CursorAhead => 4011,
            Self::ResumeTimeout => 4012,
            Self::ProtocolViolation => 1008,
            Self::Unresponsive => 4013,
            Self::GoingAway => 1001,
            Self::ServerError => 1011,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::SessionEnded => "session_ended",
            Self::TokenExpired => "token_expired",
            Self::SlowConsumer => "slow_consumer",
            Self::Resync => "resync",
            Self::CursorTooOld => "cursor_too_old",
            Self::CursorAhead => "cursor_ahead",
            Self::ResumeTimeout => "resume_timeout",
            Self::ProtocolViolation => "protocol_violation",
            Self::Unresponsive => "unresponsive",
            Self::GoingAway => "going_away",
            Self::ServerError => "server_error",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Self::SessionEnded => "the session has ended; sign in again",
            Self::TokenExpired => "the access token expired; reconnect with a fresh one",
            Self::SlowConsumer => {
                "the connection fell too far behind; reconnect and resume from your cursor"
            }
            Self::Resync => "reconnect and resume from your cursor",
            Self::CursorTooOld => {
                "the cursor is too far back; load history over REST, then resume from the newest sequence"
            }
            Self::CursorAhead => "the cursor is past the end of the log",
            Self::ResumeTimeout => "send a resume frame first",
            Self::ProtocolViolation => "too many frames that could not be understood",
            Self::Unresponsive => "nothing came from the client for too long",
            Self::GoingAway => "the server is restarting; reconnect and resume from your cursor",
            Self::ServerError => "the server failed; reconnect and resume from your cursor",
        }
    }
}

/// A server frame that is not a log event, serialised on its own.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        v: u32,
        connection_id: u64,
        user_id: Uuid,
        heartbeat_secs: u64,
    },
    /// Every event up to `cursor` has been sent; what follows is live.
    Ready {
        v: u32,
        cursor: u64,
    },
    Pong {
        v: u32,
        id: Option<&'a str>,
    },
    Typing {
        v: u32,
        chat_id: Uuid,
        user_id: Uuid,
        state: TypingState,
        expires_in_ms: u64,
    },
    Error {
        v: u32,
        code: &'a str,
        detail: &'a str,
        /// The connection closes after this frame.
        fatal: bool,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> String {
        // A derived Serialize of strings, integers and ids cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An `event` frame around a stored envelope (already JSON), without parsing it again.
pub fn event_frame(sequence: u64, chat_id: Uuid, envelope_json: &[u8]) -> String {
    let envelope = String::from_utf8_lossy(envelope_json);
    format!(
        r#"{{"type":"event","v":{VERSION},"seq":{sequence},"chat_id":"{chat_id}","event":{envelope}}}"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn client_frames_parse_by_type() {
        let chat = Uuid::nil();
        let parse = |text: &str| serde_json::from_str::<ClientFrame>(text);
        assert_eq!(
            parse(r#"{"type":"resume","cursor":42}"#).unwrap(),
            ClientFrame::Resume { cursor: Some(42) }
        );
        assert_eq!(
            parse(r#"{"type":"resume","cursor":null}"#).unwrap(),
            ClientFrame::Resume { cursor: None }
        );
        assert_eq!(
            parse(&format!(
                r#"{{"type":"typing","chat_id":"{chat}","state":"start"}}"#
            ))
            .unwrap(),
            ClientFrame::Typing {
                chat_id: chat,
                state: TypingState::Start
            }
        );
        assert!(parse(r#"{"type":"delivered","chat_id":"x","up_to":1}"#).is_err());
        assert!(parse(r#"{"type":"delivered","up_to":-1}"#).is_err());
        assert!(parse(r#"{"type":"teleport"}"#).is_err());
    }

    #[test]
    fn an_event_frame_is_valid_json_around_the_envelope() {
        let frame = event_frame(7, Uuid::nil(), br#"{"event_type":"MessageSent"}"#);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["seq"], 7);
        assert_eq!(value["event"]["event_type"], "MessageSent");
    }
}
