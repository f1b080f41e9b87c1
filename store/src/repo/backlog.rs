//! Each tenant's backlog: the events it had accepted that the relay has not
//! published yet. Ingest's backlog guard reads it to refuse a tenant whose
//! backlog is over the bound, before that tenant's import delays everyone.
use crate::domain::TenantId;
use crate::entity::outbox;
use crate::{Store, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

/// The outbox rows still to publish: neither published nor quarantined.
fn pending() -> Select<outbox::Entity> {
    outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null()).filter(outbox::Column::QuarantinedAt.is_null())
}

impl Store {
    /// Every tenant with at least `bound` outbox rows still to publish,
    /// with how many it has.
    ///
    /// One grouped query across all tenants, so it runs on the hub's own
    /// connection like the relay's claim: on PostgreSQL that role owns the
    /// tables and is not under the row-level security policies, where a
    /// tenant scope would count one tenant only.
    ///
    /// The count reads every pending row (published rows are deleted, so
    /// the table is about the backlog, and PostgreSQL scans it rather than
    /// any index: 50–60 ms for 75,000 rows on the shared 2-core test box).
    /// Most of the time no tenant is anywhere near the bound, so it is
    /// skipped when the span of pending ids, two lookups at the ends of the
    /// pending index, is smaller than the bound: then no tenant can have
    /// that many.
    pub async fn tenants_with_backlog(&self, bound: u64) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let end = |newest: bool| {
            let ids = pending().select_only().column(outbox::Column::Id);
            let ids = if newest { ids.order_by_desc(outbox::Column::Id) } else { ids.order_by_asc(outbox::Column::Id) };
            ids.into_tuple::<i64>().one(self.db())
        };
        let (Some(oldest), Some(newest)) = (end(false).await?, end(true).await?) else { return Ok(Vec::new()) };
        if u64::try_from(newest - oldest + 1).unwrap_or(0) < bound {
            return Ok(Vec::new());
        }
        let count = Expr::col(outbox::Column::Id).count();
        let rows: Vec<(String, i64)> = pending()
            .select_only()
            .column(outbox::Column::TenantId)
            .column_as(count.clone(), "pending")
            .group_by(outbox::Column::TenantId)
            .having(count.gte(i64::try_from(bound).unwrap_or(i64::MAX)))
            .into_tuple()
            .all(self.db())
            .await?;
        // A tenant id that does not parse names no tenant that could post;
        // the relay quarantines such rows when it reaches them.
        Ok(rows
            .into_iter()
            .filter_map(|(tenant, pending)| Some((tenant.parse().ok()?, u64::try_from(pending).unwrap_or(0))))
            .collect())
    }
}
