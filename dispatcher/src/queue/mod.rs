//! The broker between the outbox relay and the dispatcher.
//!
//! Two implementations of one contract: [`amqp`] (RabbitMQ, production) and
//! [`in_process`] (a channel, for the embedded single-process mode). In both,
//! `publish` returns only once every message is safe on the other side:
//! confirmed by RabbitMQ, or acknowledged by the in-process consumer.

pub mod amqp;
pub mod in_process;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What travels through the queue: the event to fan out, not its payload,
/// which stays in the store (one copy, and no PHI in the broker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// The event id (`evt_...`).
    pub event_id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Its type, to pick subscriptions without loading the event.
    pub event_type: String,
}

/// Why the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// RabbitMQ refused, dropped the connection, or nacked.
    #[error("broker: {0}")]
    Broker(String),
    /// The broker accepted the message but routed it nowhere.
    #[error("broker returned the message as unroutable")]
    Unroutable,
    /// The in-process consumer is gone (shutting down).
    #[error("queue closed")]
    Closed,
}

impl From<lapin::Error> for QueueError {
    fn from(e: lapin::Error) -> Self {
        Self::Broker(e.to_string())
    }
}

/// Sends messages and waits until they are safe.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes the batch; `Ok` only once every message is confirmed.
    async fn publish(&self, batch: &[EventMessage]) -> Result<(), QueueError>;
}

/// Settles one received message.
#[async_trait]
pub trait Acker: Send {
    /// The message is handled; the broker may forget it.
    async fn ack(self: Box<Self>);
    /// The message cannot be handled (malformed): drop it without requeue.
    async fn reject(self: Box<Self>);
}

/// One received message: its body (if it parsed) and how to settle it.
pub struct Incoming {
    /// The message, or why its body did not parse.
    pub message: Result<EventMessage, String>,
    /// Settles it.
    pub acker: Box<dyn Acker>,
}

/// Receives messages with manual acknowledgement.
#[async_trait]
pub trait Consumer: Send {
    /// The next message; `None` once the queue is closed for good.
    async fn next(&mut self) -> Option<Incoming>;
}
