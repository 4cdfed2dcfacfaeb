//! Messages to families from the hub's outbox (`store::outbox`): what
//! queues them ([`queue`] receipts, [`reminders`]) and what they say
//! ([`render`]).

pub mod queue;
pub mod reminders;
pub mod render;
