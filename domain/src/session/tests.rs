#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn at(seconds: i64) -> Context {
    Context {
        now: datetime!(2026-11-26 12:00 UTC) + time::Duration::seconds(seconds),
        actor: None,
    }
}

const SESSION: Uuid = Uuid::from_u128(1);
const USER: Uuid = Uuid::from_u128(2);

fn hash(n: u32) -> TokenHash {
    TokenHash::new(format!("h{n}"))
}

fn good() -> AccountStanding {
    AccountStanding {
        active: true,
        admits_session: true,
    }
}

fn open() -> SessionCommand {
    SessionCommand::Open(Open {
        session_id: SESSION,
        user_id: USER,
        device_name: DeviceName::parse("phone").unwrap(),
        refresh_hash: hash(0),
        epoch: 0,
        lifetime: time::Duration::days(30),
    })
}

fn refresh(presented: u32, next: u32) -> SessionCommand {
    refresh_as(presented, next, good())
}

fn refresh_as(presented: u32, next: u32, account: AccountStanding) -> SessionCommand {
    SessionCommand::Refresh(Refresh {
        presented: hash(presented),
        next: hash(next),
        account,
        grace: time::Duration::seconds(10),
    })
}

/// Runs commands at the given times, applying what each decides.
fn run(steps: &[(i64, SessionCommand)]) -> (Session, Vec<Result<Vec<SessionEvent>, SessionError>>) {
    let mut state = Session::default();
    let mut outcomes = Vec::new();
    for (t, command) in steps {
        let outcome = state.decide(command, &at(*t));
        if let Ok(events) = &outcome {
            for event in events {
                state = state.clone().evolve(event);
            }
        }
        outcomes.push(outcome);
    }
    (state, outcomes)
}

fn reason(outcome: &Result<Vec<SessionEvent>, SessionError>) -> Option<RevokeReason> {
    match outcome {
        Ok(events) => events.iter().find_map(|e| match e {
            SessionEvent::SessionRevoked(r) => Some(r.reason),
            _ => None,
        }),
        Err(_) => None,
    }
}

#[test]
fn refresh_rotates_the_token() {
    let (state, outcomes) = run(&[(0, open()), (60, refresh(0, 1)), (120, refresh(1, 2))]);
    assert!(outcomes.iter().all(Result::is_ok));
    let Session::Open(session) = state else {
        panic!()
    };
    assert_eq!(session.current, hash(2));
}

#[test]
fn a_spent_token_after_the_grace_period_ends_the_session() {
    let (state, outcomes) = run(&[(0, open()), (60, refresh(0, 1)), (600, refresh(0, 9))]);
    assert_eq!(reason(&outcomes[2]), Some(RevokeReason::RefreshTokenReused));
    assert!(matches!(state, Session::Ended { .. }));
    // And the legitimate holder of the newer token is out too.
    let (_, outcomes) = run(&[
        (0, open()),
        (60, refresh(0, 1)),
        (600, refresh(0, 9)),
        (601, refresh(1, 2)),
    ]);
    assert_eq!(outcomes[3], Err(SessionError::Ended));
}

#[test]
fn a_race_within_the_grace_period_is_refused_but_the_session_lives() {
    let (state, outcomes) = run(&[(0, open()), (60, refresh(0, 1)), (61, refresh(0, 7))]);
    assert_eq!(outcomes[2], Err(SessionError::RefreshRace));
    let Session::Open(session) = state else {
        panic!()
    };
    assert_eq!(session.current, hash(1));
}

#[test]
fn an_older_spent_token_is_reuse_even_within_the_grace_period() {
    let (_, outcomes) = run(&[
        (0, open()),
        (1, refresh(0, 1)),
        (2, refresh(1, 2)),
        (3, refresh(0, 5)),
    ]);
    assert_eq!(reason(&outcomes[3]), Some(RevokeReason::RefreshTokenReused));
}

#[test]
fn unknown_tokens_expired_sessions_and_ended_accounts_are_refused() {
    let (_, outcomes) = run(&[(0, open()), (1, refresh(42, 1))]);
    assert_eq!(outcomes[1], Err(SessionError::InvalidToken));
    let after_lifetime = 30 * 86_400;
    let (_, outcomes) = run(&[(0, open()), (after_lifetime, refresh(0, 1))]);
    assert_eq!(outcomes[1], Err(SessionError::Ended));
    let changed = AccountStanding {
        active: true,
        admits_session: false,
    };
    let (_, outcomes) = run(&[(0, open()), (1, refresh_as(0, 1, changed))]);
    assert_eq!(outcomes[1], Err(SessionError::Ended));
}

#[test]
fn only_the_owner_revokes_and_revoking_twice_is_harmless() {
    let stranger = SessionCommand::Revoke {
        by_user: Uuid::from_u128(99),
        reason: RevokeReason::Revoked,
    };
    let owner = SessionCommand::Revoke {
        by_user: USER,
        reason: RevokeReason::Logout,
    };
    let (_, outcomes) = run(&[(0, open()), (1, stranger), (2, owner.clone()), (3, owner)]);
    assert_eq!(outcomes[1], Err(SessionError::NotFound));
    assert_eq!(reason(&outcomes[2]), Some(RevokeReason::Logout));
    assert_eq!(outcomes[3], Ok(vec![]));
}

proptest! {
    /// Whatever order of refreshes with whatever tokens, at most one refresh succeeds per
    /// token, and a session never accepts a token it did not hand out last.
    #[test]
    fn each_token_refreshes_at_most_once(presented in proptest::collection::vec(0u32..6, 1..20)) {
        let mut steps = vec![(0, open())];
        for (i, p) in presented.iter().enumerate() {
            steps.push((i as i64 * 100 + 100, refresh(*p, i as u32 + 1)));
        }
        let (_, outcomes) = run(&steps);
        let mut used = std::collections::HashSet::new();
        for (i, outcome) in outcomes.iter().enumerate().skip(1) {
            if let Ok(events) = outcome
                && events.iter().any(|e| matches!(e, SessionEvent::SessionRefreshed(_)))
            {
                prop_assert!(used.insert(presented[i - 1]), "token {} refreshed twice", presented[i - 1]);
            }
        }
    }
}

fn subscription(endpoint: &str) -> PushSubscription {
    let mut key = vec![4u8];
    key.extend([9u8; 64]);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    PushSubscription::parse(endpoint, &b64.encode(key), &b64.encode([3u8; 16])).unwrap()
}

fn subscribe(endpoint: &str, previews: bool) -> SessionCommand {
    SessionCommand::SubscribePush {
        by_user: USER,
        subscription: subscription(endpoint),
        previews,
    }
}

fn unsubscribe(endpoint: Option<&str>) -> SessionCommand {
    SessionCommand::UnsubscribePush {
        by_user: USER,
        reason: PushEndReason::Gone,
        endpoint: endpoint.map(str::to_owned),
    }
}

fn after(state: Session, command: &SessionCommand, seconds: i64) -> (Session, usize) {
    let events = state.decide(command, &at(seconds)).unwrap();
    let count = events.len();
    (events.iter().fold(state, |s, e| s.evolve(e)), count)
}

#[test]
fn a_push_subscription_is_kept_until_it_ends_or_the_session_does() {
    let (open, _) = after(Session::None, &open(), 0);
    let (subscribed, count) = after(open, &subscribe("https://push.example/a", true), 1);
    assert_eq!(count, 1);
    // The same again is nothing new; other previews are.
    let (same, count) = after(
        subscribed.clone(),
        &subscribe("https://push.example/a", true),
        2,
    );
    assert_eq!(count, 0);
    let (_, count) = after(same, &subscribe("https://push.example/a", false), 2);
    assert_eq!(count, 1);
    // A gone endpoint ends the subscription only while it is still the one.
    let (renewed, _) = after(subscribed, &subscribe("https://push.example/b", true), 3);
    let (renewed, count) = after(renewed, &unsubscribe(Some("https://push.example/a")), 4);
    assert_eq!(count, 0);
    let (ended, count) = after(renewed, &unsubscribe(Some("https://push.example/b")), 5);
    assert_eq!(count, 1);
    let (_, count) = after(ended, &unsubscribe(None), 6);
    assert_eq!(count, 0);
}

#[test]
fn only_the_owner_of_an_open_session_subscribes() {
    let (open, _) = after(Session::None, &open(), 0);
    let stranger = SessionCommand::SubscribePush {
        by_user: Uuid::from_u128(99),
        subscription: subscription("https://push.example/a"),
        previews: true,
    };
    assert_eq!(open.decide(&stranger, &at(1)), Err(SessionError::NotFound));
    let revoke = SessionCommand::Revoke {
        by_user: USER,
        reason: RevokeReason::Logout,
    };
    let (ended, _) = after(open, &revoke, 1);
    assert_eq!(
        ended.decide(&subscribe("https://push.example/a", true), &at(2)),
        Err(SessionError::Ended)
    );
    assert_eq!(ended.decide(&unsubscribe(None), &at(2)), Ok(Vec::new()));
}
