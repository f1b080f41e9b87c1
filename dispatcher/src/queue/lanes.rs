//! The express lane in process, beside RabbitMQ.
//!
//! A hub that relays and fans out in one process (`hookhub serve`) sends
//! its express lane through an in-process channel straight to its own
//! fan-out: a quiet tenant's event then skips the broker's round trip (a
//! quorum queue's confirm waits for its log's fsync, about 8 ms at the
//! median under a burst on a 2-core box). The channel keeps the queue's
//! contract: the relay deletes the rows only once fan-out acked them,
//! that is once their deliveries are written, so nothing is lost on a
//! crash. Relays of their own (`hookhub relay`) publish the express lane
//! to RabbitMQ's express queue, which every dispatcher also consumes.
use super::{Consumer, EventMessage, Incoming, Lane, Publisher, QueueError};
use async_trait::async_trait;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Publishes each lane through its own publisher.
pub struct LanePublisher {
    /// The main lane's (RabbitMQ).
    pub main: Arc<dyn Publisher>,
    /// The express lane's (the in-process channel).
    pub express: Arc<dyn Publisher>,
}

#[async_trait]
impl Publisher for LanePublisher {
    async fn publish(&self, batch: &[EventMessage], lane: Lane) -> Result<(), QueueError> {
        match lane {
            Lane::Main => self.main.publish(batch, lane).await,
            Lane::Express => self.express.publish(batch, lane).await,
        }
    }

    async fn close(&self) {
        self.main.close().await;
        self.express.close().await;
    }

    async fn waiting(&self) -> Option<u32> {
        self.main.waiting().await
    }
}

/// Takes messages from the main consumer and from the express one, as
/// they come. It ends when the main one does (shutdown, or the broker
/// given up on): an express message not acked then makes its publish
/// fail, and the relay hands its rows back to the outbox.
///
/// The main consumer's `next` is kept across calls rather than dropped
/// when an express message comes first: RabbitMQ's connects inside it,
/// and a connect dropped halfway leaves the broker talking on a channel
/// the client has forgotten.
pub struct LaneConsumer<M, E> {
    /// The main consumer, while no `next` of it is under way.
    main: Option<M>,
    /// Its `next` under way, which hands the consumer back.
    main_next: Option<BoxFuture<'static, (M, Option<Incoming>)>>,
    express: E,
    express_open: bool,
}

impl<M, E> LaneConsumer<M, E> {
    /// Both consumers behind one.
    pub fn new(main: M, express: E) -> Self {
        Self { main: Some(main), main_next: None, express, express_open: true }
    }
}

#[async_trait]
impl<M: Consumer + 'static, E: Consumer> Consumer for LaneConsumer<M, E> {
    async fn next(&mut self) -> Option<Incoming> {
        loop {
            if self.main_next.is_none() {
                let mut main = self.main.take().expect("the main consumer is here when no next is under way");
                self.main_next = Some(Box::pin(async move {
                    let incoming = main.next().await;
                    (main, incoming)
                }));
            }
            let Self { main_next, express, express_open, .. } = self;
            let main_next = main_next.as_mut().expect("set above");
            tokio::select! {
                biased;
                incoming = express.next(), if *express_open => match incoming {
                    Some(incoming) => return Some(incoming),
                    None => *express_open = false,
                },
                (main, incoming) = main_next => {
                    self.main_next = None;
                    self.main = Some(main);
                    return incoming;
                }
            }
        }
    }

    /// Closes both. Fan-out closes only after `next` said the main one
    /// ended, which hands it back; one still inside a `next` under way is
    /// left to be dropped with it.
    async fn close(&mut self) {
        if let Some(main) = self.main.as_mut() {
            main.close().await;
        }
        self.express.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::in_process;
    use crate::queue::tests::event as message;
    use std::time::Duration;

    #[tokio::test]
    async fn each_lane_goes_through_its_own_channel_to_one_consumer() {
        let (main, main_rx) = in_process::channel(4);
        let (express, express_rx) = in_process::channel(4);
        let publisher = LanePublisher { main: Arc::new(main), express: Arc::new(express) };
        let mut consumer = LaneConsumer::new(main_rx, express_rx);
        let publishing = tokio::spawn(async move {
            publisher.publish(&[message(1)], Lane::Main).await.unwrap();
            publisher.publish(&[message(2)], Lane::Express).await.unwrap();
            publisher
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            let incoming = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap();
            seen.extend(incoming.message.unwrap().into_iter().map(|m| m.event_id));
            incoming.acker.ack().await;
        }
        assert_eq!(seen, ["evt_1", "evt_2"]);
        let publisher = publishing.await.unwrap();
        drop(publisher);
        assert!(consumer.next().await.is_none(), "ends once the main lane is closed");
    }
}
