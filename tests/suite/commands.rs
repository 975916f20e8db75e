//! The command handler and the account commands against a real JetStream server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;

use futures::StreamExt;

use common::{TestEnv, accounts, accounts_with, register, register_named};
use natter_commands::accounts::AccountError;
use natter_commands::{CommandError, CommandHandler, CommandMetrics};
use natter_domain::user::{About, ChangeProfile, DisplayName, Handle, User, UserError, UserEvent};
use natter_schema::Metadata;
use uuid::Uuid;

fn meta() -> Metadata {
    Metadata::new(None, Uuid::now_v7())
}

fn name(text: &str) -> DisplayName {
    DisplayName::parse(text).unwrap()
}

fn rename(to: &str) -> ChangeProfile {
    ChangeProfile {
        display_name: Some(name(to)),
        about: None,
    }
}

#[tokio::test]
async fn registration_appends_the_claim_and_the_account_atomically() {
    let env = TestEnv::new().await;
    let users = accounts(&env.log);
    let registered = register_named(&users, "Alice", "Alice").await;
    let id = registered.user_id;
    assert_eq!(registered.last_sequence, 2, "claim at 1, registration at 2");
    let claim = env
        .log
        .load(&env.log.subject("handle", "alice"), 0)
        .await
        .unwrap();
    assert_eq!(claim.len(), 1);
    assert_eq!(claim[0].envelope.payload["owner"], id.to_string());
    let account = env
        .log
        .load(&env.log.subject("user", &id.to_string()), 0)
        .await
        .unwrap();
    assert_eq!(account[0].envelope.event_type, "UserRegistered");
    assert_eq!(
        account[0].envelope.correlation_id,
        claim[0].envelope.correlation_id
    );
}

#[tokio::test]
async fn of_concurrent_registrations_of_one_handle_exactly_one_succeeds() {
    let env = TestEnv::new().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        // Separate handlers: as if each came through another process.
        let users = accounts(&env.second_log().await);
        tasks.spawn(async move {
            users
                .register_hashed(
                    common::new_account("BOB", &format!("Bob {i}")),
                    natter_domain::user::PasswordHash::new("$argon2id$test"),
                    meta(),
                )
                .await
        });
    }
    let (mut won, mut taken) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => won += 1,
            Err(AccountError::HandleTaken) => taken += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, taken), (1, 7));
    let registered = env
        .log
        .read(natter_eventlog::Start::Sequence(1))
        .filter(|e| {
            std::future::ready(
                e.as_ref()
                    .is_ok_and(|e| e.envelope.event_type == "UserRegistered"),
            )
        })
        .count()
        .await;
    assert_eq!(registered, 1);
}

#[tokio::test]
async fn concurrent_commands_on_one_aggregate_all_land_in_order() {
    let env = TestEnv::new().await;
    let users = accounts(&env.log);
    let id = register(&users, "carol").await;
    let writers = 8;
    let per_writer = 10;
    let metrics = CommandMetrics::default();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let handler: CommandHandler<User> =
            CommandHandler::new(env.second_log().await, metrics.clone()).with_max_attempts(100);
        tasks.spawn(async move {
            for i in 0..per_writer {
                let command =
                    natter_domain::user::UserCommand::ChangeProfile(rename(&format!("w{w} n{i}")));
                handler
                    .execute(&id.to_string(), &command, meta())
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let stored = env
        .log
        .load(&env.log.subject("user", &id.to_string()), 0)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        1 + writers * per_writer,
        "every command stored once"
    );
    assert!(stored.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let names: HashSet<String> = stored[1..]
        .iter()
        .map(|e| {
            e.envelope.payload["display_name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names.len(),
        writers * per_writer,
        "no command lost or repeated"
    );
    assert!(metrics.conflicts.get() > 0, "the writers did contend");
}

#[tokio::test]
async fn a_stale_cache_reads_only_the_newer_events_and_retries() {
    let env = TestEnv::new().await;
    let first = accounts(&env.log);
    let second_metrics = CommandMetrics::default();
    let second = accounts_with(&env.second_log().await, second_metrics.clone());
    let id = register(&first, "dave").await;
    rename_on(&second, id, "Dave 1").await;
    // `first` still caches the state at registration; its append conflicts once.
    let executed = rename_on(&first, id, "Dave 2").await;
    assert_eq!(executed.last_sequence, 4);
    // And deciding the same change again changes nothing, from the refreshed cache.
    let again = rename_on(&second, id, "Dave 1").await;
    assert_eq!(
        again.events.len(),
        1,
        "Dave 2 is current, so Dave 1 is a change"
    );
    let same = rename_on(&first, id, "Dave 1").await;
    assert!(same.events.is_empty());
    assert_eq!(same.last_sequence, again.last_sequence);
}

#[tokio::test]
async fn exhausted_retries_report_a_conflict() {
    let env = TestEnv::new().await;
    let users = accounts(&env.log);
    let id = register(&users, "erin").await;
    let metrics = CommandMetrics::default();
    let handler: CommandHandler<User> =
        CommandHandler::new(env.log.clone(), metrics.clone()).with_max_attempts(1);
    handler.load(&id.to_string()).await.unwrap();
    users
        .change_profile(id, rename("Erin 2"), meta())
        .await
        .unwrap();
    let command = natter_domain::user::UserCommand::ChangeProfile(rename("Erin 3"));
    let error = handler
        .execute(&id.to_string(), &command, meta())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Conflict { attempts: 1 }),
        "{error:?}"
    );
    assert_eq!(metrics.conflicts.get(), 1);
    // The cache was dropped, so the next attempt decides on fresh state.
    handler
        .execute(&id.to_string(), &command, meta())
        .await
        .unwrap();
}

#[tokio::test]
async fn domain_refusals_store_nothing() {
    let env = TestEnv::new().await;
    let users = accounts(&env.log);
    let error = users
        .change_profile(Uuid::now_v7(), rename("Nobody"), meta())
        .await
        .unwrap_err();
    assert!(matches!(error, AccountError::User(UserError::NotFound)));
    assert_eq!(env.log.last_sequence().await.unwrap(), 0);
    let frank = register(&users, "frank").await;
    let executed = users
        .users()
        .execute(
            &frank.to_string(),
            &natter_domain::user::UserCommand::ChangeProfile(ChangeProfile::default()),
            meta(),
        )
        .await
        .unwrap();
    assert!(executed.events.is_empty());
    assert!(matches!(
        executed.events.first(),
        None | Some((_, UserEvent::ProfileChanged(_)))
    ));
}

#[tokio::test]
async fn a_refusal_on_a_stale_cache_is_decided_again_on_fresh_state() {
    use natter_domain::user::{Register, UserCommand};
    let env = TestEnv::new().await;
    let stale: CommandHandler<User> =
        CommandHandler::new(env.log.clone(), CommandMetrics::default()).with_max_attempts(1);
    let other: CommandHandler<User> =
        CommandHandler::new(env.second_log().await, CommandMetrics::default());
    let id = Uuid::now_v7();
    // `stale` caches the account as unregistered; then another process registers it.
    assert_eq!(stale.load(&id.to_string()).await.unwrap().1, 0);
    let register = UserCommand::Register(Register {
        user_id: id,
        handle: Handle::parse("gina").unwrap(),
        display_name: name("Gina"),
        about: About::default(),
        phone: None,
        password_hash: natter_domain::user::PasswordHash::new("$argon2id$test"),
    });
    other
        .execute(&id.to_string(), &register, meta())
        .await
        .unwrap();
    let change = UserCommand::ChangeProfile(rename("Gina G."));
    let executed = stale
        .execute(&id.to_string(), &change, meta())
        .await
        .unwrap();
    assert_eq!(executed.events.len(), 1, "not refused as NotFound");
}

/// Renames through the handler, to see the events decided.
async fn rename_on(
    accounts: &natter_commands::accounts::Accounts,
    id: Uuid,
    to: &str,
) -> natter_commands::Executed<UserEvent> {
    accounts
        .users()
        .execute(
            &id.to_string(),
            &natter_domain::user::UserCommand::ChangeProfile(rename(to)),
            meta(),
        )
        .await
        .unwrap()
}
