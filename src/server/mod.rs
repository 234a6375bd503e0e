//! The network side of a shard: its io_uring event loop ([`net`]), connections and the
//! dispatcher that routes each command inline, to another shard, or to a coordinator
//! ([`conn`]), client state ([`client`]),
//! transactions ([`multi`]), pub/sub ([`pubsub`]) and the desk that answers a shard's
//! clients while a script keeps it busy ([`busy`]).

pub mod busy;
pub mod client;
pub mod conn;
pub mod monitor;
pub mod multi;
pub mod net;
pub mod pubsub;
