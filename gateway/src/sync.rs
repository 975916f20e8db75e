//! Bringing a connection up to date: the user's membership from the read model and
//! the log, registration with the hub, and the events missed since the cursor.
//!
//! A resume is exact. The member rows of the read model give the user's chats at the
//! projection's checkpoint (or at the cursor, if older); the chat events after that point,
//! read from the log, bring them up to date. The connection registers those chats with
//! the hub, which subscribes and flushes before answering; only then is the end of the
//! log read. Events up to that end come from the log, per chat and per span of
//! membership (`membership`); later ones come live. Chats found in the meantime are
//! watched first and the end read again. A resume replays at most
//! `NATTER_GATEWAY_MAX_REPLAY` events; a cursor further back is refused.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use natter_eventlog::Space;
use natter_eventlog::{EventLog, LogError, StoredEvent};
use uuid::Uuid;

use crate::Shared;
use crate::hub::{ConnId, HubGone, Inbox};
use crate::membership::{MemberRow, Membership, MembershipChange};
use crate::protocol::CloseReason;

/// The longest stretch of the log a resume looks through, in sequences.
const MAX_SPAN: u64 = 5_000_000;
/// Reads of chats' missed events in flight at once.
const PARALLEL_READS: usize = 8;
/// Direct-get page size.
const PAGE: usize = 1024;

/// A connection brought up to date: registered with the hub, with the events it
/// missed up to `up_to` (in stream order); live events after `up_to` come to `inbox`.
#[derive(Debug)]
pub struct Synced {
    pub membership: Membership,
    pub up_to: u64,
    pub missed: Vec<StoredEvent>,
    pub inbox: Inbox,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the cursor is too far back")]
    TooOld,
    #[error("the cursor is past the end of the log")]
    Ahead,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Hub(#[from] HubGone),
}

impl SyncError {
    pub fn close_reason(&self) -> CloseReason {
        match self {
            Self::TooOld => CloseReason::CursorTooOld,
            Self::Ahead => CloseReason::CursorAhead,
            Self::Hub(_) => CloseReason::GoingAway,
            Self::Log(_) | Self::Database(_) => CloseReason::ServerError,
        }
    }
}

/// Registers `conn` with the hub and collects what it missed after `cursor` (from now
/// if none).
///
/// The membership is exact over the whole stretch: the read model gives it at its
/// checkpoint (or at the cursor, if that is older), and the chat events after that
/// point, read from the log, bring it to the end. Chats the user turns out to be in
/// are watched before the end of the stretch is read, so every event after it reaches
/// the inbox; everything up to it is read from the log.
pub async fn sync(
    shared: &Shared,
    conn: ConnId,
    user: Uuid,
    cursor: Option<u64>,
) -> Result<Synced, SyncError> {
    let (checkpoint, rows) =
        natter_projections::reads::chats::memberships(&shared.pool, user).await?;
    let rows = rows.into_iter().map(|row| MemberRow {
        chat_id: row.chat_id,
        joined_sequence: row.joined_sequence,
        left_sequence: row.left_sequence,
    });
    let start = cursor.map_or(checkpoint, |cursor| cursor.min(checkpoint));
    let mut membership = Membership::at(user, start, rows);
    let mut watching: HashSet<Uuid> = membership.current().collect();
    let inbox = shared
        .hub
        .register(
            conn,
            user,
            watching.iter().copied().collect(),
            shared.config.inbox_capacity,
        )
        .await?;
    let chat_events = shared
        .log
        .subjects()
        .kind(Space::Evt, natter_domain::chat::CHAT_KIND);
    let mut scanned = start;
    let up_to = loop {
        let end = shared.log.last_sequence().await?;
        if let Some(cursor) = cursor {
            if cursor > end {
                return Err(SyncError::Ahead);
            }
            if end - cursor > MAX_SPAN {
                return Err(SyncError::TooOld);
            }
        }
        for event in read_range(&shared.log, &chat_events, scanned + 1, end).await? {
            if let (Some(chat_id), Some(change)) = (
                chat_of(&event),
                MembershipChange::of_envelope(&event.envelope),
            ) {
                membership.apply(chat_id, event.sequence, &change);
            }
        }
        scanned = end;
        let now: HashSet<Uuid> = membership.current().collect();
        let gone: Vec<Uuid> = watching.difference(&now).copied().collect();
        if !gone.is_empty() {
            shared.hub.unwatch(conn, gone);
        }
        let new: Vec<Uuid> = now.difference(&watching).copied().collect();
        watching = now;
        if new.is_empty() {
            break end;
        }
        // Watched from here on; what they stored before the next look at the end of
        // the log is read from the log.
        shared.hub.watch(conn, new).await?;
    };
    let after = cursor.unwrap_or(up_to);
    let subjects = shared.log.subjects();
    let reads = membership
        .ranges(after, up_to)
        .into_iter()
        .map(|(chat, from, to)| {
            let filter = subjects.of(Space::Evt, "*", &chat.to_string());
            async move { read_range(&shared.log, &filter, from, to).await }
        });
    let mut missed = Vec::new();
    let mut pages = futures::stream::iter(reads).buffer_unordered(PARALLEL_READS);
    while let Some(events) = pages.try_next().await? {
        missed.extend(events);
        if missed.len() > shared.config.max_replay {
            return Err(SyncError::TooOld);
        }
    }
    missed.sort_by_key(|event| event.sequence);
    Ok(Synced {
        membership,
        up_to,
        missed,
        inbox,
    })
}

/// Every event matching `filter` in `from..=to`, in order.
async fn read_range(
    log: &EventLog,
    filter: &str,
    from: u64,
    to: u64,
) -> Result<Vec<StoredEvent>, LogError> {
    let mut events = Vec::new();
    let mut next = from;
    while next <= to {
        let page = log.read_page(filter, next, PAGE, to).await?;
        // A short page (the server's last, or one cut at `to`) ends the range.
        let full = page.len() == PAGE;
        match page.last() {
            Some(last) => next = last.sequence + 1,
            None => break,
        }
        events.extend(page);
        if !full {
            break;
        }
    }
    Ok(events)
}

/// The chat an event of `<prefix>.evt.<kind>.<chat id>` belongs to.
pub fn chat_of(event: &StoredEvent) -> Option<Uuid> {
    let (_, id) = event.subject.rsplit_once('.')?;
    Uuid::parse_str(id).ok()
}
