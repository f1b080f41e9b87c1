//! Hookhub's delivery side: from the outbox to the subscriber's endpoint.
//!
//! - [`outbox_relay`] moves accepted events from the store's outbox to the queue,
//!   marking them published only after the broker confirmed them; its
//!   [`express_lane`] moves the events of tenants without a backlog while
//!   the main lane works through a backlog.
//! - [`queue`] is the broker: RabbitMQ (lapin, publisher confirms, manual acks)
//!   or an in-process channel for the embedded mode.
//! - [`fan_out`] turns one consumed event into one durable delivery per
//!   matching subscription, then acks.
//! - [`delivery_loop`] attempts due deliveries: the store's
//!   `domain::signer` signs them, [`sender`] POSTs them (through the SSRF
//!   guard's [`guarded_resolver`]), [`retry_schedule`] says when to try again.
//! - [`fair`] shares each of these places out between tenants in turn, so
//!   one tenant's burst never queues another tenant's webhooks behind it.

pub mod config;
pub mod delivery_loop;
pub mod due_alarm;
pub mod endpoint_throttle;
pub mod express_lane;
pub mod fair;
pub mod fan_out;
pub mod guarded_resolver;
pub mod outbox_relay;
pub mod queue;
pub mod retention;
pub mod retry_schedule;
pub mod sender;
pub mod transform;

pub use config::{DeliveryConfig, RelayConfig};
pub use delivery_loop::DeliveryLoop;
pub use outbox_relay::OutboxRelay;
pub use retry_schedule::RetrySchedule;
