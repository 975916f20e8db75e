//! The OpenAPI 3.1 document, generated from the handlers and types, and Swagger UI.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::admin;
use crate::routes::{
    SequenceResponse, accounts, chats, media, messages, push, search, sessions, uploads,
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
        push::key, push::subscribe, push::unsubscribe,
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
    components(schemas(
        Problem,
        SequenceResponse,
        crate::routes::messages::DeleteScope,
        crate::routes::messages::Shelf
    )),
    modifiers(&BearerAuth, &CommonProblems),
    tags(
        (name = "accounts", description = "Registration and the caller's own account"),
        (name = "directory", description = "Finding other users"),
        (name = "sessions", description = "Signing in and out, and tokens"),
        (name = "chats", description = "Direct chats and groups, their members and admins"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "media", description = "Images, voice notes, videos and documents"),
        (name = "push", description = "Web Push: the server's key and each session's subscription"),
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

/// Every error answer's body is a problem (`application/problem+json`), filled in where a
/// route names only its status and meaning. And the problems every operation of a kind
/// can answer with, added where missing: a
/// malformed path or query (400), a body that is not JSON, too large or of the wrong
/// shape (400, 413, 415, 422), a missing or ended session (401), a consistency token
/// past the end of the log (400) or not reached in time (503), and for every command an
/// event log that could not take or confirm the write (503 `unavailable` or
/// `outcome_unknown`).
struct CommonProblems;

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", problem_content())
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            // An error answer is a problem: the routes name its status and meaning, and
            // the body is filled in here, once (not for HEAD, which answers no body).
            for operation in [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                for (status, response) in &mut operation.responses.responses {
                    if let utoipa::openapi::RefOr::T(response) = response
                        && response.content.is_empty()
                        && status.starts_with(['4', '5'])
                    {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), problem_content());
                    }
                }
            }
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
                    consistency_token(operation);
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
                mention(operation, "503", "outcome_unknown", INTERRUPTED);
            }
        }
    }
}

/// What `min_sequence` means and answers, the same on every query that takes it (see
/// `extract::wait_for`).
const MIN_SEQUENCE: &str = "Wait (up to 3 s) until the read model has applied this stream \
    sequence: the `sequence` of an earlier command's answer. 0 waits for nothing; a sequence \
    past the end of the log was never handed out and is refused (400 \
    `invalid_consistency_token`)";
const PAST_THE_LOG: &str = "`min_sequence` past the end of the log \
    (`invalid_consistency_token`)";
const NOT_REACHED: &str = "The read model has not reached `min_sequence` within 3 s \
    (`consistency_timeout`); retry after Retry-After";

fn consistency_token(operation: &mut utoipa::openapi::path::Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == "min_sequence" {
            parameter.description = Some(MIN_SEQUENCE.to_owned());
        }
    }
    mention(operation, "400", "invalid_consistency_token", PAST_THE_LOG);
    mention(operation, "503", "consistency_timeout", NOT_REACHED);
}

/// Makes the `status` answer of `operation` mention `code`, adding `description` to
/// what it says, or making it a problem answer that says it.
fn mention(
    operation: &mut utoipa::openapi::path::Operation,
    status: &str,
    code: &str,
    description: &str,
) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    match operation.responses.responses.get_mut(status) {
        Some(RefOr::T(existing)) if !existing.description.contains(code) => {
            existing.description = format!("{}. Or: {description}", existing.description);
        }
        Some(_) => {}
        None => {
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", problem_content())
                .build();
            operation
                .responses
                .responses
                .insert(status.to_owned(), response.into());
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

/// The body of every error answer: a `Problem`.
fn problem_content() -> utoipa::openapi::Content {
    utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .build()
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

    fn document() -> Value {
        serde_json::from_str(&super::openapi_json()).unwrap()
    }

    /// Every operation: its method, its path and the operation itself.
    fn operations(document: &Value) -> Vec<(&str, &str, &Value)> {
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations.push((method.as_str(), path.as_str(), operation));
            }
        }
        operations
    }

    /// Stream positions (a sequence to page from, a message's sequence, a tus offset):
    /// the server takes any size, answering not found or a conflict beyond the log.
    const POSITIONS: [&str; 6] = [
        "before",
        "after",
        "sequence",
        "reply_to",
        "Upload-Offset",
        "forward.sequence",
    ];

    /// A JSON request body's schema, or the part of it at `field` (`a.b`, `list[]`).
    struct Body<'a> {
        document: &'a Value,
        operation: &'a str,
        /// The `$ref`s being followed, so that a recursive schema ends.
        following: Vec<&'a str>,
    }

    impl<'a> Body<'a> {
        /// Checks `schema` and what it holds; what has no bound goes into `unbounded`.
        fn check(&mut self, schema: &'a Value, field: &str, unbounded: &mut Vec<String>) {
            let at = format!("{} {field}", self.operation);
            if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
                if self.following.contains(&target) {
                    return;
                }
                self.following.push(target);
                let pointer = target.strip_prefix('#').unwrap();
                self.check(self.document.pointer(pointer).unwrap(), field, unbounded);
                self.following.pop();
                return;
            }
            for key in ["oneOf", "anyOf", "allOf"] {
                for alternative in schema
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.check(alternative, field, unbounded);
                }
            }
            let types: Vec<&str> = match &schema["type"] {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let has = |key: &str| schema.get(key).is_some();
            let bounded_format = matches!(
                schema["format"].as_str(),
                Some("uuid" | "date-time" | "date")
            );
            if types.contains(&"string")
                && !(has("maxLength")
                    || has("enum")
                    || has("const")
                    || has("pattern")
                    || bounded_format)
            {
                unbounded.push(format!("{at}: a string without maxLength, enum or pattern"));
            }
            if types.contains(&"array") && !has("maxItems") {
                unbounded.push(format!("{at}: an array without maxItems"));
            }
            if types.iter().any(|t| matches!(*t, "integer" | "number"))
                && !(has("minimum") && (has("maximum") || POSITIONS.contains(&field)))
            {
                unbounded.push(format!("{at}: a number without minimum and maximum"));
            }
            if let Some(items) = schema.get("items") {
                self.check(items, &format!("{field}[]"), unbounded);
            }
            for (name, property) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let field = if field.is_empty() {
                    name.clone()
                } else {
                    format!("{field}.{name}")
                };
                self.check(property, &field, unbounded);
            }
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                self.check(values, &format!("{field}{{}}"), unbounded);
            }
        }
    }

    /// Every limit on what a client sends is in the schema, where clients and fuzzers
    /// generated from it find it: each string of a JSON body has a maxLength, an enum, a
    /// pattern or a bounded format; each array a maxItems; each number, and each
    /// integer parameter, a minimum and a maximum (a stream position only a minimum).
    /// Bytes bodies are binary strings, not arrays of numbers.
    #[test]
    fn every_limit_on_what_clients_send_is_in_the_schema() {
        let document = document();
        let mut unbounded = Vec::new();
        for (method, path, operation) in operations(&document) {
            let name = format!("{} {path}", method.to_uppercase());
            let content = operation
                .pointer("/requestBody/content")
                .and_then(Value::as_object);
            for (content_type, media) in content.into_iter().flatten() {
                let schema = &media["schema"];
                if content_type == "application/json" {
                    let mut body = Body {
                        document: &document,
                        operation: &name,
                        following: Vec::new(),
                    };
                    body.check(schema, "", &mut unbounded);
                } else if !(schema["type"] == "string"
                    && (schema["format"] == "binary" || schema.get("contentMediaType").is_some()))
                {
                    unbounded.push(format!(
                        "{name}: {content_type} bytes described as {schema}"
                    ));
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                let types = schema["type"].to_string();
                if !types.contains("integer") {
                    continue;
                }
                let parameter_name = parameter["name"].as_str().unwrap();
                let position = POSITIONS.contains(&parameter_name);
                if schema.get("minimum").is_none() || !(schema.get("maximum").is_some() || position)
                {
                    unbounded.push(format!(
                        "{name} {parameter_name}: an integer parameter without minimum and maximum"
                    ));
                }
            }
        }
        assert!(
            unbounded.is_empty(),
            "limits missing from the schema:\n{}",
            unbounded.join("\n")
        );
    }

    /// The problems the server answers are where the document says, with their codes,
    /// where the two once differed: a consistency token past the end of the log or not
    /// reached in time, and bytes past a tus upload's length.
    #[test]
    fn the_document_names_the_problems_the_server_answers() {
        use crate::extract::{token_not_reached, token_past_the_log};
        let document = document();
        let mut answers = vec![(
            "patch",
            "/v1/media/uploads/{upload_id}",
            crate::uploads::beyond_length(0),
        )];
        for (method, path, operation) in operations(&document) {
            let parameters = operation["parameters"].as_array().into_iter().flatten();
            if parameters.into_iter().any(|p| p["name"] == "min_sequence") {
                answers.push((method, path, token_past_the_log(2, 1)));
                answers.push((method, path, token_not_reached(2)));
            }
        }
        assert!(
            answers.len() > 10,
            "the queries taking min_sequence were not found"
        );
        for (method, path, error) in answers {
            let status = error.status();
            let response = &document["paths"][path][method]["responses"][status.as_str()];
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(&format!("`{}`", error.code())),
                "{method} {path}: {status} {} is not documented: {description:?}",
                error.code()
            );
        }
    }

    /// Client generators (the web app's among them) need every `$ref` to resolve and
    /// every operation id to be unique.
    #[test]
    fn every_ref_resolves_and_operation_ids_are_unique() {
        let document = document();
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
