#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

const CHAT: Uuid = Uuid::from_u128(100);

fn user(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn by(actor: u128) -> Context {
    Context {
        now: datetime!(2026-11-26 12:00 UTC),
        actor: Some(user(actor)),
    }
}

fn group(members: &[u128]) -> ChatCommand {
    ChatCommand::CreateGroup {
        chat_id: CHAT,
        name: GroupName::parse("Friends").unwrap(),
        members: members.iter().map(|n| user(*n)).collect(),
    }
}

/// Runs (actor, command) pairs in order, applying what each decides.
fn run(steps: &[(u128, ChatCommand)]) -> (Chat, Vec<Result<Vec<ChatEvent>, ChatError>>) {
    let mut state = Chat::default();
    let mut outcomes = Vec::new();
    for (actor, command) in steps {
        let outcome = state.decide(command, &by(*actor));
        if let Ok(events) = &outcome {
            state = events.iter().fold(state, |s, e| s.evolve(e));
        }
        outcomes.push(outcome);
    }
    (state, outcomes)
}

fn admins(chat: &Chat) -> Vec<Uuid> {
    match chat {
        Chat::Group(group) => group
            .members
            .iter()
            .filter(|m| m.admin)
            .map(|m| m.user_id)
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_direct_chat_claims_its_pair_and_refuses_blocks_and_oneself() {
    let open = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(2),
        blocked: false,
    };
    let (state, outcomes) = run(&[(1, open.clone())]);
    let events = outcomes[0].clone().unwrap();
    assert_eq!(Chat::claims(&events)[0].key, direct_key(user(2), user(1)));
    assert!(state.is_member(user(1)) && state.is_member(user(2)));
    assert_eq!(state.decide(&open, &by(1)), Err(ChatError::AlreadyExists));
    assert_eq!(
        state.decide(&ChatCommand::Leave, &by(1)),
        Err(ChatError::NotAGroup)
    );
    let blocked = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(2),
        blocked: true,
    };
    assert_eq!(
        Chat::default().decide(&blocked, &by(1)),
        Err(ChatError::Blocked)
    );
    let myself = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(1),
        blocked: false,
    };
    assert_eq!(
        Chat::default().decide(&myself, &by(1)),
        Err(ChatError::CannotChatWithSelf)
    );
}

#[test]
fn only_admins_change_membership_and_names() {
    let (state, outcomes) = run(&[
        (1, group(&[2, 3])),
        (
            2,
            ChatCommand::AddMembers {
                users: vec![user(4)],
            },
        ),
        (2, ChatCommand::RemoveMember { user: user(3) }),
        (
            2,
            ChatCommand::Edit(GroupEdit {
                name: Some(GroupName::parse("Mine").unwrap()),
                ..GroupEdit::default()
            }),
        ),
        (9, ChatCommand::Leave),
        (
            1,
            ChatCommand::AddMembers {
                users: vec![user(4), user(4), user(2)],
            },
        ),
        (
            1,
            ChatCommand::SetAdmin {
                user: user(2),
                admin: true,
            },
        ),
        (2, ChatCommand::RemoveMember { user: user(3) }),
        (2, ChatCommand::RemoveMember { user: user(2) }),
    ]);
    assert_eq!(outcomes[1], Err(ChatError::NotAdmin));
    assert_eq!(outcomes[2], Err(ChatError::NotAdmin));
    assert_eq!(outcomes[3], Err(ChatError::NotAdmin));
    assert_eq!(outcomes[4], Err(ChatError::NotMember));
    let ChatEvent::MembersAdded(added) = &outcomes[5].as_ref().unwrap()[0] else {
        panic!()
    };
    assert_eq!(
        added.users,
        vec![user(4)],
        "duplicates and members are dropped"
    );
    assert!(outcomes[7].is_ok());
    assert_eq!(outcomes[8], Err(ChatError::CannotRemoveSelf));
    assert_eq!(state.members(), vec![user(1), user(2), user(4)]);
}

#[test]
fn the_last_admin_leaving_promotes_the_oldest_member() {
    let (state, outcomes) = run(&[(1, group(&[2, 3])), (1, ChatCommand::Leave)]);
    assert_eq!(outcomes[1].as_ref().unwrap().len(), 2);
    assert_eq!(admins(&state), vec![user(2)]);
    // With another admin left, nobody is promoted.
    let (state, _) = run(&[
        (1, group(&[2, 3])),
        (
            1,
            ChatCommand::SetAdmin {
                user: user(3),
                admin: true,
            },
        ),
        (1, ChatCommand::Leave),
    ]);
    assert_eq!(admins(&state), vec![user(3)]);
}

#[test]
fn groups_are_bounded() {
    let many: Vec<u128> = (2..=1_024).collect();
    assert!(run(&[(1, group(&many))]).1[0].is_ok());
    let too_many: Vec<u128> = (2..=1_025).collect();
    assert_eq!(
        run(&[(1, group(&too_many))]).1[0],
        Err(ChatError::TooManyMembers)
    );
    let (_, outcomes) = run(&[
        (1, group(&many)),
        (
            1,
            ChatCommand::AddMembers {
                users: vec![user(5_000)],
            },
        ),
    ]);
    assert_eq!(outcomes[1], Err(ChatError::TooManyMembers));
}

proptest! {
    /// Whatever happens to a group, while it has members it has an admin.
    #[test]
    fn a_group_with_members_always_has_an_admin(
        steps in proptest::collection::vec((1u128..6, 0u8..4, 1u128..6), 1..40)
    ) {
        let mut all = vec![(1, group(&[2, 3, 4, 5]))];
        for (actor, action, target) in steps {
            let command = match action {
                0 => ChatCommand::Leave,
                1 => ChatCommand::RemoveMember { user: user(target) },
                2 => ChatCommand::SetAdmin { user: user(target), admin: false },
                _ => ChatCommand::AddMembers { users: vec![user(target)] },
            };
            all.push((actor, command));
        }
        let (state, _) = run(&all);
        if !state.members().is_empty() {
            prop_assert!(!admins(&state).is_empty() || matches!(state, Chat::Direct { .. }), "{state:?}");
        }
    }
}

#[test]
fn the_last_admin_cannot_step_down() {
    let (_, outcomes) = run(&[
        (1, group(&[2])),
        (
            1,
            ChatCommand::SetAdmin {
                user: user(1),
                admin: false,
            },
        ),
    ]);
    assert_eq!(outcomes[1], Err(ChatError::LastAdmin));
}

fn send() -> SendMessage {
    SendMessage {
        message_id: Uuid::from_u128(500),
        client_id: ClientId::parse("c-1").unwrap(),
        body: MessageBody::parse("hello").unwrap(),
        reply_to: None,
        mentions: Vec::new(),
        forwarded: 0,
        attachment: None,
    }
}

#[test]
fn only_members_send_and_blocks_hold_in_direct_chats() {
    let (group_chat, _) = run(&[(1, group(&[2]))]);
    assert!(group_chat.decide_send(&send(), &by(2)).is_ok());
    assert_eq!(
        group_chat.decide_send(&send(), &by(3)),
        Err(ChatError::NotMember)
    );
    assert_eq!(
        group_chat.decide(&ChatCommand::SetBlocked { blocked: true }, &by(2)),
        Err(ChatError::NotAGroup),
        "blocks are about direct chats"
    );
    let direct = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(2),
        blocked: false,
    };
    let block = |blocked| ChatCommand::SetBlocked { blocked };
    let (blocked_chat, outcomes) = run(&[(1, direct.clone()), (2, block(true)), (2, block(true))]);
    assert_eq!(
        outcomes[2],
        Ok(Vec::new()),
        "blocking twice changes nothing"
    );
    for sender in [1, 2] {
        assert_eq!(
            blocked_chat.decide_send(&send(), &by(sender)),
            Err(ChatError::Blocked),
            "neither side sends while one blocks"
        );
    }
    assert_eq!(
        blocked_chat.decide(&block(true), &by(3)),
        Err(ChatError::NotMember)
    );
    let (both, _) = run(&[
        (1, direct.clone()),
        (1, block(true)),
        (2, block(true)),
        (1, block(false)),
    ]);
    assert_eq!(
        both.decide_send(&send(), &by(1)),
        Err(ChatError::Blocked),
        "one unblocking leaves the other's block"
    );
    let (unblocked, _) = run(&[(1, direct), (2, block(true)), (2, block(false))]);
    assert!(unblocked.decide_send(&send(), &by(1)).is_ok());
    assert_eq!(
        Chat::default().decide_send(&send(), &by(1)),
        Err(ChatError::NotFound)
    );
}

#[test]
fn markers_that_do_not_move_decide_nothing_and_only_members_mark() {
    let (chat, _) = run(&[(1, group(&[2]))]);
    let read = |up_to, known, actor| chat.decide_mark_read(up_to, known, &by(actor));
    let moved = read(7, 5, 2).unwrap().unwrap();
    assert_eq!((moved.user, moved.up_to), (user(2), 7));
    assert_eq!(read(5, 5, 2), Ok(None), "where the marker is already");
    assert_eq!(read(3, 5, 2), Ok(None), "below it: markers never move back");
    assert_eq!(read(0, 0, 2), Ok(None));
    assert_eq!(
        read(3, 5, 3),
        Err(ChatError::NotMember),
        "a no-op for a member is still refused to others"
    );
    let delivered = |up_to, known| chat.decide_mark_delivered(up_to, known, &by(2));
    assert_eq!(delivered(9, 9), Ok(None));
    assert_eq!(delivered(10, 9).unwrap().map(|d| d.up_to), Some(10));
}

#[test]
fn bodies_and_client_ids_are_checked() {
    assert_eq!(MessageBody::parse(" \n"), Err(TextError::Blank));
    assert!(MessageBody::parse(&"x".repeat(64 * 1024)).is_ok());
    assert_eq!(
        MessageBody::parse(&"x".repeat(64 * 1024 + 1)),
        Err(TextError::TooLong { max: 64 * 1024 })
    );
    assert!(ClientId::parse("").is_err());
    assert!(ClientId::parse("has space").is_err());
    assert!(ClientId::parse(&"a".repeat(65)).is_err());
}

#[test]
fn a_uuid_v7_client_id_tells_when_it_was_made() {
    let made = |id: &str| ClientId::parse(id).unwrap().made_at_ms();
    // RFC 9562's example UUIDv7: Tuesday, February 22, 2022 2:22:22.00 PM GMT-05:00.
    assert_eq!(
        made("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"),
        Some(1_645_557_742_000)
    );
    assert_eq!(
        made("017f22e279b07cc398c4dc0c0c07398f"),
        Some(1_645_557_742_000)
    );
    let now = Uuid::now_v7();
    assert!(made(&now.to_string()).is_some());
    // Other versions, other variants and other ids carry no time.
    assert_eq!(made(&Uuid::new_v4().to_string()), None);
    assert_eq!(made("017F22E2-79B0-7CC3-18C4-DC0C0C07398F"), None);
    assert_eq!(made("c-1"), None);
}

fn sent_by(sender: u128, minutes_ago: i64) -> MessageRef {
    MessageRef {
        chat_id: CHAT,
        sequence: 7,
        message_id: Uuid::from_u128(700),
        sender: user(sender),
        sent_at: datetime!(2026-11-26 12:00 UTC) - time::Duration::minutes(minutes_ago),
    }
}

#[test]
fn edits_are_the_authors_within_the_window_and_deletes_the_authors_or_admins() {
    let (chat, _) = run(&[(1, group(&[2, 3]))]);
    let edit = MessageAction::Edit(MessageBody::parse("fixed").unwrap());
    assert!(
        chat.decide_on_message(&sent_by(2, 1), &edit, &by(2))
            .is_ok()
    );
    assert_eq!(
        chat.decide_on_message(&sent_by(2, 1), &edit, &by(3)),
        Err(ChatError::NotAuthor)
    );
    assert_eq!(
        chat.decide_on_message(&sent_by(2, 16), &edit, &by(2)),
        Err(ChatError::EditWindowClosed)
    );
    let delete = MessageAction::DeleteForEveryone;
    assert!(
        chat.decide_on_message(&sent_by(2, 60), &delete, &by(2))
            .is_ok(),
        "the author, any time"
    );
    assert!(
        chat.decide_on_message(&sent_by(2, 60), &delete, &by(1))
            .is_ok(),
        "an admin"
    );
    assert_eq!(
        chat.decide_on_message(&sent_by(2, 60), &delete, &by(3)),
        Err(ChatError::CannotDelete)
    );
    let react = MessageAction::React(Some(Reaction::parse("👍").unwrap()));
    assert!(
        chat.decide_on_message(&sent_by(2, 60), &react, &by(3))
            .is_ok()
    );
    assert_eq!(
        chat.decide_on_message(&sent_by(2, 60), &react, &by(9)),
        Err(ChatError::NotMember)
    );
    assert!(Reaction::parse("two words").is_err() && Reaction::parse("").is_err());
}

#[test]
fn group_info_is_for_admins_unless_the_group_lets_every_member_edit_it() {
    let rename = |name: &str| {
        ChatCommand::Edit(GroupEdit {
            name: Some(GroupName::parse(name).unwrap()),
            ..GroupEdit::default()
        })
    };
    let describe = ChatCommand::Edit(GroupEdit {
        description: Some(Description::parse("Tuesdays at the wall").unwrap()),
        avatar: Some(Some(Uuid::from_u128(900))),
        ..GroupEdit::default()
    });
    let open_up = ChatCommand::Edit(GroupEdit {
        members_edit_info: Some(true),
        ..GroupEdit::default()
    });
    let (state, outcomes) = run(&[
        (1, group(&[2])),
        (2, rename("Theirs")),
        (2, open_up.clone()),
        (1, open_up.clone()),
        (2, rename("Theirs")),
        (2, describe.clone()),
        (2, describe),
        (1, open_up),
    ]);
    assert_eq!(outcomes[1], Err(ChatError::NotAdmin));
    assert_eq!(
        outcomes[2],
        Err(ChatError::NotAdmin),
        "the permission itself is the admins'"
    );
    assert!(matches!(
        &outcomes[4].as_ref().unwrap()[..],
        [ChatEvent::GroupRenamed(_)]
    ));
    assert!(matches!(
        &outcomes[5].as_ref().unwrap()[..],
        [
            ChatEvent::GroupDescribed(_),
            ChatEvent::GroupAvatarChanged(_)
        ]
    ));
    assert_eq!(outcomes[6], Ok(Vec::new()), "no change, no event");
    assert_eq!(outcomes[7], Ok(Vec::new()));
    let Chat::Group(group) = state else { panic!() };
    assert_eq!(group.name.as_str(), "Theirs");
    assert_eq!(group.avatar, Some(Uuid::from_u128(900)));
    assert!(Description::parse(&"x".repeat(501)).is_err());
    assert!(Description::parse("two\nlines").is_ok());
}

#[test]
fn invite_links_let_strangers_join_until_revoked() {
    let code = InviteCode::parse("abcdefghijklmnop").unwrap();
    let create = ChatCommand::CreateInvite { code: code.clone() };
    let join = ChatCommand::JoinByInvite { code: code.clone() };
    let (state, outcomes) = run(&[
        (1, group(&[2])),
        (2, create.clone()),
        (1, create.clone()),
        (5, join.clone()),
        (5, join.clone()),
        (1, ChatCommand::RevokeInvite { code: code.clone() }),
        (6, join),
    ]);
    assert_eq!(outcomes[1], Err(ChatError::NotAdmin));
    let events = outcomes[2].as_ref().unwrap();
    let claims = Chat::claims(events);
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].kind, claims[0].key.as_str()),
        (INVITE_CLAIM, code.as_str())
    );
    assert!(matches!(
        &outcomes[3].as_ref().unwrap()[..],
        [ChatEvent::MemberJoined(_)]
    ));
    assert_eq!(
        outcomes[4],
        Ok(Vec::new()),
        "a member joining again changes nothing"
    );
    let revoked = outcomes[5].as_ref().unwrap();
    assert!(matches!(
        Chat::claims(revoked)[0].action,
        ClaimAction::Release { .. }
    ));
    assert_eq!(outcomes[6], Err(ChatError::InviteInvalid));
    assert!(state.is_member(user(5)) && !state.is_member(user(6)));
    assert!(InviteCode::parse("short").is_err() && InviteCode::parse(&"a.".repeat(10)).is_err());
}

#[test]
fn a_group_keeps_at_most_ten_invites() {
    let mut steps = vec![(1, group(&[]))];
    for n in 0..=MAX_INVITES {
        let code = InviteCode::parse(&format!("code-{n:0>12}")).unwrap();
        steps.push((1, ChatCommand::CreateInvite { code }));
    }
    let (_, outcomes) = run(&steps);
    assert_eq!(outcomes.last().unwrap(), &Err(ChatError::TooManyInvites));
    assert!(outcomes[..outcomes.len() - 1].iter().all(Result::is_ok));
}

#[test]
fn replies_stay_in_their_chat_and_mentions_name_members_only() {
    let (chat, _) = run(&[(1, group(&[2, 3]))]);
    let mut elsewhere = sent_by(2, 1);
    elsewhere.chat_id = Uuid::from_u128(101);
    let reply = SendMessage {
        reply_to: Some(elsewhere),
        ..send()
    };
    assert_eq!(
        chat.decide_send(&reply, &by(1)),
        Err(ChatError::ReplyNotInChat)
    );
    let reply = SendMessage {
        reply_to: Some(sent_by(2, 1)),
        mentions: vec![user(2), user(9), user(2), user(1)],
        ..send()
    };
    let sent = chat.decide_send(&reply, &by(1)).unwrap();
    assert_eq!(
        (sent.reply_to, sent.reply_to_sequence),
        (Some(Uuid::from_u128(700)), Some(7))
    );
    assert_eq!(sent.mentions, vec![user(2)], "members, once, not oneself");
}

#[test]
fn pins_are_for_admins_in_groups_and_stars_and_hiding_for_anyone() {
    let (chat, _) = run(&[(1, group(&[2]))]);
    let pin = MessageAction::Pin(true);
    assert_eq!(
        chat.decide_on_message(&sent_by(2, 1), &pin, &by(2)),
        Err(ChatError::NotAdmin)
    );
    assert!(chat.decide_on_message(&sent_by(2, 1), &pin, &by(1)).is_ok());
    for action in [MessageAction::Star(true), MessageAction::DeleteForMe] {
        assert!(
            chat.decide_on_message(&sent_by(1, 60), &action, &by(2))
                .is_ok()
        );
        assert_eq!(
            chat.decide_on_message(&sent_by(1, 60), &action, &by(7)),
            Err(ChatError::NotMember)
        );
    }
    let direct = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(2),
        blocked: false,
    };
    let (direct_chat, _) = run(&[(1, direct)]);
    assert!(
        direct_chat
            .decide_on_message(&sent_by(1, 1), &pin, &by(2))
            .is_ok()
    );
}

#[test]
fn a_blocked_direct_chat_takes_no_edits_reactions_or_pins_and_bodies_take_no_nul() {
    let direct = ChatCommand::CreateDirect {
        chat_id: CHAT,
        other: user(2),
        blocked: false,
    };
    let (chat, _) = run(&[(1, direct), (2, ChatCommand::SetBlocked { blocked: true })]);
    let react = MessageAction::React(Some(Reaction::parse("👍").unwrap()));
    for action in [
        MessageAction::Edit(MessageBody::parse("new").unwrap()),
        react,
        MessageAction::Pin(true),
    ] {
        assert_eq!(
            chat.decide_on_message(&sent_by(1, 1), &action, &by(1)),
            Err(ChatError::Blocked)
        );
    }
    for action in [
        MessageAction::DeleteForEveryone,
        MessageAction::DeleteForMe,
        MessageAction::Star(true),
    ] {
        assert!(
            chat.decide_on_message(&sent_by(1, 1), &action, &by(1))
                .is_ok()
        );
    }
    assert_eq!(MessageBody::parse("a\0b"), Err(TextError::ControlCharacter));
    assert!(MessageBody::parse("two\nlines\twith tab").is_ok());
}

#[test]
fn joining_a_group_everyone_left_makes_the_joiner_its_admin() {
    let code = InviteCode::parse("abcdefghijklmnop").unwrap();
    let (state, outcomes) = run(&[
        (1, group(&[])),
        (1, ChatCommand::CreateInvite { code: code.clone() }),
        (1, ChatCommand::Leave),
        (7, ChatCommand::JoinByInvite { code }),
    ]);
    assert!(matches!(
        &outcomes[3].as_ref().unwrap()[..],
        [ChatEvent::MemberJoined(_), ChatEvent::AdminChanged(_)]
    ));
    assert_eq!(admins(&state), vec![user(7)]);
}
