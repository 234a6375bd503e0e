//! Per-shard storage: the databases of one shard, their values and expiry.

pub mod db;
pub mod value;

pub use db::{Db, Entry};
pub use value::{Value, ValueType};
