//! Lua scripting (EVAL, EVALSHA, FUNCTION).
//!
//! For now this holds [`libs`], the C libraries Redis bundles for scripts (`cjson`,
//! `cmsgpack`, `bit`, `struct`), rewritten in Rust on top of the Lua C API.

pub mod libs;
