//! Each tenant's backlog: the events it had accepted that the relay has not
//! published yet. Ingest's backlog guard reads it to refuse a tenant whose
//! backlog is over the bound, before that tenant's import delays everyone.
use crate::domain::TenantId;
use crate::entity::outbox;
use crate::{Store, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

impl Store {
    /// Every tenant with at least `bound` outbox rows still to publish
    /// (neither published nor quarantined), with how many it has.
    ///
    /// One grouped query across all tenants, so it runs on the hub's own
    /// connection like the relay's claim: on PostgreSQL that role owns the
    /// tables and is not under the row-level security policies, where a
    /// tenant scope would count one tenant only. The partial index of
    /// m0012 holds exactly the pending rows by tenant, so the count reads
    /// no more than the backlog itself.
    pub async fn tenants_with_backlog(&self, bound: u64) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let count = Expr::col(outbox::Column::Id).count();
        let rows: Vec<(String, i64)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::TenantId)
            .column_as(count.clone(), "pending")
            .filter(outbox::Column::PublishedAt.is_null())
            .filter(outbox::Column::QuarantinedAt.is_null())
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
