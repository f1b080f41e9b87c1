//! Request bodies read by hand: the exact bytes (signatures cover them) and
//! optional JSON bodies, which must still be valid when present.
use crate::ApiError;
use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;

/// Reads the whole body, refusing more than [`crate::MAX_BODY_BYTES`].
pub(crate) async fn read_limited(
    payload: impl Stream<Item = Result<web::Bytes, PayloadError>> + Unpin,
) -> Result<web::Bytes, ApiError> {
    read_limited_to(payload, crate::MAX_BODY_BYTES).await
}

/// Reads the whole body, refusing more than `limit` bytes (batch ingest
/// takes more than one event's worth).
pub(crate) async fn read_limited_to(
    mut payload: impl Stream<Item = Result<web::Bytes, PayloadError>> + Unpin,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A JSON body the caller may leave out. `Option<web::Json<T>>` would also
/// turn a malformed body into `None`, so that `POST .../redeliver` with a
/// broken `{subscription_id}` would quietly redeliver to every
/// subscription; here an empty body or `null` is `None` and anything else
/// must parse.
pub(crate) struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json_type = declares_json(req);
        let payload = payload.take();
        Box::pin(async move {
            let raw = read_limited(payload).await?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self(None));
            }
            if !json_type {
                return Err(ApiError::UnsupportedMediaType);
            }
            // `null` is no body too.
            parse_json(&raw).map(Self)
        })
    }
}

/// A required JSON body, like `web::Json`, that also refuses integers
/// beyond 64 bits instead of letting the parser round them (see
/// [`crate::input::integers_fit`]).
pub(crate) struct StrictJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for StrictJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json_type = declares_json(req);
        let payload = payload.take();
        Box::pin(async move {
            if !json_type {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_json(&read_limited(payload).await?).map(Self)
        })
    }
}

/// Whether the request says its body is JSON (`application/json`, `+json`).
pub(crate) fn declares_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// Parses a JSON body; errors map as for every JSON body, and an integer
/// beyond 64 bits is a validation error naming its path.
pub(crate) fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let value = serde_json::from_slice(raw).map_err(JsonPayloadError::Deserialize)?;
    crate::input::integers_fit(raw).map_err(|e| ApiError::Validation(vec![e]))?;
    Ok(value)
}
