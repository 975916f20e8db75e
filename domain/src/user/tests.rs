#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn ctx() -> Context {
    Context {
        now: datetime!(2026-11-26 12:00 UTC),
        actor: None,
    }
}

fn id() -> Uuid {
    Uuid::from_u128(0x0190_f3a1_0000_7000_8000_0000_0000_0001)
}

fn registered(handle: &str, name: &str) -> UserEvent {
    UserEvent::UserRegistered(UserRegistered {
        user_id: id(),
        handle: Handle::parse(handle).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        about: About::default(),
        phone: None,
        password_hash: Some(PasswordHash::new("$argon2id$hash")),
        registered_at: ctx().now,
    })
}

fn register(handle: &str, name: &str) -> UserCommand {
    UserCommand::Register(Register {
        user_id: id(),
        handle: Handle::parse(handle).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        about: About::default(),
        phone: None,
        password_hash: PasswordHash::new("$argon2id$hash"),
    })
}

fn change_name(name: &str) -> UserCommand {
    UserCommand::ChangeProfile(ChangeProfile {
        display_name: Some(DisplayName::parse(name).unwrap()),
        about: None,
    })
}

fn name_changed(name: &str) -> UserEvent {
    UserEvent::ProfileChanged(ProfileChanged {
        user_id: id(),
        display_name: Some(DisplayName::parse(name).unwrap()),
        about: None,
    })
}

fn change_photo(media: Option<u128>) -> UserCommand {
    UserCommand::ChangePhoto {
        media_id: media.map(Uuid::from_u128),
    }
}

fn photo_changed(media: Option<u128>) -> UserEvent {
    UserEvent::PhotoChanged(PhotoChanged {
        user_id: id(),
        media_id: media.map(Uuid::from_u128),
    })
}

/// A name, the history given, the command, and the outcome expected.
type Case = (
    &'static str,
    Vec<UserEvent>,
    UserCommand,
    Result<Vec<UserEvent>, UserError>,
);

/// given the history, when the command is decided, then this is the outcome.
#[test]
fn user_decisions() {
    let cases: Vec<Case> = vec![
        (
            "a new account registers",
            vec![],
            register("alice", "Alice"),
            Ok(vec![registered("alice", "Alice")]),
        ),
        (
            "a second registration of the same account is refused",
            vec![registered("alice", "Alice")],
            register("alice", "Alicia"),
            Err(UserError::AlreadyRegistered),
        ),
        (
            "an unknown account has no profile to change",
            vec![],
            change_name("Bob"),
            Err(UserError::NotFound),
        ),
        (
            "a new display name is recorded",
            vec![registered("alice", "Alice")],
            change_name("Alice L."),
            Ok(vec![name_changed("Alice L.")]),
        ),
        (
            "the current display name again changes nothing",
            vec![registered("alice", "Alice"), name_changed("Al")],
            change_name("Al"),
            Ok(vec![]),
        ),
        (
            "a photo is set",
            vec![registered("alice", "Alice")],
            change_photo(Some(7)),
            Ok(vec![photo_changed(Some(7))]),
        ),
        (
            "the same photo again changes nothing",
            vec![registered("alice", "Alice"), photo_changed(Some(7))],
            change_photo(Some(7)),
            Ok(vec![]),
        ),
        (
            "a photo is removed",
            vec![registered("alice", "Alice"), photo_changed(Some(7))],
            change_photo(None),
            Ok(vec![photo_changed(None)]),
        ),
        (
            "no photo removed again changes nothing",
            vec![registered("alice", "Alice")],
            change_photo(None),
            Ok(vec![]),
        ),
        (
            "an unknown account has no photo to change",
            vec![],
            change_photo(Some(7)),
            Err(UserError::NotFound),
        ),
    ];
    for (name, given, when, then) in cases {
        let state = User::replay(&given);
        assert_eq!(state.decide(&when, &ctx()), then, "{name}");
    }
}

#[test]
fn registration_claims_the_handle() {
    let claims = User::claims(&[registered("alice", "Alice"), name_changed("A")]);
    assert_eq!(
        claims,
        vec![Claim {
            kind: HANDLE_CLAIM,
            key: "alice".into(),
            owner: id(),
            action: ClaimAction::Take,
        }]
    );
}

#[test]
fn handles_are_normalized_and_checked() {
    assert_eq!(Handle::parse("  Alice_01 ").unwrap().as_str(), "alice_01");
    assert_eq!(Handle::parse("al"), Err(HandleError::TooShort));
    assert_eq!(Handle::parse(&"a".repeat(33)), Err(HandleError::TooLong));
    assert_eq!(Handle::parse("1abc"), Err(HandleError::MustStartWithLetter));
    assert_eq!(
        Handle::parse("ab.c"),
        Err(HandleError::InvalidCharacter('.'))
    );
    assert_eq!(
        Handle::parse("abç"),
        Err(HandleError::InvalidCharacter('ç'))
    );
}

#[test]
fn texts_are_checked() {
    assert_eq!(DisplayName::parse("  "), Err(TextError::Blank));
    assert_eq!(
        DisplayName::parse(&"x".repeat(65)),
        Err(TextError::TooLong { max: 64 })
    );
    assert_eq!(
        DisplayName::parse("a\u{0007}b"),
        Err(TextError::ControlCharacter)
    );
    assert_eq!(About::parse("").unwrap().as_str(), "");
}

#[test]
fn invalid_values_do_not_deserialize() {
    let bad = serde_json::json!({"user_id": id(), "display_name": ""});
    assert!(serde_json::from_value::<ProfileChanged>(bad).is_err());
}

proptest! {
    /// Every handle that parses is already in normal form, and parsing it again is the identity.
    #[test]
    fn handle_parse_is_idempotent(input in "\\PC{0,40}") {
        if let Ok(handle) = Handle::parse(&input) {
            prop_assert_eq!(Handle::parse(handle.as_str()), Ok(handle.clone()));
            prop_assert!(handle.as_str().len() >= Handle::MIN_LEN && handle.as_str().len() <= Handle::MAX_LEN);
        }
    }

    /// Case does not make two handles different.
    #[test]
    fn handles_are_case_insensitive(input in "[a-zA-Z][a-zA-Z0-9_]{2,31}") {
        prop_assert_eq!(Handle::parse(&input), Handle::parse(&input.to_uppercase()));
    }

    /// Any sequence of profile changes ends with the last value of each field, and
    /// deciding the current values again yields no event.
    #[test]
    fn profile_changes_fold_to_the_last_value(names in proptest::collection::vec("[A-Za-z ]{0,10}[A-Za-z]", 1..12)) {
        let mut state = User::default().evolve(&registered("alice", "Alice"));
        for name in &names {
            let events = state.decide(&change_name(name), &ctx()).unwrap();
            for event in &events {
                state = state.evolve(event);
            }
        }
        let last = DisplayName::parse(names.last().unwrap()).unwrap();
        match &state {
            User::Active(profile) => prop_assert_eq!(&profile.display_name, &last),
            User::Unregistered | User::Deleted => prop_assert!(false, "not active"),
        }
        prop_assert_eq!(state.decide(&change_name(last.as_str()), &ctx()).unwrap(), vec![]);
    }
}

fn active(history: &[UserEvent]) -> Profile {
    match User::replay(history) {
        User::Active(profile) => *profile,
        other => panic!("not active: {other:?}"),
    }
}

#[test]
fn a_password_change_moves_the_session_epoch_on_but_keeps_the_current_session() {
    let kept = Uuid::from_u128(7);
    let change = UserCommand::ChangePassword(ChangePassword {
        password_hash: PasswordHash::new("$new"),
        kept_session: Some(kept),
    });
    let history = vec![registered("alice", "Alice")];
    let events = User::replay(&history).decide(&change, &ctx()).unwrap();
    let mut all = history.clone();
    all.extend(events);
    let profile = active(&all);
    assert_eq!(profile.session_epoch, 1);
    assert!(profile.admits_session(kept, 0));
    assert!(!profile.admits_session(Uuid::from_u128(8), 0));
    assert!(profile.admits_session(Uuid::from_u128(8), 1));
    assert_eq!(profile.password_hash, Some(PasswordHash::new("$new")));
}

#[test]
fn signing_out_everywhere_moves_the_session_epoch_on_exempting_none() {
    let kept = Uuid::from_u128(7);
    let history = vec![
        registered("alice", "Alice"),
        UserEvent::PasswordChanged(PasswordChanged {
            user_id: id(),
            password_hash: PasswordHash::new("$new"),
            session_epoch: 1,
            kept_session: Some(kept),
            changed_at: ctx().now,
        }),
    ];
    let events = User::replay(&history)
        .decide(&UserCommand::SignOutEverywhere, &ctx())
        .unwrap();
    assert_eq!(
        events,
        vec![UserEvent::SignedOutEverywhere(SignedOutEverywhere {
            user_id: id(),
            session_epoch: 2,
            signed_out_at: ctx().now,
        })]
    );
    let mut all = history.clone();
    all.extend(events);
    let profile = active(&all);
    assert!(!profile.admits_session(kept, 0));
    assert!(!profile.admits_session(kept, 1));
    assert!(profile.admits_session(kept, 2));
    assert_eq!(profile.password_hash, Some(PasswordHash::new("$new")));
}

#[test]
fn blocking_is_idempotent_and_never_of_oneself() {
    let other = Uuid::from_u128(5);
    let history = vec![registered("alice", "Alice")];
    let state = User::replay(&history);
    assert_eq!(
        state.decide(&UserCommand::Block { user_id: id() }, &ctx()),
        Err(UserError::CannotBlockSelf)
    );
    let blocked = state
        .decide(&UserCommand::Block { user_id: other }, &ctx())
        .unwrap();
    let state = blocked.iter().fold(state, |s, e| s.evolve(e));
    assert_eq!(
        state.decide(&UserCommand::Block { user_id: other }, &ctx()),
        Ok(vec![])
    );
    let unblocked = state
        .decide(&UserCommand::Unblock { user_id: other }, &ctx())
        .unwrap();
    assert_eq!(unblocked.len(), 1);
    let state = unblocked.iter().fold(state, |s, e| s.evolve(e));
    assert_eq!(
        state.decide(&UserCommand::Unblock { user_id: other }, &ctx()),
        Ok(vec![])
    );
}

#[test]
fn privacy_changes_only_what_is_given() {
    let state = User::replay(&[registered("alice", "Alice")]);
    let change = UserCommand::ChangePrivacy(ChangePrivacy {
        about: Some(Visibility::Nobody),
        ..ChangePrivacy::default()
    });
    let events = state.decide(&change, &ctx()).unwrap();
    let state = events.iter().fold(state, |s, e| s.evolve(e));
    let privacy = state.profile().unwrap().privacy;
    assert_eq!(privacy.about, Visibility::Nobody);
    assert_eq!(privacy.last_seen, Visibility::Everyone);
    assert!(privacy.read_receipts);
    assert_eq!(state.decide(&change, &ctx()), Ok(vec![]));
}

#[test]
fn deletion_releases_the_handle_after_the_cool_down_and_ends_the_account() {
    let state = User::replay(&[registered("alice", "Alice")]);
    let delete = UserCommand::Delete(DeleteAccount {
        handle_cool_down: time::Duration::days(30),
    });
    let events = state.decide(&delete, &ctx()).unwrap();
    assert_eq!(
        User::claims(&events),
        vec![Claim {
            kind: HANDLE_CLAIM,
            key: "alice".into(),
            owner: id(),
            action: ClaimAction::Release {
                available_after: ctx().now + time::Duration::days(30)
            },
        }]
    );
    let state = events.iter().fold(state, |s, e| s.evolve(e));
    assert_eq!(state, User::Deleted);
    assert_eq!(
        state.decide(&change_name("X"), &ctx()),
        Err(UserError::NotFound)
    );
    assert_eq!(
        state.decide(&register("alice", "A"), &ctx()),
        Err(UserError::AlreadyRegistered)
    );
}

#[test]
fn phone_numbers_are_e164() {
    assert_eq!(
        PhoneNumber::parse("+49 (30) 123-4567").unwrap().as_str(),
        "+49301234567"
    );
    assert!(PhoneNumber::parse("0301234567").is_err());
    assert!(PhoneNumber::parse("+12").is_err());
    assert!(PhoneNumber::parse("+1234567890123456").is_err());
    assert!(PhoneNumber::parse("+12345abc90").is_err());
}
