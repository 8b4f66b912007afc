//! clearhire's back half: the event relay (outbox → bus + deliveries), the bus (in-process or
//! Redis pub/sub), and the apalis workers that dispatch signed webhooks.
#![forbid(unsafe_code)]

pub mod bus;
pub mod dispatch;
pub mod queue;
pub mod relay;
pub mod runtime;
pub mod scheduler;
pub mod sign;
pub mod smtp;
pub mod ssrf;

pub use bus::{Bus, BusEvent};
pub use runtime::{WorkerConfig, WorkerHandle, start};
