//! Cursor pagination shared by every list: newest first, keyed on the id.
//!
//! Ids are UUIDv7, so ordering by id is ordering by creation time, and a
//! cursor ("everything older than this id") stays correct while new rows are
//! inserted at the head.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

/// An opaque position in a list (base64url of the last id seen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(String);

/// A cursor that was not produced by this API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cursor is not one this API returned")]
pub struct InvalidCursor;

impl Cursor {
    /// Decodes a cursor sent by a client.
    pub fn decode(raw: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let id = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let well_formed = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if well_formed {
            Ok(Self(id))
        } else {
            Err(InvalidCursor)
        }
    }

    /// The form sent to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

/// What a client asked for: how many, and after which cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    limit: u64,
    after: Option<Cursor>,
}

impl PageRequest {
    /// Items per page when the client does not say.
    pub const DEFAULT_LIMIT: u64 = 50;
    /// The most items a page may hold.
    pub const MAX_LIMIT: u64 = 250;

    /// A request; `limit` must already be within 1..=MAX_LIMIT.
    pub fn new(limit: Option<u64>, after: Option<Cursor>) -> Option<Self> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        (1..=Self::MAX_LIMIT).contains(&limit).then_some(Self { limit, after })
    }

    /// The first page, default size.
    pub fn first() -> Self {
        Self { limit: Self::DEFAULT_LIMIT, after: None }
    }
}

/// One page of results and the cursor to the next, if there is one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass back to get the next (older) page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Converts every item, keeping the cursor.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page { items: self.items.into_iter().map(f).collect::<Result<_, _>>()?, next_cursor: self.next_cursor })
    }
}

/// Runs `select` as a page ordered by `id_col` descending.
pub(crate) async fn paginate<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    id_col: C,
    id_of: impl Fn(&E::Model) -> &str,
    req: &PageRequest,
) -> Result<Page<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let mut select = select.order_by_desc(id_col);
    if let Some(after) = &req.after {
        select = select.filter(id_col.lt(after.0.clone()));
    }
    // One extra row tells whether a next page exists without a COUNT.
    let mut items = select.limit(req.limit + 1).all(db).await?;
    let has_more = items.len() as u64 > req.limit;
    items.truncate(req.limit as usize);
    let next_cursor = has_more.then(|| items.last().map(|m| Cursor(id_of(m).to_owned()))).flatten();
    Ok(Page { items, next_cursor })
}
