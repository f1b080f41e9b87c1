//! Starting and stopping the hub's parts.
use crate::Settings;
use anyhow::{bail, Context};
use hookhub_dispatcher::fanout::Fanout;
use hookhub_dispatcher::queue::amqp::{AmqpConsumer, AmqpPublisher};
use hookhub_dispatcher::queue::{in_process, Consumer, Publisher};
use hookhub_dispatcher::{DeliveryLoop, OutboxRelay};
use hookhub_ingest::AppState;
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

/// A running hub (or part of one).
pub struct Hub {
    store: Store,
    port: Option<u16>,
    shutdown: CancellationToken,
    server: Option<actix_web::dev::ServerHandle>,
    tasks: Vec<JoinHandle<()>>,
}

impl Hub {
    /// Connects, migrates when running everything, and starts the role's parts.
    pub async fn start(settings: &Settings, role: Role) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url)
            .await
            .context("connecting to the database")?;
        if role == Role::All {
            store.migrate().await.context("running migrations")?;
        }
        let shutdown = CancellationToken::new();
        let delivery = settings.delivery_config()?;
        let mut tasks = Vec::new();

        let (publisher, consumer): (Option<Arc<dyn Publisher>>, Option<Box<dyn ConsumerBox>>) =
            match (settings.amqp_config(), role) {
                (Some(amqp), _) => (
                    Some(Arc::new(AmqpPublisher::new(amqp.clone()))),
                    Some(Box::new(AmqpConsumer::new(amqp, delivery.prefetch, shutdown.clone()))),
                ),
                (None, Role::All) => {
                    let (p, c) = in_process::channel(delivery.prefetch as usize);
                    (Some(Arc::new(p)), Some(Box::new(c)))
                }
                (None, Role::Ingest) => (None, None),
                (None, _) => bail!("running the relay or the dispatcher on its own needs a broker: set HOOKHUB_AMQP_URL"),
            };

        let mut outbox_wake = None;
        if role.relay() {
            let relay = OutboxRelay::new(
                store.clone(),
                publisher.expect("set above"),
                settings.relay_config(),
            );
            // Only a relay in this process can be woken by this process's ingest.
            outbox_wake = Some(relay.waker());
            tasks.push(tokio::spawn(relay.run(shutdown.clone())));
        }
        if role.dispatcher() {
            let (work_tx, work_rx) = tokio::sync::mpsc::channel(delivery.concurrency * 2);
            let fanout = Fanout::new(store.clone(), delivery.lease(), work_tx);
            let consumer = consumer.expect("set above");
            tasks.push(tokio::spawn(consumer.run_fanout(fanout, shutdown.clone())));
            let delivery_loop = DeliveryLoop::new(store.clone(), delivery);
            tasks.push(tokio::spawn(delivery_loop.run(work_rx, shutdown.clone())));
        }

        let (mut port, mut server) = (None, None);
        if role.ingest() {
            let listener = TcpListener::bind(&settings.listen)
                .with_context(|| format!("binding {}", settings.listen))?;
            port = Some(listener.local_addr()?.port());
            let state = AppState {
                store: store.clone(),
                outbox_wake,
                allow_http_endpoints: settings.allow_http_endpoints,
            };
            let srv = hookhub_ingest::serve(listener, state, settings.http_workers)?;
            server = Some(srv.handle());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = srv.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
        }
        tracing::info!(role = ?role, "{}", settings.describe());
        Ok(Self {
            store,
            port,
            shutdown,
            server,
            tasks,
        })
    }

    /// The port the API listens on, if this process serves it.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The store the hub uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops taking work, lets work in flight finish, and returns.
    pub async fn shutdown(self) {
        if let Some(server) = &self.server {
            server.stop(true).await;
        }
        self.shutdown.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .is_err()
        {
            tracing::warn!("shutdown timed out; unfinished work resumes from the store on restart");
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await?;
        tracing::info!("shutting down");
        self.shutdown().await;
        Ok(())
    }
}

/// Lets `start` hold either consumer behind one type.
trait ConsumerBox: Send {
    fn run_fanout(
        self: Box<Self>,
        fanout: Fanout,
        shutdown: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()>;
}

impl<C: Consumer + 'static> ConsumerBox for C {
    fn run_fanout(
        self: Box<Self>,
        fanout: Fanout,
        shutdown: CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(fanout.run(*self, shutdown))
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
