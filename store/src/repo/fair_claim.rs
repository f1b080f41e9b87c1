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
//! backlog; ingest's backlog bound keeps the outbox's short. Due retries
//! have no such bound (a storm's 200,000 made each claim take seconds), so
//! their claim numbers only a window of the oldest due rows (see
//! [`ClaimSize::window`]); tenants whose retries are due behind that window
//! are claimed by name (`Store::claim_due_of`).
use sea_orm::sea_query::{
    Alias, Condition, Expr, IntoColumnRef, LockBehavior, LockType, Order, Query, SelectStatement, UnionType,
    WindowStatement,
};
use sea_orm::Iden;

/// How many rows a fair claim takes, and of how many it chooses.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClaimSize {
    /// Most rows taken.
    pub limit: u64,
    /// Most rows of one tenant taken, when given.
    pub per_tenant: Option<u64>,
    /// Only the oldest this many claimable rows are numbered, when given:
    /// the claim's cost stays bounded however many rows are claimable, and
    /// tenants are taken in turn among those.
    pub window: Option<u64>,
}

/// The ids of at most `size.limit` rows of `table` matching `claimable`,
/// taken from each tenant in turn, each tenant's oldest (by `oldest_first`)
/// first (see [`ClaimSize`] for the other bounds); locked with `SKIP
/// LOCKED` on PostgreSQL, where `claimable` is checked again on the locked
/// row so that two relays or pollers never claim one row twice.
pub(crate) fn fair_claim<T, C>(
    table: T,
    id: C,
    tenant: C,
    oldest_first: C,
    claimable: Condition,
    size: ClaimSize,
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
        .from_subquery(
            {
                let mut rows = Query::select();
                rows.columns([id, tenant]).from(table).cond_where(claimable.clone());
                // The outbox's oldest is its id, already selected.
                if Iden::to_string(&oldest_first) != Iden::to_string(&id) {
                    rows.column(oldest_first);
                }
                if let Some(window) = size.window {
                    rows.order_by(oldest_first, Order::Asc).order_by(id, Order::Asc).limit(window);
                }
                rows
            },
            Alias::new("candidates"),
        )
        .to_owned();
    // Within a turn, tenants in random order rather than oldest first: a
    // claim of a few rows (the retry poller claims as many as places just
    // freed, often one) would otherwise go to the tenant with the most
    // overdue backlog again and again, since nothing remembers that it was
    // served by the claim before. Drawn at random, each tenant with rows
    // waiting has the same chance at each place.
    let mut in_turn = Query::select();
    in_turn.column(id).from_subquery(numbered, ranked);
    if let Some(most) = size.per_tenant {
        in_turn.and_where(Expr::col(turn.clone()).lte(most));
    }
    let in_turn = in_turn
        .order_by(turn, Order::Asc)
        .order_by_expr(Expr::cust("RANDOM()"), Order::Asc)
        .limit(size.limit)
        .to_owned();
    // Window functions and row locks cannot share a query: lock in an
    // outer one, which also re-checks the rows another claim just took.
    locked(table, id, claimable, in_turn)
}

/// The ids of at most `per_tenant` rows of each of `tenants` (at least
/// one) matching `claimable`, each tenant's oldest first, locked like
/// [`fair_claim`]'s. One small index range per tenant (`tenant`,
/// `oldest_first`), with nothing to number: its cost does not grow with
/// other tenants' rows, nor with the rows a named tenant has behind.
pub(crate) fn claim_of_each<T, C>(
    table: T,
    (id, tenant, oldest_first): (C, C, C),
    claimable: Condition,
    tenants: &[&str],
    per_tenant: u64,
) -> SelectStatement
where
    T: Iden + Copy + 'static,
    C: Iden + Copy + IntoColumnRef + 'static,
{
    let mut branches = tenants.iter().map(|name| {
        let oldest = Query::select()
            .column(id)
            .from(table)
            .cond_where(claimable.clone())
            .and_where(Expr::col(tenant).eq(*name))
            .order_by(oldest_first, Order::Asc)
            .limit(per_tenant)
            .to_owned();
        // Wrapped, so that each branch keeps its own LIMIT on SQLite too.
        Query::select().column(id).from_subquery(oldest, Alias::new("oldest")).to_owned()
    });
    let mut each = branches.next().expect("at least one tenant");
    for branch in branches {
        each.union(UnionType::All, branch);
    }
    locked(table, id, claimable, each)
}

/// `chosen` rows that are still `claimable`, locked (`SKIP LOCKED`).
fn locked<T, C>(table: T, id: C, claimable: Condition, chosen: SelectStatement) -> SelectStatement
where
    T: Iden + Copy + 'static,
    C: Iden + Copy + IntoColumnRef + 'static,
{
    Query::select()
        .column(id)
        .from(table)
        .and_where(Expr::col(id).in_subquery(chosen))
        .cond_where(claimable)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned()
}
