//! Lua scripting (EVAL and friends): a sandboxed Lua 5.1 state per shard.
//!
//! - [`engine`]: the Lua state, the script cache, the `redis` API, running one script on
//!   the shard that owns its keys, the time limit and SCRIPT KILL.
//! - [`convert`]: Redis replies to Lua values and back, as Redis 7.0 converts them.
//! - [`libs`]: the libraries Redis bundles for scripts (`cjson`, `cmsgpack`, `bit`,
//!   `struct`), rewritten in Rust on the Lua C API.
//!
//! The commands live in [`crate::commands::scripting`].

pub mod convert;
pub mod engine;
pub mod libs;
