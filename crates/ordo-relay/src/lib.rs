//! The outbox relays `ordo worker` runs: channel connections (availability, shipment
//! confirmations, refunds, EDI documents) and the event bus, each from its own outbox cursor,
//! in its own thread with its own database connection, so connectors can run on other machines
//! than the engine and one slow channel never holds up another.

pub mod config;
pub mod connectors;
pub mod delivery;
pub mod poll;
pub mod relay;
pub mod worker;

pub use config::RelayConfig;
pub use delivery::{DeliveryError, RateLimiter, RetryPolicy};
pub use relay::{BusRelay, ChannelRelay, RelayStats};
