//! RabbitMQ through lapin: a durable direct exchange and two quorum queues
//! (the main lane and the express lane, see [`Lane`]), persistent
//! messages, publisher confirms, manual acks, bounded prefetch per queue.
//!
//! Both halves reconnect by themselves: the publisher on its next publish,
//! the consumer with exponential backoff until it is shut down.
use super::{
    decode, encode, Acker, Consumer, EventMessage, Incoming, Lane, Publisher, QueueError, MAX_EVENTS_PER_MESSAGE,
};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

const ROUTING_KEY: &str = "event";
const EXPRESS_ROUTING_KEY: &str = "event.express";
const PERSISTENT: u8 = 2;

/// Where the broker is and what to call things there.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// The durable exchange events are published to.
    pub exchange: String,
    /// The quorum queue the dispatchers consume; the express lane's is
    /// this name with `.express` after it.
    pub queue: String,
}

impl AmqpConfig {
    /// The production names, `hookhub.events` for both.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), exchange: "hookhub.events".into(), queue: "hookhub.events".into() }
    }

    /// The express lane's queue.
    pub fn express_queue(&self) -> String {
        format!("{}.express", self.queue)
    }
}

/// Opens a connection and a channel, and declares the topology (idempotent).
async fn open(config: &AmqpConfig, name: &str) -> Result<(Connection, Channel), QueueError> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(name.into());
    let conn = Connection::connect(&config.url, props).await?;
    let channel = conn.create_channel().await?;
    channel
        .exchange_declare(
            &config.exchange,
            ExchangeKind::Direct,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    // Quorum queues replicate through Raft and survive a node loss; they
    // are always durable.
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    for (queue, key) in [(config.queue.clone(), ROUTING_KEY), (config.express_queue(), EXPRESS_ROUTING_KEY)] {
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        channel.queue_declare(&queue, durable, args.clone()).await?;
        channel.queue_bind(&queue, &config.exchange, key, QueueBindOptions::default(), FieldTable::default()).await?;
    }
    Ok((conn, channel))
}

/// Whether the broker accepts a connection within two seconds (readiness).
pub async fn ping(url: &str) -> Result<(), QueueError> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let conn = tokio::time::timeout(Duration::from_secs(2), Connection::connect(url, props))
        .await
        .map_err(|_| QueueError::Refused("connect timed out"))??;
    let _ = conn.close(0, "readiness probe").await;
    Ok(())
}

fn reconnect_policy() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(200),
        max_interval: Duration::from_secs(10),
        max_elapsed_time: None,
        ..Default::default()
    }
}

/// Publishes with confirms on one channel per lane, reopened after any failure.
pub struct AmqpPublisher {
    config: AmqpConfig,
    /// The main lane's link.
    link: Mutex<Option<(Connection, Channel)>>,
    /// The express lane's: a publish waits for its confirms on its link,
    /// and an express batch must not wait behind the main lane's.
    express_link: Mutex<Option<(Connection, Channel)>>,
}

impl AmqpPublisher {
    /// A publisher; it connects on first use.
    pub fn new(config: AmqpConfig) -> Self {
        Self { config, link: Mutex::new(None), express_link: Mutex::new(None) }
    }

    async fn publish_on(&self, channel: &Channel, batch: &[EventMessage], lane: Lane) -> Result<(), QueueError> {
        let routing_key = match lane {
            Lane::Main => ROUTING_KEY,
            Lane::Express => EXPRESS_ROUTING_KEY,
        };
        // Publish every message, then wait for the confirms: one round trip
        // per batch instead of one per message.
        let mut confirms = Vec::new();
        for chunk in batch.chunks(MAX_EVENTS_PER_MESSAGE) {
            let props =
                BasicProperties::default().with_delivery_mode(PERSISTENT).with_content_type("application/json".into());
            let confirm = channel
                .basic_publish(
                    &self.config.exchange,
                    routing_key,
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &encode(chunk),
                    props,
                )
                .await?;
            confirms.push(confirm);
        }
        // Every confirm is awaited, even after a failed one: a confirm left
        // pending is dropped under lapin, which warns about it.
        let mut outcome = Ok(());
        for confirm in confirms {
            let failed = match confirm.await {
                Ok(Confirmation::Ack(None)) => continue,
                Ok(Confirmation::Ack(Some(_))) => QueueError::Unroutable,
                Ok(Confirmation::Nack(_)) => QueueError::Refused("publish nacked"),
                Ok(Confirmation::NotRequested) => QueueError::Refused("confirms not enabled"),
                Err(e) => e.into(),
            };
            if outcome.is_ok() {
                outcome = Err(failed);
            }
        }
        outcome
    }
}

/// Closes a link's connection, so lapin's I/O thread ends before the
/// runtime it uses does; the broker closes its channel with it (unacked
/// messages go back to the queue). The channel is not closed on its own
/// first: lapin forgets a channel once it is closed, and a frame of it
/// still on the wire then (a delivery, an ack) is logged as a connection
/// error, which a loaded box showed on about one stop in ten. Errors are
/// moot: the link is being given up.
async fn close(conn: &Connection, why: &str) {
    if conn.status().connected() {
        let _ = conn.close(200, why).await;
    }
}

#[async_trait]
impl Publisher for AmqpPublisher {
    async fn publish(&self, batch: &[EventMessage], lane: Lane) -> Result<(), QueueError> {
        let (mut link, name) = match lane {
            Lane::Main => (self.link.lock().await, "hookhub-relay"),
            Lane::Express => (self.express_link.lock().await, "hookhub-relay-express"),
        };
        let usable = matches!(&*link, Some((conn, ch)) if conn.status().connected() && ch.status().connected());
        if !usable {
            let (conn, channel) = open(&self.config, name).await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            *link = Some((conn, channel));
        }
        let (_, channel) = link.as_ref().expect("link was just opened");
        let result = self.publish_on(channel, batch, lane).await;
        // Unroutable means the queue or its binding is gone (deleted by
        // hand, or lost with a node): reopening declares them again, where
        // the same link would have every later publish returned too.
        if result.is_err() {
            if let Some((conn, _)) = link.take() {
                close(&conn, "publish failed").await;
            }
        }
        result
    }

    async fn waiting(&self) -> Option<u32> {
        let link = self.link.lock().await;
        let (_, channel) = link.as_ref().filter(|(conn, ch)| conn.status().connected() && ch.status().connected())?;
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        match channel.queue_declare(&self.config.queue, passive, FieldTable::default()).await {
            Ok(queue) => Some(queue.message_count()),
            // The next publish reopens the link and says what is wrong.
            Err(_) => None,
        }
    }

    async fn close(&self) {
        for link in [&self.link, &self.express_link] {
            if let Some((conn, _)) = link.lock().await.take() {
                close(&conn, "relay shutting down").await;
            }
        }
    }
}

/// The dispatcher's consumer tags, to cancel them by at shutdown.
const CONSUMER_TAG: &str = "hookhub-dispatcher";
const EXPRESS_CONSUMER_TAG: &str = "hookhub-dispatcher-express";

/// The main lane's deliveries and the express lane's.
type Deliveries = (lapin::Consumer, lapin::Consumer);

/// Consumes both lanes on one channel, with manual acks and a prefetch
/// limit per lane, reconnecting with backoff.
pub struct AmqpConsumer {
    config: AmqpConfig,
    prefetch: u16,
    shutdown: CancellationToken,
    link: Option<(Connection, Channel, Deliveries)>,
}

impl AmqpConsumer {
    /// A consumer; it connects on first use and stops when `shutdown` fires.
    pub fn new(config: AmqpConfig, prefetch: u16, shutdown: CancellationToken) -> Self {
        Self { config, prefetch, shutdown, link: None }
    }

    async fn connect(&self) -> Result<(Connection, Channel, Deliveries), QueueError> {
        let (conn, channel) = open(&self.config, "hookhub-dispatcher").await?;
        // Not global: the limit applies to each consumer of the channel, so
        // the express lane's slots stay free while the main lane's are full.
        channel.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        let (options, args) = (BasicConsumeOptions::default(), FieldTable::default());
        let main = channel.basic_consume(&self.config.queue, CONSUMER_TAG, options, args.clone()).await?;
        let express = channel.basic_consume(&self.config.express_queue(), EXPRESS_CONSUMER_TAG, options, args).await?;
        Ok((conn, channel, (main, express)))
    }

    async fn connect_with_backoff(&self) -> Result<(Connection, Channel, Deliveries), QueueError> {
        backoff::future::retry_notify(
            reconnect_policy(),
            || async { self.connect().await.map_err(backoff::Error::transient) },
            |err, wait: Duration| tracing::warn!(error = %err, ?wait, "broker unreachable; retrying"),
        )
        .await
    }
}

struct AmqpAcker(lapin::acker::Acker);

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(self: Box<Self>) {
        // A failed ack means the channel is gone; the broker redelivers the
        // message, and fan-out is idempotent.
        if let Err(e) = self.0.ack(BasicAckOptions::default()).await {
            tracing::warn!(error = %e, "ack failed; the message will be redelivered");
        }
    }

    async fn reject(self: Box<Self>) {
        if let Err(e) = self.0.reject(BasicRejectOptions { requeue: false }).await {
            tracing::warn!(error = %e, "reject failed");
        }
    }
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Incoming> {
        loop {
            if self.link.is_none() {
                let link = tokio::select! {
                    _ = self.shutdown.cancelled() => return None,
                    link = self.connect_with_backoff() => link,
                };
                match link {
                    Ok(link) => {
                        tracing::info!(queue = %self.config.queue, "consuming");
                        self.link = Some(link);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "giving up on the broker");
                        return None;
                    }
                }
            }
            let (_, _, (main, express)) = self.link.as_mut().expect("link is set");
            // Either lane's end is the link's: a queue deleted under us
            // cancels its consumer, and only a new link declares it again.
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                next = main.next() => next,
                next = express.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    let message = decode(&delivery.data);
                    let redelivered = delivery.redelivered;
                    return Some(Incoming { message, redelivered, acker: Box::new(AmqpAcker(delivery.acker)) });
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer lost its channel; reconnecting")
                }
                None => tracing::warn!("consumer stream ended; reconnecting"),
            }
            self.link = None;
        }
    }

    async fn close(&mut self) {
        if let Some((conn, channel, _)) = self.link.take() {
            // Stop deliveries first, so none is on the wire while the
            // connection closes. Unacked messages go back to the queue when
            // it has closed.
            if channel.status().connected() {
                for tag in [CONSUMER_TAG, EXPRESS_CONSUMER_TAG] {
                    let _ = channel.basic_cancel(tag, BasicCancelOptions::default()).await;
                }
            }
            close(&conn, "dispatcher shutting down").await;
        }
    }
}
