//! The OpenAPI 3.1 document, generated from the handlers and types, and Swagger UI.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::admin;
use crate::routes::{
    SequenceResponse, accounts, chats, media, messages, search, sessions, uploads,
};
use crate::{ApiState, Problem};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Natter API",
        description = "The REST API of Natter, an event-sourced messaging backend.\n\n\
            Errors are `application/problem+json` with a stable `code`. Every command \
            answers with the stream `sequence` of its last event; pass it back to a query \
            as `min_sequence` to read your own write.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        accounts::register, accounts::search, accounts::by_handle, accounts::user, accounts::presence,
        accounts::me, accounts::change_profile, accounts::delete_account,
        accounts::change_password, accounts::change_privacy, accounts::set_photo,
        accounts::remove_photo,
        accounts::blocks, accounts::block, accounts::unblock,
        sessions::login, sessions::refresh, sessions::logout, sessions::sign_out_everywhere,
        sessions::revoke, sessions::list,
        chats::open_direct, chats::create_group, chats::list, chats::details,
        chats::add_members, chats::remove_member, chats::promote, chats::demote, chats::edit,
        chats::create_invite, chats::invites, chats::revoke_invite, chats::join_by_invite,
        chats::change_settings,
        messages::send_message, messages::history, messages::mark_read, messages::mark_delivered,
        messages::edit_message, messages::delete_message, messages::react, messages::unreact,
        messages::star, messages::unstar, messages::pin, messages::unpin, messages::starred,
        search::search_messages,
        admin::projections,
        media::upload, media::details, media::content, media::thumbnail, media::download_url,
        uploads::discover, uploads::create, uploads::offset, uploads::progress, uploads::append,
        uploads::terminate,
    ),
    components(schemas(Problem, SequenceResponse, crate::routes::messages::DeleteScope)),
    modifiers(&BearerAuth, &CommonProblems),
    tags(
        (name = "accounts", description = "Registration and the caller's own account"),
        (name = "directory", description = "Finding other users"),
        (name = "sessions", description = "Signing in and out, and tokens"),
        (name = "chats", description = "Direct chats and groups, their members and admins"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "media", description = "Images, voice notes, videos and documents"),
        (name = "admin", description = "Operators' endpoints, behind NATTER_ADMIN_TOKEN"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description =
            Some("An access token from POST /v1/sessions or /v1/sessions/refresh".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The operators' token, NATTER_ADMIN_TOKEN".into());
        components.add_security_scheme("admin", SecurityScheme::Http(admin));
    }
}

/// The problems every operation of a kind can answer with, added where missing: a
/// malformed path or query (400), a body that is not JSON, too large or of the wrong
/// shape (400, 413, 415, 422), a missing or ended session (401), and a read model that
/// did not reach the consistency token in time (503), and for every command an event log
/// that could not take or confirm the write (503 `unavailable` or `outcome_unknown`).
struct CommonProblems;

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
                item.head.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                add("400", "Malformed request: path, query or body");
                let has_body = operation.request_body.is_some();
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let consistent = operation
                    .parameters
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|p| p.name == "min_sequence"));
                if has_body {
                    add("413", "Body too large");
                    add("415", "Body not sent as application/json");
                    add("422", "Body of the wrong shape");
                }
                if secured {
                    add(
                        "401",
                        "Missing, invalid or expired access token, or the session has ended",
                    );
                }
                if consistent {
                    add(
                        "503",
                        "The read model has not reached min_sequence yet; retry",
                    );
                }
            }
            for operation in [
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                interrupted_command(operation);
            }
        }
    }
}

/// Every command can meet an event log that cannot take its write (no stream leader):
/// `unavailable`, nothing stored; or one that did not confirm it: `outcome_unknown`,
/// perhaps stored. Both come with `Retry-After`, and a retry with the same `client_id`
/// or `Idempotency-Key` is applied at most once.
const INTERRUPTED: &str = "The event log could not take the write (`unavailable`: nothing was \
    stored) or did not confirm it (`outcome_unknown`: it may be stored). Retry after \
    Retry-After; a retry with the same client_id or Idempotency-Key is applied at most once";

fn interrupted_command(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let responses = &mut operation.responses.responses;
    match responses.get_mut("503") {
        Some(RefOr::T(existing)) => {
            existing.description = format!("{}. Or: {INTERRUPTED}", existing.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let response = ResponseBuilder::new()
                .description(INTERRUPTED)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build();
            responses.insert("503".to_owned(), response.into());
        }
    }
}

/// The document as served, pretty-printed with a final newline (as committed).
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

pub(crate) async fn serve_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

/// Swagger UI at `/docs`, served from the binary (no network), reading `/openapi.json`.
pub(crate) fn swagger_ui() -> Router<ApiState> {
    Router::from(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
}

/// The realtime protocol (the gateway's WebSocket), as AsyncAPI 3.0.
pub(crate) async fn serve_asyncapi() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/asyncapi.json"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(target)) => refs.push(target),
                        _ => walk(child, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, refs)),
            _ => {}
        }
    }

    /// Client generators (the web app's among them) need every `$ref` to resolve and
    /// every operation id to be unique.
    #[test]
    fn every_ref_resolves_and_operation_ids_are_unique() {
        let document: Value = serde_json::from_str(&super::openapi_json()).unwrap();
        let mut refs = Vec::new();
        walk(&document, &mut refs);
        for target in refs {
            let pointer = target.strip_prefix('#').unwrap();
            assert!(
                document.pointer(pointer).is_some(),
                "unresolved $ref {target}"
            );
        }
        let mut ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|operations| operations.as_object().unwrap().values())
            .filter_map(|operation| operation.get("operationId").and_then(Value::as_str))
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat");
    }
}
