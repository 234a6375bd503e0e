//! Per-shard storage: the databases of one shard, their values and expiry.

pub mod chunked;
pub mod compact;
pub mod db;
pub mod entry;
pub mod hash;
pub mod hyperloglog;
pub mod index;
pub mod key;
pub mod list;
pub mod rdb;
pub mod set;
pub mod stream;
pub mod table;
pub mod value;
pub mod zset;

pub use db::{Db, Entry, EvictPolicy, Evicted};
pub use entry::Detached;
pub use hash::Hash;
pub use key::CompactKey;
pub use list::List;
pub use set::Set;
pub use stream::Stream;
pub use value::{Value, ValueRef, ValueType};
pub use zset::ZSet;
