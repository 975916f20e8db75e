//! The subject grammar, in one place. Every subject of a deployment starts with its
//! prefix, then a space:
//! - `<prefix>.evt.<kind>.<id>`: stored events, one subject per aggregate (the stream's);
//! - `<prefix>.live.<kind>.<id>`: the same events, republished by the stream once stored;
//! - `<prefix>.signal.<kind>.<id>`: signals that are never stored (typing, presence).
//!
//! A part may be `*` (one token) or `>` (the rest) in a filter.

/// Which of the three spaces a subject is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Stored events.
    Evt,
    /// Stored events, republished live.
    Live,
    /// Never stored.
    Signal,
}

impl Space {
    pub fn token(self) -> &'static str {
        match self {
            Self::Evt => "evt",
            Self::Live => "live",
            Self::Signal => "signal",
        }
    }

    fn of(token: &str) -> Option<Self> {
        match token {
            "evt" => Some(Self::Evt),
            "live" => Some(Self::Live),
            "signal" => Some(Self::Signal),
            _ => None,
        }
    }
}

/// The kinds of signal.
pub const TYPING: &str = "typing";
pub const PRESENCE: &str = "presence";

/// A subject, read: its space, kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub space: Space,
    pub kind: &'a str,
    pub id: &'a str,
}

/// The subjects of one deployment (one prefix). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `<prefix>.<space>.<kind>.<id>`; `kind` and `id` may be `*`, and `id` `>`.
    pub fn of(&self, space: Space, kind: &str, id: &str) -> String {
        format!("{}.{}.{kind}.{id}", self.prefix, space.token())
    }

    /// Everything in `space`: `<prefix>.<space>.>`.
    pub fn all(&self, space: Space) -> String {
        format!("{}.{}.>", self.prefix, space.token())
    }

    /// Every subject of `kind` in `space`: `<prefix>.<space>.<kind>.>`.
    pub fn kind(&self, space: Space, kind: &str) -> String {
        self.of(space, kind, ">")
    }

    /// Reads `subject`, if it is one of this deployment's.
    pub fn parse<'a>(&self, subject: &'a str) -> Option<Subject<'a>> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('.')?;
        let (space, rest) = rest.split_once('.')?;
        let (kind, id) = rest.split_once('.')?;
        Some(Subject {
            space: Space::of(space)?,
            kind,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subjects_are_made_and_read_back() {
        let subjects = Subjects::new("natter");
        let made = subjects.of(Space::Live, "chatmsg", "42");
        assert_eq!(made, "natter.live.chatmsg.42");
        assert_eq!(
            subjects.parse(&made),
            Some(Subject {
                space: Space::Live,
                kind: "chatmsg",
                id: "42"
            })
        );
        assert_eq!(subjects.all(Space::Evt), "natter.evt.>");
        assert_eq!(
            subjects.kind(Space::Signal, TYPING),
            "natter.signal.typing.>"
        );
        assert_eq!(subjects.parse("other.live.chat.1"), None);
        assert_eq!(subjects.parse("natterx.live.chat.1"), None);
        assert_eq!(subjects.parse("natter.nope.chat.1"), None);
        assert_eq!(subjects.parse("natter.live.chat"), None);
    }
}
