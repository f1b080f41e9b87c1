//! The broker between the outbox relay and the dispatcher.
//!
//! Two implementations of one contract: [`amqp`] (RabbitMQ, production) and
//! [`in_process`] (a channel, for the embedded single-process mode). In both,
//! `publish` returns only once every message is safe on the other side:
//! confirmed by RabbitMQ, or acknowledged by the in-process consumer.
//!
//! One queue message carries a relay batch of events, not one event: the
//! broker's cost is per message (routing, the quorum log, confirm, ack), so
//! at load this divides RabbitMQ's work by the batch size. The events of a
//! message are fanned out in one transaction and acked together.

pub mod amqp;
pub mod in_process;
pub mod lanes;

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
    /// Its ordering key, if it has one: fan-out tells the store once the
    /// event's deliveries are written, so later events of the key may go.
    /// Absent from the messages of relays that predate ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

/// Most events in one queue message; larger relay batches are split.
pub const MAX_EVENTS_PER_MESSAGE: usize = 128;

/// The body of one queue message: a JSON array of events.
pub fn encode(batch: &[EventMessage]) -> Vec<u8> {
    serde_json::to_vec(batch).expect("EventMessage serialises")
}

/// Reads a queue message: an array of events, or the single event object
/// that relays sent before messages were batched (still in a queue during
/// an upgrade).
pub fn decode(body: &[u8]) -> Result<Vec<EventMessage>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        Batch(Vec<EventMessage>),
        Single(EventMessage),
    }
    match serde_json::from_slice(body) {
        Ok(Body::Batch(batch)) => Ok(batch),
        Ok(Body::Single(one)) => Ok(vec![one]),
        Err(e) => Err(e.to_string()),
    }
}

/// Why the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The AMQP client failed: RabbitMQ refused or dropped the connection.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// RabbitMQ answered, but not with what a safe publish needs (a nack,
    /// no confirm, no connection in time).
    #[error("broker: {0}")]
    Refused(&'static str),
    /// The broker accepted the message but routed it nowhere.
    #[error("broker returned the message as unroutable")]
    Unroutable,
    /// The in-process consumer is gone (shutting down).
    #[error("queue closed")]
    Closed,
}

/// Which of the two queues a batch goes to.
///
/// The main queue carries the backlog and is kept short (see
/// `crate::outbox_relay`), so a message in it waits for a consumer's free
/// prefetch slot behind the backlog's. The express queue carries only
/// events of tenants without a backlog and has prefetch slots of its own,
/// so their events reach fan-out's intake, which serves tenants in turn,
/// while the main queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Everything the relay's main claim takes.
    Main,
    /// The events of tenants without a backlog, while the main lane is busy.
    Express,
}

/// Sends messages and waits until they are safe.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes the batch to `lane` (as few messages as
    /// [`MAX_EVENTS_PER_MESSAGE`] allows); `Ok` only once every message is
    /// confirmed.
    async fn publish(&self, batch: &[EventMessage], lane: Lane) -> Result<(), QueueError>;

    /// Lets go of the broker at shutdown, before the runtime stops; the
    /// next `publish` would connect again.
    async fn close(&self) {}

    /// Messages published to the main lane and not yet taken by any
    /// consumer, when the broker says (`None`: unknown, or a queue that
    /// cannot run ahead).
    async fn waiting(&self) -> Option<u32> {
        None
    }
}

/// Settles one received message.
#[async_trait]
pub trait Acker: Send {
    /// The message is handled; the broker may forget it.
    async fn ack(self: Box<Self>);
    /// The message cannot be handled (malformed): drop it without requeue.
    async fn reject(self: Box<Self>);
}

/// One received message: its events (if the body parsed) and how to settle it.
pub struct Incoming {
    /// The message's events, or why its body did not parse.
    pub message: Result<Vec<EventMessage>, String>,
    /// The broker delivered it before, to a consumer that did not ack it
    /// (its connection closed, or it crashed).
    pub redelivered: bool,
    /// Settles it.
    pub acker: Box<dyn Acker>,
}

impl Incoming {
    /// How many events it carries (a body that did not parse counts one).
    pub fn events(&self) -> usize {
        self.message.as_ref().map_or(1, Vec::len)
    }
}

/// Receives messages with manual acknowledgement.
#[async_trait]
pub trait Consumer: Send {
    /// The next message; `None` once the queue is closed for good.
    async fn next(&mut self) -> Option<Incoming>;

    /// Lets go of the broker at shutdown, once every message taken is
    /// settled; messages still unacked go back to the queue.
    async fn close(&mut self) {}
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message of tenant `ten_1`'s event `evt_{n}`.
    pub(crate) fn event(n: u32) -> EventMessage {
        EventMessage {
            event_id: format!("evt_{n}"),
            tenant_id: "ten_1".into(),
            event_type: "client.created".into(),
            ordering_key: None,
        }
    }

    #[test]
    fn a_batch_round_trips() {
        let batch = vec![event(1), event(2)];
        assert_eq!(decode(&encode(&batch)).unwrap(), batch);
    }

    #[test]
    fn a_single_event_from_an_older_relay_still_reads() {
        let old = serde_json::to_vec(&event(7)).unwrap();
        assert_eq!(decode(&old).unwrap(), vec![event(7)]);
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_batch() {
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"event_id": 1}"#).is_err());
    }
}
