//! Image uploads over REST on the API port:
//!
//! - `POST /v1/studio/<broadcast>/images`: the raw image as the body, `Content-Type:
//!   image/png` or `image/jpeg`, `Authorization: Bearer <access token>` of the
//!   broadcast's host. `201 {"id", "mime", "width", "height", "size"}` (the id is the hex
//!   SHA-256 of the bytes; the same image again answers `200` with the same id). Refused
//!   with a JSON `{"error": …, "code": …}`: `401` no or bad token, `403` not the host (a
//!   participant token included), `404` no such broadcast, `413` over 2 MiB, `415` not a
//!   PNG or JPEG (by Content-Type or by content), `422` corrupt header or over
//!   4096×4096, `409` too many images, `429` rate limited.
//! - `GET /v1/studio/<broadcast>/images/<id>`: the image (public: ids are content
//!   hashes, unguessable without the image; `Cache-Control: immutable`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use weir_auth::{Denied, Permission, check_channel};
use weir_store::studio::image::{ImageError, MAX_IMAGE_BYTES};
use weir_store::{StoreError, UploadError};

use crate::error::code;
use crate::state::ApiState;

use super::token::{Kind, looks_like};

/// The studio's REST routes.
pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/v1/studio/{broadcast}/images", post(upload))
        .route("/v1/studio/{broadcast}/images/{id}", get(download))
        .with_state(Arc::new(state))
}

fn err(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, axum::Json(json!({ "error": msg, "code": code }))).into_response()
}

fn store_err(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(w) => err(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            &format!("{w} not found"),
        ),
        StoreError::Conflict(m) => err(StatusCode::CONFLICT, code::CONFLICT, &m),
        StoreError::Invalid(m) => err(StatusCode::BAD_REQUEST, code::BAD_USER_INPUT, &m),
        other => {
            tracing::error!(error = %other, "studio image storage error");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "internal error",
            )
        }
    }
}

fn image_err(e: &ImageError) -> Response {
    let status = match e {
        ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ImageError::NotAnImage | ImageError::TypeMismatch { .. } => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        ImageError::Empty => StatusCode::BAD_REQUEST,
        ImageError::BadHeader(_) | ImageError::BadDimensions { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    err(status, code::BAD_USER_INPUT, &e.to_string())
}

async fn upload(
    State(state): State<Arc<ApiState>>,
    Path(broadcast): Path<String>,
    req: Request,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "local".to_string(), |c| c.0.ip().to_string());
    if !state.inner.ip_limiter.check(&ip) {
        return err(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many requests, slow down",
        );
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    if token.is_empty() {
        return err(
            StatusCode::UNAUTHORIZED,
            code::UNAUTHENTICATED,
            "Authorization: Bearer <access token> of the host is required",
        );
    }
    if looks_like(Kind::Participant, &token) {
        return err(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "only the host can upload images: a guest's participant token cannot",
        );
    }
    let who = match crate::http::authenticate(&state, &token).await {
        Ok(w) => w,
        Err(e) => return err(StatusCode::UNAUTHORIZED, e.code, &e.message),
    };
    if !state.inner.user_limiter.check(&who.user_id) {
        return err(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many requests, slow down",
        );
    }
    let b = match state.store().get_studio_broadcast(&broadcast).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return err(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "studio broadcast not found",
            );
        }
        Err(e) => return store_err(e),
    };
    let ch = match state.store().get_channel(&b.channel_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return err(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "studio broadcast not found",
            );
        }
        Err(e) => return store_err(e),
    };
    match check_channel(&who, &ch, Permission::ManageStudio) {
        Ok(_) => {}
        Err(Denied::NotFound) => {
            return err(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "studio broadcast not found",
            );
        }
        Err(Denied::Forbidden) => {
            return err(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "only the channel's owner (or an admin) uploads studio images",
            );
        }
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(kind, "image/png" | "image/jpeg" | "image/jpg") {
        return err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            &format!("Content-Type must be image/png or image/jpeg, not {kind:?}"),
        );
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > MAX_IMAGE_BYTES) {
        return image_err(&ImageError::TooLarge(n));
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_IMAGE_BYTES).await else {
        return image_err(&ImageError::TooLarge(MAX_IMAGE_BYTES + 1));
    };
    let existed = matches!(
        state
            .store()
            .get_studio_image(&ch.id, &sha_hex(&body))
            .await,
        Ok(Some(_))
    );
    match state.store().put_studio_image(&ch.id, &body, kind).await {
        Ok(img) => {
            tracing::info!(broadcast_id = %b.id, image_id = %img.id, bytes = img.size, "studio image uploaded");
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (
                status,
                axum::Json(json!({
                    "id": img.id,
                    "mime": img.mime,
                    "width": img.width,
                    "height": img.height,
                    "size": img.size,
                })),
            )
                .into_response()
        }
        Err(UploadError::Image(e)) => image_err(&e),
        Err(UploadError::Store(e)) => store_err(e),
    }
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn download(
    State(state): State<Arc<ApiState>>,
    Path((broadcast, id)): Path<(String, String)>,
) -> Response {
    let b = match state.store().get_studio_broadcast(&broadcast).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return err(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                "studio broadcast not found",
            );
        }
        Err(e) => return store_err(e),
    };
    let meta = match state.store().get_studio_image(&b.channel_id, &id).await {
        Ok(Some(m)) => m,
        Ok(None) => return err(StatusCode::NOT_FOUND, code::NOT_FOUND, "image not found"),
        Err(e) => return store_err(e),
    };
    match state.store().studio_image_data(&b.channel_id, &id).await {
        Ok(Some(data)) => {
            let mut r = data.into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&meta.mime) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            r
        }
        Ok(None) => err(StatusCode::NOT_FOUND, code::NOT_FOUND, "image not found"),
        Err(e) => store_err(e),
    }
}
