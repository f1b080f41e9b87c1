//! `?limit=&cursor=` parsing and the `{data, pagination}` envelope.
use crate::ApiError;
use hookhub_store::{Cursor, Page, PageRequest};
use serde::{Deserialize, Serialize};

/// The query parameters of every list endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 250 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    limit: Option<String>,
    /// A page's `next_cursor` (older items) or `prev_cursor` (newer items); opaque.
    cursor: Option<String>,
}

impl PageQuery {
    /// Validates into a store page request.
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        let bad_limit = || ApiError::BadRequest {
            code: "invalid_limit",
            message: format!("limit must be an integer from 1 to {}", PageRequest::MAX_LIMIT),
        };
        let limit = match &self.limit {
            Some(raw) => Some(raw.parse::<u64>().map_err(|_| bad_limit())?),
            None => None,
        };
        let cursor = match self.cursor.as_deref() {
            Some(raw) if !raw.is_empty() => Some(
                Cursor::decode(raw)
                    .map_err(|e| ApiError::BadRequest { code: "invalid_cursor", message: e.to_string() })?,
            ),
            _ => None,
        };
        PageRequest::new(limit, cursor).ok_or_else(bad_limit)
    }
}

/// `{"data": [...], "pagination": {"next_cursor": ..., "prev_cursor": ...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListBody<T> {
    /// This page's items.
    data: Vec<T>,
    /// Where the neighbouring pages start.
    pagination: PaginationBody,
}

/// Where the neighbouring pages start.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PaginationBody {
    /// Pass as `?cursor=` for the next page (older items); `null` on the last page.
    next_cursor: Option<String>,
    /// Pass as `?cursor=` for the previous page (newer items); `null` on the first page.
    prev_cursor: Option<String>,
}

impl<T> ListBody<T> {
    /// A complete list in the same envelope (short catalogues need no cursor).
    pub fn all(data: Vec<T>) -> Self {
        Self { data, pagination: PaginationBody { next_cursor: None, prev_cursor: None } }
    }

    /// Wraps a page, converting each item to its API form.
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        Self {
            data: page.items.into_iter().map(f).collect(),
            pagination: PaginationBody {
                next_cursor: page.next_cursor.map(|c| c.encode()),
                prev_cursor: page.prev_cursor.map(|c| c.encode()),
            },
        }
    }
}
