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
pub struct LaneConsumer<M, E> {
    main: M,
    express: E,
    express_open: bool,
}

impl<M, E> LaneConsumer<M, E> {
    /// Both consumers behind one.
    pub fn new(main: M, express: E) -> Self {
        Self { main, express, express_open: true }
    }
}

#[async_trait]
impl<M: Consumer, E: Consumer> Consumer for LaneConsumer<M, E> {
    async fn next(&mut self) -> Option<Incoming> {
        loop {
            let Self { main, express, express_open } = self;
            tokio::select! {
                biased;
                incoming = express.next(), if *express_open => match incoming {
                    Some(incoming) => return Some(incoming),
                    None => *express_open = false,
                },
                incoming = main.next() => return incoming,
            }
        }
    }

    async fn close(&mut self) {
        self.main.close().await;
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
