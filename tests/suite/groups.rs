//! Group info, who may edit it, and invite links, through real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::TestEnv;
use common::http::{Api, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn group(api: &Api, admin: &User, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let (status, group) = api
        .call(
            Method::POST,
            "/v1/chats/groups",
            admin,
            Some(json!({"name": "Crew", "members": ids})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    group["chat_id"].as_str().unwrap().to_owned()
}

fn code(problem: &Value) -> Option<&str> {
    problem["code"].as_str()
}

#[tokio::test]
async fn group_info_is_the_admins_unless_they_open_it_to_every_member() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo) = (api.user("ada").await, api.user("bo").await);
    let chat = group(&api, &ada, &[&bo]).await;
    let path = format!("/v1/chats/{chat}");
    // An avatar is an image ada uploaded.
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(16, 16)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let (_, uploaded) = api.upload(&ada, "image", png.into_inner()).await;
    let avatar = uploaded["media_id"].as_str().unwrap().to_owned();

    let (status, problem) = api
        .call(
            Method::PATCH,
            &path,
            &bo,
            Some(json!({"description": "mine"})),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );
    let (status, _) = api
        .call(
            Method::PATCH,
            &path,
            &ada,
            Some(json!({"description": "Tuesdays", "avatar_media_id": avatar})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Only admins open the info to members, and then members may edit it.
    let (status, _) = api
        .call(
            Method::PATCH,
            &path,
            &bo,
            Some(json!({"members_can_edit_info": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.call(
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"members_can_edit_info": true})),
    )
    .await;
    let (status, edited) = api
        .call(
            Method::PATCH,
            &path,
            &bo,
            Some(json!({"name": "Bouldering", "avatar_media_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, details) = api
        .call(
            Method::GET,
            &format!("{path}?min_sequence={}", edited["sequence"]),
            &ada,
            None,
        )
        .await;
    assert_eq!(details["name"], "Bouldering");
    assert_eq!(details["description"], "Tuesdays");
    assert_eq!(details["avatar_media_id"], Value::Null, "null removes it");
    assert_eq!(details["members_can_edit_info"], true);

    // Bad input is refused with its code, never stored.
    for (body, expected) in [
        (
            json!({"name": " "}),
            (StatusCode::BAD_REQUEST, "invalid_name"),
        ),
        (
            json!({"description": "x".repeat(501)}),
            (StatusCode::BAD_REQUEST, "invalid_description"),
        ),
        (
            json!({"avatar_media_id": "not-a-uuid"}),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ),
    ] {
        let (status, problem) = api.call(Method::PATCH, &path, &ada, Some(body)).await;
        assert_eq!((status, code(&problem)), (expected.0, Some(expected.1)));
    }
    // A direct chat has no info to edit.
    let (_, direct) = api
        .call(
            Method::POST,
            "/v1/chats/direct",
            &ada,
            Some(json!({"user_id": bo.id})),
        )
        .await;
    let (status, problem) = api
        .call(
            Method::PATCH,
            &format!("/v1/chats/{}", direct["chat_id"].as_str().unwrap()),
            &ada,
            Some(json!({"name": "Us"})),
        )
        .await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_a_group"))
    );
}

#[tokio::test]
async fn an_invite_link_lets_anyone_join_until_an_admin_revokes_it() {
    let env = TestEnv::new().await;
    let api = Api::start(&env).await;
    let (ada, bo, cy, di) = (
        api.user("ada").await,
        api.user("bo").await,
        api.user("cy").await,
        api.user("di").await,
    );
    let chat = group(&api, &ada, &[&bo]).await;
    let invites = format!("/v1/chats/{chat}/invites");

    // Members who are not admins neither open nor see links; strangers see no chat.
    let (status, _) = api.call(Method::POST, &invites, &bo, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.call(Method::GET, &invites, &bo, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.call(Method::POST, &invites, &cy, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, invite) = api.call(Method::POST, &invites, &ada, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let link = invite["code"].as_str().unwrap().to_owned();
    assert!(link.len() >= 32, "a code long enough not to be guessed");
    let (_, listed) = api.call(Method::GET, &invites, &ada, None).await;
    assert_eq!(listed["codes"], json!([link]));

    let (status, joined) = api
        .call(Method::POST, &format!("/v1/invites/{link}"), &cy, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["chat_id"], chat.as_str());
    // Joining again changes nothing.
    let (status, _) = api
        .call(Method::POST, &format!("/v1/invites/{link}"), &cy, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, details) = api
        .call(
            Method::GET,
            &format!("/v1/chats/{chat}?min_sequence={}", joined["sequence"]),
            &cy,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["members"].as_array().unwrap().len(), 3);

    // Revoked, the link opens nothing; neither does a made-up one.
    let (status, _) = api
        .call(Method::DELETE, &format!("{invites}/{link}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for attempt in [link.as_str(), "0123456789abcdef0123456789abcdef", "bad!"] {
        let (status, problem) = api
            .call(Method::POST, &format!("/v1/invites/{attempt}"), &di, None)
            .await;
        assert_eq!(
            (status, code(&problem)),
            (StatusCode::NOT_FOUND, Some("invite_not_found")),
            "{attempt}"
        );
    }
    let (_, listed) = api.call(Method::GET, &invites, &ada, None).await;
    assert_eq!(listed["codes"], json!([]));

    // At most ten open at once.
    for _ in 0..10 {
        let (status, _) = api.call(Method::POST, &invites, &ada, None).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, problem) = api.call(Method::POST, &invites, &ada, None).await;
    assert_eq!(
        (status, code(&problem)),
        (StatusCode::CONFLICT, Some("too_many_invites"))
    );
}
