//! The embedded queue: a bounded channel whose "confirm" is the consumer's ack.
//!
//! Because `publish` waits for the ack, the relay marks an outbox row
//! published only after the dispatcher durably created its deliveries: a
//! crash loses nothing even though the channel itself lives in memory.
//!
//! Both lanes share the channel. Nothing waits in it: the consumer moves
//! each message into fan-out's intake, which serves tenants in turn, as it
//! arrives. What holds a quiet tenant's event back here is the relay's
//! places, each held until its batch is written, and the express lane has
//! places of its own.
use super::{Acker, Consumer, EventMessage, Incoming, Lane, Publisher, QueueError, MAX_EVENTS_PER_MESSAGE};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

type Envelope = (Vec<EventMessage>, oneshot::Sender<()>);

/// Creates a connected publisher and consumer.
pub fn channel(capacity: usize) -> (InProcessPublisher, InProcessConsumer) {
    let (tx, rx) = mpsc::channel(capacity);
    (InProcessPublisher { tx }, InProcessConsumer { rx })
}

/// The sending half.
#[derive(Clone)]
pub struct InProcessPublisher {
    tx: mpsc::Sender<Envelope>,
}

/// The receiving half.
pub struct InProcessConsumer {
    rx: mpsc::Receiver<Envelope>,
}

#[async_trait]
impl Publisher for InProcessPublisher {
    async fn publish(&self, batch: &[EventMessage], _lane: Lane) -> Result<(), QueueError> {
        let mut acks = Vec::new();
        for chunk in batch.chunks(MAX_EVENTS_PER_MESSAGE) {
            let (ack_tx, ack_rx) = oneshot::channel();
            self.tx.send((chunk.to_vec(), ack_tx)).await.map_err(|_| QueueError::Closed)?;
            acks.push(ack_rx);
        }
        for ack in acks {
            ack.await.map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}

struct InProcessAcker(oneshot::Sender<()>);

#[async_trait]
impl Acker for InProcessAcker {
    async fn ack(self: Box<Self>) {
        let _ = self.0.send(());
    }

    async fn reject(self: Box<Self>) {
        // Cannot happen for messages we serialised ourselves; dropping the
        // sender tells the publisher the message was not taken.
    }
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn next(&mut self) -> Option<Incoming> {
        let (message, ack) = self.rx.recv().await?;
        Some(Incoming { message: Ok(message), redelivered: false, acker: Box::new(InProcessAcker(ack)) })
    }
}
