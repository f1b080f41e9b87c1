//! Operators' commands: what an on-call engineer needs without SQL.
use anyhow::{bail, Context};
use clap::Subcommand;
use hookhub_store::domain::{now, DeliveryId, TenantId};
use hookhub_store::repo::QuarantineSelection;
use hookhub_store::{PageRequest, Store};

/// `hookhub subscriptions ...`.
#[derive(Subcommand)]
pub enum SubscriptionsCommand {
    /// List subscriptions: URL, types, status.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Subscriptions whose row does not read (a key that left the keyring,
    /// a corrupt row), with how many of their deliveries are held.
    Unreadable,
}

/// `hookhub events ...`.
#[derive(Subcommand)]
pub enum EventsCommand {
    /// Send every event accepted since a time again, to all its subscriptions.
    Replay {
        /// RFC 3339 time, like 2026-11-26T06:00:00Z.
        #[arg(long)]
        since: String,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `hookhub outbox ...`.
#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Backlog, quarantined rows and the age of the oldest unpublished event.
    Status,
    /// Rows the relay set aside because they cannot be published (their
    /// event is gone or unreadable), oldest first.
    Quarantined {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Make quarantined rows claimable again (after restoring their events).
    Requeue {
        #[command(flatten)]
        which: QuarantinedRows,
    },
    /// Delete quarantined rows: their events will never be published.
    Drop {
        #[command(flatten)]
        which: QuarantinedRows,
    },
}

/// Which quarantined outbox rows a command acts on.
#[derive(clap::Args)]
pub struct QuarantinedRows {
    /// This outbox row (the first column of `outbox quarantined`).
    #[arg(long, conflicts_with = "all")]
    id: Option<i64>,
    /// Every quarantined row.
    #[arg(long)]
    all: bool,
}

impl QuarantinedRows {
    fn selection(&self) -> anyhow::Result<QuarantineSelection> {
        match (self.id, self.all) {
            (Some(id), _) => Ok(QuarantineSelection::One(id)),
            (None, true) => Ok(QuarantineSelection::All),
            (None, false) => bail!("say which: --id N or --all"),
        }
    }
}

/// `hookhub dead-letters ...`.
#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// Deliveries that ran out of attempts, newest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put dead letters back in the queue with a fresh retry cycle.
    Requeue {
        /// This delivery (`dlv_...`).
        #[arg(long, conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter (of `--tenant`, if given).
        #[arg(long)]
        all: bool,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn tenant(raw: Option<&str>) -> anyhow::Result<Option<TenantId>> {
    raw.map(|t| t.parse().map_err(|_| anyhow::anyhow!("{t} is not a tenant id (ten_...)"))).transpose()
}

/// Runs `subscriptions list` or `subscriptions unreadable`.
pub async fn subscriptions(store: &Store, command: SubscriptionsCommand) -> anyhow::Result<()> {
    let only = match command {
        SubscriptionsCommand::List { tenant: only } => tenant(only.as_deref())?,
        SubscriptionsCommand::Unreadable => {
            let unreadable = store.unreadable_subscriptions().await?;
            for u in &unreadable {
                println!("{}\t{}\theld={}\t{}", u.tenant_id, u.id, u.held_deliveries, u.reason);
            }
            eprintln!("{} unreadable subscription(s)", unreadable.len());
            return Ok(());
        }
    };
    for t in store.list_tenants().await? {
        if only.as_ref().is_some_and(|o| *o != t.id) {
            continue;
        }
        let mut page = PageRequest::first();
        loop {
            let subs = store.list_subscriptions(&t.id, &page).await?;
            for s in &subs.items {
                let types = s.event_types.to_strings().join(",");
                println!("{}\t{}\t{:?}\t{}\t{}", t.id, s.id, s.status, types, s.url);
            }
            match subs.next_cursor {
                Some(c) => page = PageRequest::new(None, Some(c)).expect("default limit is valid"),
                None => break,
            }
        }
    }
    Ok(())
}

/// Runs `events replay`.
pub async fn events(store: &Store, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Replay { since, tenant: only } = command;
    let since = chrono::DateTime::parse_from_rfc3339(&since).context("--since must be RFC 3339")?.to_utc();
    let only = tenant(only.as_deref())?;
    let events = store.events_created_since(since, only.as_ref()).await?;
    let mut deliveries = 0;
    for (tenant, event) in &events {
        deliveries += store.redeliver(tenant, event, None).await?.len();
    }
    println!("replaying {} event(s): {deliveries} delivery(ies) queued", events.len());
    Ok(())
}

/// Runs `outbox status|quarantined|requeue|drop`.
pub async fn outbox(store: &Store, command: OutboxCommand) -> anyhow::Result<()> {
    match command {
        OutboxCommand::Status => {
            let status = store.outbox_status().await?;
            let age = status.oldest.map(|t| format!("{}s", (now() - t).num_seconds())).unwrap_or_else(|| "-".into());
            println!("backlog: {}\nquarantined: {}\noldest:  {age}", status.backlog, status.quarantined);
        }
        OutboxCommand::Quarantined { limit } => {
            for row in store.quarantined_outbox(limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    row.outbox_id,
                    row.tenant_id,
                    row.event_id,
                    row.reason,
                    row.created_at.to_rfc3339(),
                    row.quarantined_at.to_rfc3339()
                );
            }
        }
        OutboxCommand::Requeue { which } => {
            let n = store.requeue_quarantined_outbox(which.selection()?).await?;
            println!("requeued {n} outbox row(s)");
        }
        OutboxCommand::Drop { which } => {
            let n = store.drop_quarantined_outbox(which.selection()?).await?;
            println!("dropped {n} outbox row(s)");
        }
    }
    Ok(())
}

/// Runs `dead-letters list|requeue`.
pub async fn dead_letters(store: &Store, command: DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List { tenant: only, limit } => {
            let only = tenant(only.as_deref())?;
            for d in store.dead_letters(only.as_ref(), limit).await? {
                let code = d.last_status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                let error = d.last_error.unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{code}\t{error}",
                    d.id, d.tenant_id, d.event_id, d.subscription_id, d.attempt_count
                );
            }
        }
        DeadLettersCommand::Requeue { id, all, tenant: only } => {
            let only = tenant(only.as_deref())?;
            let id: Option<DeliveryId> =
                id.map(|i| i.parse().map_err(|_| anyhow::anyhow!("{i} is not a delivery id (dlv_...)"))).transpose()?;
            if id.is_none() && !all {
                bail!("say which: --id dlv_... or --all");
            }
            let n = store.requeue_dead_letters(id.as_ref(), only.as_ref()).await?;
            println!("requeued {n} delivery(ies)");
        }
    }
    Ok(())
}
