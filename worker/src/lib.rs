//! clearhire's back half: the event relay (outbox → bus + deliveries), the bus (in-process or
//! Redis pub/sub), and the apalis workers that dispatch signed webhooks. The `worker` binary runs
//! them on their own, beside api processes; `setup` builds them from the one configuration.
#![forbid(unsafe_code)]

pub mod bus;
pub mod config;
pub mod dispatch;
pub mod queue;
pub mod relay;
pub mod runtime;
pub mod scheduler;
pub mod setup;
pub mod sign;
pub mod smtp;
pub mod ssrf;

pub use bus::{Bus, BusEvent};
pub use runtime::{WorkerConfig, WorkerHandle, start};
