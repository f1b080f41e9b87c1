//! `hookhub`: run the hub, or one of its parts, and administer it.
use clap::{Parser, Subcommand};
use hookhub::{admin, telemetry, Hub, Mode, Role, Settings};
use hookhub_store::domain::{Plan, TenantId};
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's tuning, read at start: freed pages go back to the system
/// within a second rather than ten, by a background thread, so peak RSS
/// stays near the live heap.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(name = "hookhub", version, about = "Reliable, signed webhook delivery")]
struct Cli {
    /// A TOML file of settings (HOOKHUB_* env vars override it).
    #[arg(long, global = true, env = "HOOKHUB_CONFIG")]
    config: Option<PathBuf>,
    /// Development mode (same as HOOKHUB_MODE=development): http:// and
    /// loopback or private endpoints allowed, PostgreSQL without encryption
    /// keys allowed. Never in production.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: API, outbox relay, dispatcher (migrates first).
    Serve,
    /// Run only the HTTP API.
    Ingest,
    /// Run only the outbox relay (needs HOOKHUB_AMQP_URL).
    Relay,
    /// Run only fan-out and delivery (needs HOOKHUB_AMQP_URL).
    Dispatcher,
    /// Apply database migrations.
    Migrate,
    /// Inspect subscriptions.
    Subscriptions {
        #[command(subcommand)]
        command: admin::SubscriptionsCommand,
    },
    /// Replay events.
    Events {
        #[command(subcommand)]
        command: admin::EventsCommand,
    },
    /// Inspect the outbox.
    Outbox {
        #[command(subcommand)]
        command: admin::OutboxCommand,
    },
    /// List and requeue deliveries that ran out of attempts.
    DeadLetters {
        #[command(subcommand)]
        command: admin::DeadLettersCommand,
    },
    /// Forward a tenant's events to a local receiver while you develop it.
    Listen {
        /// Where to POST each delivery, like http://localhost:3000/webhooks.
        #[arg(long)]
        forward_to: String,
        /// Event types to forward (comma-separated); all when omitted.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// The hub's base URL.
        #[arg(long, env = "HOOKHUB_HUB_URL", default_value = "http://127.0.0.1:8080")]
        hub: String,
        /// The tenant's API key.
        #[arg(long, env = "HOOKHUB_API_KEY", hide_env_values = true)]
        api_key: String,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Create a platform and its first platform key (then manage tenants
    /// and keys over the API).
    PlatformKey {
        #[command(subcommand)]
        command: PlatformKeyCommand,
    },
}

#[derive(Subcommand)]
enum PlatformKeyCommand {
    /// Create a platform and print its `platform`-scoped API key (shown once).
    Create {
        /// The platform's name, for operators.
        name: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its API key (shown once).
    Create {
        /// A name for operators.
        name: String,
        /// Rate-limit plan: essential, starter, pro, studio or unlimited.
        #[arg(long, default_value = "unlimited")]
        plan: String,
    },
    /// Move a tenant to another rate-limit plan.
    Plan {
        /// The tenant (ten_...).
        tenant: String,
        /// essential, starter, pro, studio or unlimited.
        plan: String,
    },
    /// List tenants.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Listen { forward_to, events, hub, api_key } = cli.command {
        return hookhub::listen::run(hookhub::listen::ListenArgs { hub, api_key, forward_to, events }).await;
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    if cli.dev {
        settings.mode = Mode::Development;
    }
    telemetry::init(&settings.log_format);
    let role = match cli.command {
        Command::Serve => Role::All,
        Command::Ingest => Role::Ingest,
        Command::Relay => Role::Relay,
        Command::Dispatcher => Role::Dispatcher,
        Command::Migrate => {
            let store = settings.store().await?;
            store.migrate().await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Tenant { command } => return tenant(&settings, command).await,
        Command::PlatformKey { command: PlatformKeyCommand::Create { name } } => {
            let store = settings.store().await?;
            store.migrate().await?;
            let (platform, key) = store.create_platform(&name).await?;
            println!("platform: {}", platform.id);
            println!("api key:  {}", key.expose());
            eprintln!("Store the key now: only its hash is kept, it cannot be shown again.");
            return Ok(());
        }
        Command::Subscriptions { command } => return admin::subscriptions(&settings.store().await?, command).await,
        Command::Events { command } => return admin::events(&settings.store().await?, command).await,
        Command::Outbox { command } => return admin::outbox(&settings.store().await?, command).await,
        Command::DeadLetters { command } => return admin::dead_letters(&settings.store().await?, command).await,
        Command::Listen { .. } => unreachable!("handled before loading settings"),
    };
    let hub = Hub::start(&settings, role).await?;
    if let Some(port) = hub.port() {
        tracing::info!("API listening on port {port}");
    }
    hub.run_until_signal().await
}

async fn tenant(settings: &Settings, command: TenantCommand) -> anyhow::Result<()> {
    let store = settings.store().await?;
    store.migrate().await?;
    match command {
        TenantCommand::Create { name, plan } => {
            let plan: Plan = plan.parse()?;
            let (tenant, key) = store.create_tenant_on(&name, plan).await?;
            println!("tenant:  {}", tenant.id);
            println!("api key: {}", key.expose());
            eprintln!("Store the key now: only its hash is kept, it cannot be shown again.");
        }
        TenantCommand::Plan { tenant, plan } => {
            let id: TenantId = tenant.parse().map_err(|_| anyhow::anyhow!("{tenant} is not a tenant id"))?;
            store.set_plan(&id, plan.parse()?).await?;
            println!("{id} is on the {plan} plan");
        }
        TenantCommand::List => {
            for t in store.list_tenants().await? {
                println!("{}\t{}\t{}", t.id, t.plan, t.name);
            }
        }
    }
    Ok(())
}
