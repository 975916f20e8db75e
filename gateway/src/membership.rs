//! Who is in which chat at which place in the log: the spans of sequences during which
//! a user may receive a chat's events. Pure; fed by the read model and by chat events.

use std::collections::HashMap;

use natter_domain::chat::ChatEvent;
use uuid::Uuid;

/// Who joined and who left with one chat event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    pub joined: Vec<Uuid>,
    pub left: Vec<Uuid>,
}

impl MembershipChange {
    pub fn of(event: &ChatEvent) -> Self {
        let joined = |users: Vec<Uuid>| Self {
            joined: users,
            left: Vec::new(),
        };
        let left = |user: Uuid| Self {
            joined: Vec::new(),
            left: vec![user],
        };
        match event {
            ChatEvent::DirectChatCreated(created) => joined(created.members.to_vec()),
            ChatEvent::GroupCreated(created) => {
                let mut users = vec![created.creator];
                users.extend(&created.members);
                joined(users)
            }
            ChatEvent::MembersAdded(added) => joined(added.users.clone()),
            ChatEvent::MemberJoined(member) => joined(vec![member.user]),
            ChatEvent::MemberRemoved(removed) => left(removed.user),
            ChatEvent::MemberLeft(member) => left(member.user),
            _ => Self::default(),
        }
    }

    /// The change a stored chat event makes, if it makes one (other events, and events
    /// of other aggregates, make none).
    pub fn of_envelope(envelope: &natter_schema::Envelope) -> Option<Self> {
        let event = natter_schema::decode::<ChatEvent>(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .ok()?;
        let change = Self::of(&event);
        (!change.is_empty()).then_some(change)
    }

    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }

    pub fn concerns(&self, user: Uuid) -> bool {
        self.joined.contains(&user) || self.left.contains(&user)
    }
}

/// The stretches of the log during which a user was in one chat, both ends inclusive:
/// they see the event that added them and the one that removed them. `None` as an end
/// means still a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Spans(Vec<(u64, Option<u64>)>);

impl Spans {
    fn is_open(&self) -> bool {
        matches!(self.0.last(), Some((_, None)))
    }

    fn join(&mut self, at: u64) {
        if !self.is_open() {
            self.0.push((at, None));
        }
    }

    fn leave(&mut self, at: u64) {
        match self.0.last_mut() {
            Some((_, end @ None)) => *end = Some(at),
            // The first change seen is a departure: a member since before the scan began.
            None => self.0.push((0, Some(at))),
            Some(_) => {}
        }
    }

    fn contains(&self, sequence: u64) -> bool {
        self.0
            .iter()
            .any(|&(start, end)| start <= sequence && end.is_none_or(|end| sequence <= end))
    }
}

/// One user's membership of every chat, from some place in the log on.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    user: Uuid,
    chats: HashMap<Uuid, Spans>,
}

/// A member row of the read model: the latest time the user joined, and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRow {
    pub chat_id: Uuid,
    pub joined_sequence: u64,
    pub left_sequence: Option<u64>,
}

impl Membership {
    /// The membership at sequence `at` from the read model's rows (which are exact at
    /// some later point). Rows of chats the user joined after `at` are left out: the
    /// chat events after `at`, applied next, say what happened there, including
    /// an earlier stay that the row no longer shows.
    pub fn at(user: Uuid, at: u64, rows: impl IntoIterator<Item = MemberRow>) -> Self {
        let mut chats = HashMap::new();
        for row in rows {
            let member_at = row.joined_sequence <= at && row.left_sequence.is_none_or(|l| l > at);
            if member_at {
                chats.insert(row.chat_id, Spans(vec![(row.joined_sequence, None)]));
            }
        }
        Self { user, chats }
    }

    /// Applies one chat event's change (events must come in stream order, once each).
    /// True if it concerned this user.
    pub fn apply(&mut self, chat_id: Uuid, sequence: u64, change: &MembershipChange) -> bool {
        if change.joined.contains(&self.user) {
            self.chats.entry(chat_id).or_default().join(sequence);
            true
        } else if change.left.contains(&self.user) {
            self.chats.entry(chat_id).or_default().leave(sequence);
            true
        } else {
            false
        }
    }

    /// Whether the user may receive this chat's event at `sequence`.
    pub fn admits(&self, chat_id: Uuid, sequence: u64) -> bool {
        self.chats
            .get(&chat_id)
            .is_some_and(|spans| spans.contains(sequence))
    }

    pub fn is_member(&self, chat_id: Uuid) -> bool {
        self.chats.get(&chat_id).is_some_and(Spans::is_open)
    }

    /// The chats the user is in now.
    pub fn current(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.chats
            .iter()
            .filter(|(_, spans)| spans.is_open())
            .map(|(chat, _)| *chat)
    }

    /// For each stretch of membership within `(after, up_to]`: the chat and the first
    /// and last sequence to read.
    pub fn ranges(&self, after: u64, up_to: u64) -> Vec<(Uuid, u64, u64)> {
        let mut ranges = Vec::new();
        for (chat, spans) in &self.chats {
            for &(start, end) in &spans.0 {
                let from = start.max(after + 1);
                let to = end.map_or(up_to, |end| end.min(up_to));
                if from <= to {
                    ranges.push((*chat, from, to));
                }
            }
        }
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(user: Uuid) -> MembershipChange {
        MembershipChange {
            joined: vec![user],
            left: Vec::new(),
        }
    }

    fn left(user: Uuid) -> MembershipChange {
        MembershipChange {
            joined: Vec::new(),
            left: vec![user],
        }
    }

    #[test]
    fn a_member_sees_from_the_join_to_the_removal_both_included() {
        let (user, chat) = (Uuid::from_u128(1), Uuid::from_u128(10));
        let mut membership = Membership::at(user, 0, []);
        assert!(membership.apply(chat, 5, &joined(user)));
        assert!(membership.apply(chat, 9, &left(user)));
        assert!(!membership.admits(chat, 4));
        assert!(membership.admits(chat, 5));
        assert!(membership.admits(chat, 9));
        assert!(!membership.admits(chat, 10));
        assert!(!membership.is_member(chat));
        assert!(membership.apply(chat, 20, &joined(user)));
        assert!(membership.admits(chat, 25) && membership.is_member(chat));
        assert_eq!(membership.ranges(6, 30), vec![(chat, 7, 9), (chat, 20, 30)]);
    }

    #[test]
    fn rows_give_the_membership_at_a_point_and_later_events_rebuild_an_earlier_stay() {
        let (user, chat, other) = (Uuid::from_u128(1), Uuid::from_u128(10), Uuid::from_u128(11));
        // The row shows the latest stay (joined at 30); at 20 the user was in the chat
        // from an earlier stay that left at 25, which the events after 20 reveal.
        let rows = [
            MemberRow {
                chat_id: chat,
                joined_sequence: 30,
                left_sequence: None,
            },
            MemberRow {
                chat_id: other,
                joined_sequence: 2,
                left_sequence: None,
            },
        ];
        let mut membership = Membership::at(user, 20, rows);
        assert!(membership.admits(other, 21));
        assert!(!membership.admits(chat, 21));
        membership.apply(chat, 25, &left(user));
        membership.apply(chat, 30, &joined(user));
        assert!(membership.admits(chat, 21) && membership.admits(chat, 25));
        assert!(!membership.admits(chat, 26) && membership.admits(chat, 30));
        let mut current: Vec<_> = membership.current().collect();
        current.sort();
        assert_eq!(current, vec![chat, other]);
    }

    #[test]
    fn a_change_about_someone_else_changes_nothing() {
        let (user, chat) = (Uuid::from_u128(1), Uuid::from_u128(10));
        let mut membership = Membership::at(user, 0, []);
        assert!(!membership.apply(chat, 3, &joined(Uuid::from_u128(2))));
        assert!(!membership.admits(chat, 3));
    }
}
