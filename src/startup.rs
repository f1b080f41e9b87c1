//! Starting and stopping the hub's parts.
use crate::delivery_side::{AmqpProbe, SharedSandbox};
use crate::Settings;
use anyhow::{bail, Context};
use hookhub_dispatcher::fan_out::FanOut;
use hookhub_dispatcher::queue::amqp::{AmqpConsumer, AmqpPublisher};
use hookhub_dispatcher::queue::lanes::{LaneConsumer, LanePublisher};
use hookhub_dispatcher::queue::{in_process, Consumer, Publisher};
use hookhub_dispatcher::{retention, DeliveryLoop, OutboxRelay};
use hookhub_ingest::{AppState, BacklogGuard, BrokerProbe};
use hookhub_store::Store;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which parts a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process (`hookhub serve`).
    All,
    /// The HTTP API only.
    Ingest,
    /// The outbox relay only.
    Relay,
    /// Fan-out and delivery only.
    Dispatcher,
}

impl Role {
    fn ingest(self) -> bool {
        matches!(self, Self::All | Self::Ingest)
    }
    fn relay(self) -> bool {
        matches!(self, Self::All | Self::Relay)
    }
    fn dispatcher(self) -> bool {
        matches!(self, Self::All | Self::Dispatcher)
    }
}

/// How long a stopping hub leaves the AMQP client to finish closing.
const BROKER_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// A running hub (or part of one).
pub struct Hub {
    store: Store,
    api_port: Option<u16>,
    metrics_port: Option<u16>,
    shutdown: CancellationToken,
    servers: Vec<actix_web::dev::ServerHandle>,
    tasks: Vec<JoinHandle<()>>,
    /// Fires when a part stops on its own (a panic, a fatal error).
    failed: CancellationToken,
    /// It holds RabbitMQ connections (see [`Hub::shutdown`]).
    uses_broker: bool,
}

/// Spawns a part of the hub. A part that ends before shutdown was asked
/// for is a failure of the whole process: better to exit and be restarted
/// by the supervisor than to keep serving the API while nothing is delivered.
fn spawn_part(
    name: &'static str,
    part: impl std::future::Future<Output = ()> + Send + 'static,
    shutdown: &CancellationToken,
    failed: &CancellationToken,
) -> JoinHandle<()> {
    let (shutdown, failed) = (shutdown.clone(), failed.clone());
    tokio::spawn(async move {
        let result = tokio::spawn(part).await;
        if !shutdown.is_cancelled() {
            match result {
                Err(e) if e.is_panic() => tracing::error!(part = name, "panicked"),
                _ => tracing::error!(part = name, "stopped unexpectedly"),
            }
            failed.cancel();
        }
    })
}

impl Hub {
    /// Connects, migrates when running everything, and starts the role's parts.
    pub async fn start(settings: &Settings, role: Role) -> anyhow::Result<Self> {
        let store = settings.store().await?;
        if role == Role::All {
            store.migrate().await.context("running migrations")?;
        }
        let shutdown = CancellationToken::new();
        let failed = CancellationToken::new();
        let delivery = settings.delivery_config()?;
        let mut tasks = Vec::new();

        let Broker { publisher, consumer } = Broker::for_role(settings, role, delivery.prefetch, &shutdown)?;

        let mut outbox_nudge = None;
        if role.relay() {
            let relay = OutboxRelay::new(store.clone(), publisher.expect("set above"), settings.relay_config());
            // Only a relay in this process can be woken by this process's ingest.
            outbox_nudge = Some(relay.nudge());
            tasks.push(spawn_part("outbox relay", relay.run(shutdown.clone()), &shutdown, &failed));
            // Retention rides with the relay: one per deployment is plenty,
            // and several are harmless (batches of finished rows).
            let purge = retention::run(store.clone(), settings.retention_config(), shutdown.clone());
            tasks.push(spawn_part("retention", purge, &shutdown, &failed));
            // Tenant erasures a restart cut short; they end, so not a part.
            tokio::spawn({
                let store = store.clone();
                async move { store.resume_erasures().await }
            });
        }
        if role.dispatcher() {
            let delivery_loop = DeliveryLoop::new(store.clone(), delivery);
            let fan_out =
                FanOut::new(store.clone(), delivery_loop.clone(), hookhub_dispatcher::fan_out::EVENTS_PER_WRITE);
            let consumer = consumer.expect("set above");
            tasks.push(spawn_part("fan-out", consumer.run_fan_out(fan_out, shutdown.clone()), &shutdown, &failed));
            tasks.push(spawn_part("delivery loop", delivery_loop.run(shutdown.clone()), &shutdown, &failed));
        }

        // Only the API admits events, so only it needs to know whose backlog is full.
        let backlog_guard = (role.ingest() && settings.tenant_backlog_limit > 0).then(|| {
            let guard = BacklogGuard::new(settings.tenant_backlog_limit);
            let refresh = guard.clone().run(store.clone(), shutdown.clone());
            tasks.push(spawn_part("backlog guard", refresh, &shutdown, &failed));
            guard
        });

        // The API on its port; the probes and metrics on the metrics
        // listener, when one is configured.
        let state = AppState {
            store: store.clone(),
            outbox_nudge,
            allow_http_endpoints: settings.allows_http_endpoints(),
            allow_private_endpoints: settings.allows_private_endpoints(),
            trusted_proxies: settings.trusted_proxies.parse().context("HOOKHUB_TRUSTED_PROXIES")?,
            broker: settings
                .amqp_config()
                .filter(|_| role != Role::Ingest)
                .map(|a| Arc::new(AmqpProbe::new(a.url)) as Arc<dyn BrokerProbe>),
            sandbox: Arc::new(SharedSandbox),
            audit: role.ingest().then(|| hookhub_ingest::AuditSink::spawn(store.clone())),
            backlog_guard,
            portal: settings.portal_config()?,
        };
        let mut servers = Vec::new();
        let mut start_http = |address: &str, api: bool| -> anyhow::Result<u16> {
            let listener = TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
            let port = listener.local_addr()?.port();
            let srv = if api {
                hookhub_ingest::serve(listener, state.clone(), settings.http_workers)?
            } else {
                hookhub_ingest::serve_ops(listener, state.clone())?
            };
            servers.push(srv.handle());
            let http = async move {
                if let Err(e) = srv.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            };
            tasks.push(spawn_part("HTTP server", http, &shutdown, &failed));
            Ok(port)
        };
        let api_port = if role.ingest() { Some(start_http(&settings.listen, true)?) } else { None };
        let metrics_port = settings.metrics_listen.as_deref().map(|a| start_http(a, false)).transpose()?;
        tracing::info!(role = ?role, "{}", settings.describe());
        let uses_broker = settings.amqp_config().is_some() && role != Role::Ingest;
        Ok(Self { store, api_port, metrics_port, shutdown, servers, tasks, failed, uses_broker })
    }

    /// The port the API (or, for relay and dispatcher, the metrics) listens on.
    pub fn port(&self) -> Option<u16> {
        self.api_port.or(self.metrics_port)
    }

    /// The port of the metrics listener, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The store the hub uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops taking work, lets work in flight finish, and returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        futures::future::join_all(self.servers.iter().map(|server| server.stop(true))).await;
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(30), all).await.is_err() {
            tracing::warn!("shutdown timed out; unfinished work resumes from the store on restart");
        }
        if self.uses_broker {
            // The AMQP client's I/O thread finishes a connection's closing
            // handshake after `close` returns; if the runtime stops first,
            // that thread logs an error on what was a clean stop.
            tokio::time::sleep(BROKER_CLOSE_GRACE).await;
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully; fails if
    /// a part of the hub stopped on its own.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let failed = self.failed.clone();
        tokio::select! {
            signal = wait_for_signal() => signal?,
            _ = failed.cancelled() => {}
        }
        tracing::info!("shutting down");
        self.shutdown().await;
        if failed.is_cancelled() {
            bail!("a part of the hub stopped unexpectedly; see the log above");
        }
        Ok(())
    }
}

/// The two ends of the queue a role needs (none for ingest alone).
struct Broker {
    publisher: Option<Arc<dyn Publisher>>,
    consumer: Option<Box<dyn ConsumerBox>>,
}

impl Broker {
    /// RabbitMQ when configured; otherwise the in-process channel, which
    /// only works when relay and dispatcher share this process. With both
    /// in this process and RabbitMQ, the express lane takes the channel
    /// (see `hookhub_dispatcher::queue::lanes`).
    fn for_role(settings: &Settings, role: Role, prefetch: u16, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        Ok(match (settings.amqp_config(), role) {
            (Some(amqp), Role::All) => {
                let (express, express_rx) = in_process::channel(prefetch as usize);
                let main = Arc::new(AmqpPublisher::new(amqp.clone()));
                Self {
                    publisher: Some(Arc::new(LanePublisher { main, express: Arc::new(express) })),
                    consumer: Some(Box::new(LaneConsumer::new(
                        AmqpConsumer::new(amqp, prefetch, shutdown.clone()),
                        express_rx,
                    ))),
                }
            }
            (Some(amqp), _) => Self {
                publisher: Some(Arc::new(AmqpPublisher::new(amqp.clone()))),
                consumer: Some(Box::new(AmqpConsumer::new(amqp, prefetch, shutdown.clone()))),
            },
            (None, Role::All) => {
                let (p, c) = in_process::channel(prefetch as usize);
                Self { publisher: Some(Arc::new(p)), consumer: Some(Box::new(c)) }
            }
            (None, Role::Ingest) => Self { publisher: None, consumer: None },
            (None, _) => bail!("running the relay or the dispatcher on its own needs a broker: set HOOKHUB_AMQP_URL"),
        })
    }
}

/// Lets `start` hold either consumer behind one type.
trait ConsumerBox: Send {
    fn run_fan_out(
        self: Box<Self>,
        fan_out: FanOut,
        shutdown: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()>;
}

impl<C: Consumer + 'static> ConsumerBox for C {
    fn run_fan_out(
        self: Box<Self>,
        fan_out: FanOut,
        shutdown: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(fan_out.run(*self, shutdown))
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
