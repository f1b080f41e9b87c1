//! Claims that take tenants in turn: the relay's outbox rows and the
//! retry poller's due deliveries.
//!
//! Oldest first would hand a whole claim to the tenant with the biggest
//! backlog: an import of 60,000 events would make every other tenant's
//! next event wait for all of it. Each claimable row is instead numbered
//! within its tenant (`ROW_NUMBER() OVER (PARTITION BY tenant_id …)`), and
//! the claim takes every tenant's first row, then every tenant's second,
//! and so on up to the limit. A tenant with one row waiting is in the next
//! claim whatever waits beside it; a tenant alone gets the whole claim.
//!
//! The numbering reads every claimable row, so its cost follows the
//! backlog; ingest's backlog bound keeps the outbox's short, and due
//! retries are claimed at most a few times a second.
use sea_orm::sea_query::{
    Alias, Condition, Expr, IntoColumnRef, LockBehavior, LockType, Order, Query, SelectStatement, WindowStatement,
};
use sea_orm::Iden;

/// The ids of at most `limit` rows of `table` matching `claimable`, taken
/// from each tenant in turn, each tenant's oldest (by `oldest_first`)
/// first, and at most `per_tenant` of any one tenant when given; locked
/// with `SKIP LOCKED` on PostgreSQL, where `claimable` is checked again on
/// the locked row so that two relays or pollers never claim one row twice.
pub(crate) fn fair_claim<T, C>(
    table: T,
    id: C,
    tenant: C,
    oldest_first: C,
    claimable: Condition,
    limit: u64,
    per_tenant: Option<u64>,
) -> SelectStatement
where
    T: Iden + Copy + 'static,
    C: Iden + Copy + IntoColumnRef + 'static,
{
    let (turn, ranked) = (Alias::new("turn"), Alias::new("ranked"));
    let numbered = Query::select()
        .column(id)
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(tenant)
                .order_by(oldest_first, Order::Asc)
                .order_by(id, Order::Asc)
                .to_owned(),
            turn.clone(),
        )
        .from(table)
        .cond_where(claimable.clone())
        .to_owned();
    // Within a turn, tenants in random order rather than oldest first: a
    // claim of a few rows (the retry poller claims as many as places just
    // freed, often one) would otherwise go to the tenant with the most
    // overdue backlog again and again, since nothing remembers that it was
    // served by the claim before. Drawn at random, each tenant with rows
    // waiting has the same chance at each place.
    let mut in_turn = Query::select();
    in_turn.column(id).from_subquery(numbered, ranked);
    if let Some(most) = per_tenant {
        in_turn.and_where(Expr::col(turn.clone()).lte(most));
    }
    let in_turn =
        in_turn.order_by(turn, Order::Asc).order_by_expr(Expr::cust("RANDOM()"), Order::Asc).limit(limit).to_owned();
    // Window functions and row locks cannot share a query: lock in an
    // outer one, which also re-checks the rows another claim just took.
    Query::select()
        .column(id)
        .from(table)
        .and_where(Expr::col(id).in_subquery(in_turn))
        .cond_where(claimable)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned()
}
