//! Accounts: registration, the caller's own profile and settings, blocks, and the user
//! directory.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_commands::accounts::NewAccount;
use natter_commands::tokens::hex_digest;
use natter_domain::user::{
    About, ChangePrivacy, ChangeProfile, DisplayName, Handle, Password, PhoneNumber, Visibility,
};

/// Who may see a piece of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Everyone,
    Contacts,
    Nobody,
}

impl From<Audience> for Visibility {
    fn from(audience: Audience) -> Self {
        match audience {
            Audience::Everyone => Self::Everyone,
            Audience::Contacts => Self::Contacts,
            Audience::Nobody => Self::Nobody,
        }
    }
}

fn audience(text: &str) -> Audience {
    match text {
        "contacts" => Audience::Contacts,
        "nobody" => Audience::Nobody,
        _ => Audience::Everyone,
    }
}
use natter_projections::reads::users;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{Consistency, SequenceResponse, metadata};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, ClientAddress, wait_for};
use crate::{ApiError, ApiState};

/// The user directory read model, whose checkpoint a consistency token waits for.
pub(crate) const DIRECTORY: (&str, i32) = (
    <natter_projections::UserDirectory as natter_projections::Projection>::NAME,
    <natter_projections::UserDirectory as natter_projections::Projection>::VERSION,
);

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"handle": "alice", "display_name": "Alice", "password": "correct horse battery", "phone": "+4930123456", "about": "Hi!"}))]
pub struct RegisterRequest {
    /// 3 to 32 of `a-z 0-9 _`, starting with a letter; case-insensitive (surrounding
    /// spaces are dropped).
    #[schema(min_length = 3, max_length = 32)]
    pub handle: String,
    /// 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// International (E.164) form.
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    /// Up to 140 characters.
    #[schema(max_length = 140)]
    pub about: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "handle": "alice", "display_name": "Alice", "about": "Hi!", "sequence": 2}))]
pub struct RegisteredResponse {
    pub user_id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub about: String,
    /// The stream sequence of the registration: a consistency token.
    pub sequence: u64,
}

/// Registers an account.
///
/// Send an `Idempotency-Key` to make a retry safe: the same key with the same request
/// answers with the first result, for as long as the log is kept.
#[utoipa::path(
    post, path = "/v1/users", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters")),
    responses(
        (status = 201, description = "Registered", body = RegisteredResponse),
        (status = 400, description = "Invalid field"),
        (status = 409, description = "Handle taken"),
        (status = 413, description = "Body too large"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "Body of the wrong shape, or an Idempotency-Key reused for another request"),
        (status = 429, description = "Too many registrations from this address, or of this handle"),
        (status = 503, description = "Password hashing saturated"),
    )
)]
pub async fn register(
    State(state): State<ApiState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    state
        .limiter
        .check(
            &format!("register:ip:{address}"),
            state.config.register_per_address,
        )
        .map_err(|wait| ApiError::too_many_requests(wait.as_secs() + 1))?;
    let handle =
        Handle::parse(&request.handle).map_err(|e| ApiError::bad_request("invalid_handle", e))?;
    state
        .limiter
        .check(
            &format!("register:handle:{handle}"),
            state.config.register_per_handle,
        )
        .map_err(|wait| ApiError::too_many_requests(wait.as_secs() + 1))?;
    let display_name = DisplayName::parse(&request.display_name)
        .map_err(|e| ApiError::bad_request("invalid_display_name", e))?;
    let about = About::parse(request.about.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_about", e))?;
    let phone = request
        .phone
        .as_deref()
        .map(PhoneNumber::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_phone", e))?;
    let password = Password::parse(&request.password)
        .map_err(|e| ApiError::bad_request("invalid_password", e))?;
    // The password is left out of the fingerprint: the fingerprint is stored in the log.
    let idempotency = super::idempotency_key(&headers, "POST /v1/users", || {
        hex_digest(
            format!(
                "{}\n{}\n{}\n{}",
                handle,
                display_name.as_str(),
                about.as_str(),
                phone.as_ref().map_or("", |p| p.as_str())
            )
            .as_bytes(),
        )
    })?;
    let account = NewAccount {
        handle: handle.clone(),
        display_name: display_name.clone(),
        about: about.clone(),
        phone,
        password,
    };
    let registered = state
        .accounts
        .register(account, idempotency, metadata(None))
        .await?;
    let body = RegisteredResponse {
        user_id: registered.user_id,
        handle: handle.to_string(),
        display_name: display_name.as_str().to_owned(),
        about: about.as_str().to_owned(),
        sequence: registered.last_sequence,
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/users/{}", registered.user_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if registered.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct PrivacySettings {
    pub last_seen: Audience,
    pub profile_photo: Audience,
    pub about: Audience,
    pub read_receipts: bool,
}

/// The caller's own account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "handle": "alice", "display_name": "Alice", "about": "Hi!", "phone": "+4930123456", "created_at": "2026-11-26T12:00:00Z", "privacy": {"last_seen": "everyone", "profile_photo": "everyone", "about": "contacts", "read_receipts": true}}))]
pub struct OwnProfile {
    pub user_id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub about: String,
    pub phone: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub privacy: PrivacySettings,
    /// The profile photo, a media item: `/v1/media/{id}/content` and `/thumbnail`.
    pub photo_media_id: Option<Uuid>,
}

/// The caller's own profile and settings.
///
/// Right after signing up, with no `min_sequence`, the answer waits (briefly) for the
/// directory to get to the registration rather than say "not found".
#[utoipa::path(
    get, path = "/v1/users/me", tag = "accounts", security(("bearer" = [])),
    params(Consistency),
    responses(
        (status = 200, body = OwnProfile),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "Account deleted"),
    )
)]
pub async fn me(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<OwnProfile>, ApiError> {
    wait_for(&state, DIRECTORY.0, DIRECTORY.1, consistency.min_sequence).await?;
    let mut account = users::account(&state.pool, caller.user_id)
        .await
        .map_err(ApiError::internal)?;
    if account.is_none() {
        // The caller's session says they exist: the directory has not got to their
        // registration yet (a client that signed up and asked at once, with no
        // consistency token). It is waited for up to the log's end, once.
        let end = state
            .log
            .last_sequence()
            .await
            .map_err(ApiError::internal)?;
        wait_for(&state, DIRECTORY.0, DIRECTORY.1, Some(end)).await?;
        account = users::account(&state.pool, caller.user_id)
            .await
            .map_err(ApiError::internal)?;
    }
    let account = account.ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(OwnProfile {
        user_id: account.user_id,
        handle: account.handle,
        display_name: account.display_name,
        about: account.about,
        phone: account.phone,
        created_at: account.created_at,
        privacy: PrivacySettings {
            last_seen: audience(&account.last_seen_visibility),
            profile_photo: audience(&account.photo_visibility),
            about: audience(&account.about_visibility),
            read_receipts: account.read_receipts,
        },
        photo_media_id: account.photo_media_id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"media_id": "0190f3a1-7b2c-4d3e-8f40-5a6b7c8d9e0f"}))]
pub struct PhotoRequest {
    /// An image the caller uploaded (`POST /v1/media?kind=image`).
    pub media_id: Uuid,
}

/// Sets the caller's profile photo: an image they uploaded. Others see it as their
/// `profile_photo` privacy setting allows, and may then download it.
#[utoipa::path(
    put, path = "/v1/users/me/photo", tag = "accounts", security(("bearer" = [])),
    request_body = PhotoRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "Account deleted"),
        (status = 422, description = "Not an image the caller uploaded, or a body of the wrong shape"),
    )
)]
pub async fn set_photo(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<PhotoRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let image = state
        .media
        .attach(request.media_id, caller.user_id, None)
        .await?;
    if image.is_none_or(|item| item.kind != "image") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_photo",
            "a profile photo is an image the caller uploaded",
        ));
    }
    let sequence = state
        .accounts
        .change_photo(
            caller.user_id,
            Some(request.media_id),
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

/// Removes the caller's profile photo.
#[utoipa::path(
    delete, path = "/v1/users/me/photo", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "Account deleted"),
    )
)]
pub async fn remove_photo(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .change_photo(caller.user_id, None, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"display_name": "Alice L.", "about": "At work"}))]
pub struct ProfilePatch {
    /// 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    /// Up to 140 characters; empty for none.
    #[schema(max_length = 140)]
    pub about: Option<String>,
}

/// Changes the caller's display name or about text.
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "accounts", security(("bearer" = [])),
    request_body = ProfilePatch,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 400, description = "Invalid field"),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "Account deleted"),
        (status = 422, description = "Body of the wrong shape"),
    )
)]
pub async fn change_profile(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let change = ChangeProfile {
        display_name: patch
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_display_name", e))?,
        about: patch
            .about
            .as_deref()
            .map(About::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request("invalid_about", e))?,
    };
    let sequence = state
        .accounts
        .change_profile(caller.user_id, change, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

/// Checking a password (to change it, or to delete the account) costs an argon2 hash,
/// like a login, and would let a stolen access token guess the password: it takes its
/// turn under the login limits, per account and per address.
fn check_password_attempt(
    state: &ApiState,
    address: std::net::IpAddr,
    user: Uuid,
) -> Result<(), ApiError> {
    let retry = |wait: std::time::Duration| ApiError::too_many_requests(wait.as_secs() + 1);
    state
        .limiter
        .check(
            &format!("password:ip:{address}"),
            state.config.login_per_address,
        )
        .map_err(retry)?;
    state
        .limiter
        .check(
            &format!("password:user:{user}"),
            state.config.login_per_handle,
        )
        .map_err(retry)
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"old_password": "correct horse battery", "new_password": "even more correct horse"}))]
pub struct PasswordChange {
    /// The current password; any text but 8 to 128 characters is a wrong one.
    #[schema(min_length = 8, max_length = 128)]
    pub old_password: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// Changes the password. Every other session of the account ends.
#[utoipa::path(
    put, path = "/v1/users/me/password", tag = "accounts", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 400, description = "New password invalid"),
        (status = 401, description = "Not signed in, or the old password is wrong"),
        (status = 422, description = "Body of the wrong shape"),
        (status = 429, description = "Too many attempts"),
        (status = 503, description = "Password hashing saturated"),
    )
)]
pub async fn change_password(
    State(state): State<ApiState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    check_password_attempt(&state, address, caller.user_id)?;
    let new = Password::parse(&change.new_password)
        .map_err(|e| ApiError::bad_request("invalid_password", e))?;
    let old = Password::parse(&change.old_password)
        .map_err(|_| ApiError::unauthorized("invalid_credentials", "wrong handle or password"))?;
    let sequence = state
        .accounts
        .change_password(
            caller.user_id,
            caller.session_id,
            &old,
            &new,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"about": "contacts", "read_receipts": false}))]
pub struct PrivacyPatch {
    pub last_seen: Option<Audience>,
    pub profile_photo: Option<Audience>,
    pub about: Option<Audience>,
    pub read_receipts: Option<bool>,
}

/// Changes who may see the caller's last seen, photo and about, and whether read
/// receipts are sent. `contacts` shows to nobody else until contacts exist.
#[utoipa::path(
    put, path = "/v1/users/me/privacy", tag = "accounts", security(("bearer" = [])),
    request_body = PrivacyPatch,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
        (status = 422, description = "Body of the wrong shape"),
    )
)]
pub async fn change_privacy(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(patch): ApiJson<PrivacyPatch>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let change = ChangePrivacy {
        last_seen: patch.last_seen.map(Into::into),
        profile_photo: patch.profile_photo.map(Into::into),
        about: patch.about.map(Into::into),
        read_receipts: patch.read_receipts,
    };
    let sequence = state
        .accounts
        .change_privacy(caller.user_id, change, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"password": "correct horse battery"}))]
pub struct DeleteAccountRequest {
    /// The current password; any text but 8 to 128 characters is a wrong one.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Deletes the caller's account. Its events stay in the log; the read models drop the
/// profile; the handle is free again after a cool-down.
#[utoipa::path(
    delete, path = "/v1/users/me", tag = "accounts", security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in, or the password is wrong"),
        (status = 422, description = "Body of the wrong shape"),
        (status = 429, description = "Too many attempts"),
        (status = 503, description = "Password hashing saturated"),
    )
)]
pub async fn delete_account(
    State(state): State<ApiState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<DeleteAccountRequest>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    check_password_attempt(&state, address, caller.user_id)?;
    let password = Password::parse(&request.password)
        .map_err(|_| ApiError::unauthorized("invalid_credentials", "wrong handle or password"))?;
    let sequence = state
        .accounts
        .delete(caller.user_id, &password, metadata(Some(caller.user_id)))
        .await?;
    Ok(axum::Json(SequenceResponse { sequence }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedUser {
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub blocked_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "blocked_at": "2026-11-26T12:00:00Z"}]}))]
pub struct BlockList {
    pub items: Vec<BlockedUser>,
}

/// The users the caller has blocked.
#[utoipa::path(
    get, path = "/v1/users/me/blocks", tag = "accounts", security(("bearer" = [])),
    params(Consistency),
    responses(
        (status = 200, body = BlockList),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn blocks(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<BlockList>, ApiError> {
    wait_for(&state, DIRECTORY.0, DIRECTORY.1, consistency.min_sequence).await?;
    let items = users::blocks(&state.pool, caller.user_id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|block| BlockedUser {
            user_id: block.user_id,
            blocked_at: block.blocked_at,
        })
        .collect();
    Ok(axum::Json(BlockList { items }))
}

/// Blocks a user: they can no longer start a chat with, or message, the caller.
#[utoipa::path(
    put, path = "/v1/users/me/blocks/{user_id}", tag = "accounts", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user to block")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such user"),
        (status = 422, description = "Blocking oneself, or too many blocks"),
    )
)]
pub async fn block(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .block(caller.user_id, user_id, metadata(Some(caller.user_id)))
        .await?;
    // Sends are decided on the direct chat: it learns of the block too. Should this
    // fail, the request fails, and its retry (a no-op on the account) completes it.
    let chat = state
        .chats
        .set_direct_blocked(
            caller.user_id,
            user_id,
            true,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse {
        sequence: chat.unwrap_or(sequence).max(sequence),
    }))
}

/// Unblocks a user.
#[utoipa::path(
    delete, path = "/v1/users/me/blocks/{user_id}", tag = "accounts", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user to unblock")),
    responses(
        (status = 200, body = SequenceResponse),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn unblock(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<axum::Json<SequenceResponse>, ApiError> {
    let sequence = state
        .accounts
        .unblock(caller.user_id, user_id, metadata(Some(caller.user_id)))
        .await?;
    let chat = state
        .chats
        .set_direct_blocked(
            caller.user_id,
            user_id,
            false,
            metadata(Some(caller.user_id)),
        )
        .await?;
    Ok(axum::Json(SequenceResponse {
        sequence: chat.unwrap_or(sequence).max(sequence),
    }))
}

/// Another user as the caller may see them: `about` and the photo are left out where
/// their privacy settings or a block say so.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "handle": "alice", "display_name": "Alice", "about": "Hi!"}))]
pub struct PublicProfile {
    pub user_id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub about: Option<String>,
    /// The profile photo, a media item: `/v1/media/{id}/content` and `/thumbnail`.
    pub photo_media_id: Option<Uuid>,
}

fn public_profile(profile: users::Profile) -> PublicProfile {
    PublicProfile {
        user_id: profile.user_id,
        handle: profile.handle,
        display_name: profile.display_name,
        about: profile.about,
        photo_media_id: profile.photo_media_id,
    }
}

/// One user, by id.
#[utoipa::path(
    get, path = "/v1/users/{user_id}", tag = "directory", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user"), Consistency),
    responses(
        (status = 200, body = PublicProfile),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such user"),
    )
)]
pub async fn user(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<PublicProfile>, ApiError> {
    wait_for(&state, DIRECTORY.0, DIRECTORY.1, consistency.min_sequence).await?;
    let profile = users::profile(&state.pool, caller.user_id, user_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(public_profile(profile)))
}

/// Whether a user is online, and when their last connection closed: as their privacy
/// setting lets the caller see it (`contacts`: people they share a direct chat with).
/// A user who hides it, or blocks the caller or is blocked by them, is answered with
/// 404, as one who does not exist.
#[utoipa::path(
    get, path = "/v1/users/{user_id}/presence", tag = "directory", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, body = PresenceView),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such user, or hidden from the caller"),
    )
)]
pub async fn presence(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<axum::Json<PresenceView>, ApiError> {
    let last_seen_at = users::visible_last_seen(&state.pool, caller.user_id, user_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let online = state
        .presence
        .is_online(user_id)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(PresenceView {
        user_id,
        online,
        last_seen_at,
    }))
}

/// One user, by handle (case-insensitive).
#[utoipa::path(
    get, path = "/v1/users/by-handle/{handle}", tag = "directory", security(("bearer" = [])),
    params(("handle" = String, Path, description = "The handle"), Consistency),
    responses(
        (status = 200, body = PublicProfile),
        (status = 401, description = "Not signed in"),
        (status = 404, description = "No such user"),
    )
)]
pub async fn by_handle(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(handle): ApiPath<String>,
    ApiQuery(consistency): ApiQuery<Consistency>,
) -> Result<axum::Json<PublicProfile>, ApiError> {
    let handle = Handle::parse(&handle).map_err(|_| ApiError::not_found())?;
    wait_for(&state, DIRECTORY.0, DIRECTORY.1, consistency.min_sequence).await?;
    let profile = users::profile_by_handle(&state.pool, caller.user_id, handle.as_str())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(public_profile(profile)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A prefix of a handle or a display name (1 to 64 characters).
    #[param(min_length = 1, max_length = 64)]
    pub q: String,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "handle": "alice", "display_name": "Alice", "about": null}], "next_cursor": "YWxpY2U"}))]
pub struct UserPage {
    pub items: Vec<PublicProfile>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Searches users by handle or display-name prefix, in handle order.
#[utoipa::path(
    get, path = "/v1/users", tag = "directory", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 400, description = "Invalid query or cursor"),
        (status = 401, description = "Not signed in"),
    )
)]
pub async fn search(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let prefix = query.q.trim().to_lowercase();
    super::check_text_query(&prefix, 64)?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 100"));
    }
    let after = match &query.cursor {
        None => String::new(),
        Some(cursor) => URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "not a cursor from this API"))?,
    };
    let mut items: Vec<PublicProfile> =
        users::profiles_by_prefix(&state.pool, caller.user_id, &prefix, &after, limit + 1)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(public_profile)
            .collect();
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| URL_SAFE_NO_PAD.encode(&last.handle))
    } else {
        None
    };
    Ok(axum::Json(UserPage { items, next_cursor }))
}

/// A user's presence as someone may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0190f3a1-7b2c-7d3e-8f40-5a6b7c8d9e0f", "online": false, "last_seen_at": "2026-11-26T12:00:00Z"}))]
pub struct PresenceView {
    pub user_id: Uuid,
    pub online: bool,
    /// When their last connection closed; null if never, or not yet recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
}
