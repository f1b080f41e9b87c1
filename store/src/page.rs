//! Cursor pagination shared by every list: newest first, keyed on the id.
//!
//! Ids are UUIDv7, so ordering by id is ordering by creation time, and a
//! cursor ("everything older than this id", or "newer" to page back) stays
//! correct while new rows are inserted at the head.
//!
//! There is no `total`: a count is a scan of every matching row on
//! PostgreSQL, paid on every page, for a figure stale by the next insert.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

/// An opaque position in a list: base64url of the id it starts from,
/// marked with `<` when it pages back towards newer items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    id: String,
    backward: bool,
}

/// A cursor that was not produced by this API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cursor is not one this API returned")]
pub struct InvalidCursor;

impl Cursor {
    /// Decodes a cursor sent by a client.
    pub fn decode(raw: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let raw = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let (id, backward) = match raw.strip_prefix('<') {
            Some(id) => (id, true),
            None => (raw.as_str(), false),
        };
        let well_formed =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if well_formed {
            Ok(Self { id: id.to_owned(), backward })
        } else {
            Err(InvalidCursor)
        }
    }

    /// The form sent to clients.
    pub fn encode(&self) -> String {
        let marker = if self.backward { "<" } else { "" };
        URL_SAFE_NO_PAD.encode(format!("{marker}{}", self.id))
    }

    fn older_than(id: &str) -> Self {
        Self { id: id.to_owned(), backward: false }
    }

    fn newer_than(id: &str) -> Self {
        Self { id: id.to_owned(), backward: true }
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
    /// Pass back to get the previous (newer) page.
    pub prev_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Converts every item, keeping the cursor.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next_cursor: self.next_cursor,
            prev_cursor: self.prev_cursor,
        })
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
    let backward = req.after.as_ref().is_some_and(|c| c.backward);
    let select = match (&req.after, backward) {
        (Some(c), true) => select.filter(id_col.gt(c.id.clone())).order_by_asc(id_col),
        (Some(c), false) => select.filter(id_col.lt(c.id.clone())).order_by_desc(id_col),
        (None, _) => select.order_by_desc(id_col),
    };
    // One extra row tells whether there is more in the direction read,
    // without a COUNT; the cursor itself proves there is more the other way.
    let mut items = select.limit(req.limit + 1).all(db).await?;
    let more = items.len() as u64 > req.limit;
    items.truncate(req.limit as usize);
    if backward {
        items.reverse();
    }
    let (has_newer, has_older) = if backward { (more, true) } else { (req.after.is_some(), more) };
    let edge = |item: Option<&E::Model>| item.map(|m| id_of(m).to_owned());
    let prev_cursor = edge(items.first()).filter(|_| has_newer).map(|id| Cursor::newer_than(&id));
    let next_cursor = edge(items.last()).filter(|_| has_older).map(|id| Cursor::older_than(&id));
    Ok(Page { items, next_cursor, prev_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_both_directions() {
        for cursor in [Cursor::older_than("sub_0192abc"), Cursor::newer_than("sub_0192abc")] {
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }
        // A cursor handed out before paging back existed still means "older than".
        let plain = URL_SAFE_NO_PAD.encode("evt_0192abc");
        assert_eq!(Cursor::decode(&plain), Ok(Cursor::older_than("evt_0192abc")));
        for forged in ["<", "<a b", "<<evt_1", "evt_1;drop"] {
            assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(forged)), Err(InvalidCursor), "{forged}");
        }
    }
}
