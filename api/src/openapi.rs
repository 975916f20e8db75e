//! The OpenAPI 3.1 document, generated from the handlers and types, and Swagger UI.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{SequenceResponse, accounts, sessions};
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
        accounts::register, accounts::search, accounts::by_handle, accounts::user,
        accounts::me, accounts::change_profile, accounts::delete_account,
        accounts::change_password, accounts::change_privacy,
        accounts::blocks, accounts::block, accounts::unblock,
        sessions::login, sessions::refresh, sessions::logout, sessions::revoke, sessions::list,
    ),
    components(schemas(Problem, SequenceResponse)),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration and the caller's own account"),
        (name = "directory", description = "Finding other users"),
        (name = "sessions", description = "Signing in and out, and tokens"),
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
