//! # Libellule
//!
//! An in-memory data store that speaks the Redis protocol, built the way Dragonfly is:
//! one shard per CPU core, shared-nothing, io_uring for the network.
//!
//! A tour of the modules, in the order a request meets them:
//!
//! - [`config`]: every command-line flag (Redis and Dragonfly spellings), the flag file,
//!   and the CONFIG GET/SET parameter table.
//! - [`shard`]: the executor pool ([`shard::runtime`]): one glommio executor per shard,
//!   pinned to a CPU, joined to the others by a channel mesh. [`shard::ShardData`] is what
//!   a shard owns; [`shard::Shards`] runs closures on other shards; [`shard::locks`] makes
//!   cross-shard commands atomic.
//! - [`server`]: each shard's io_uring event loop ([`server::net`]: multishot accept and
//!   recv with a provided-buffer ring, one batched send per connection per loop), the
//!   connection state and the dispatcher ([`server::conn`]) that runs a command inline
//!   when its keys are local and otherwise hands it to another shard or a coordinator.
//! - [`protocol`]: the RESP2/RESP3 request parser (nom) and the reply writer. It knows
//!   nothing of the server.
//! - [`commands`]: the registry (name, arity, flags, key positions, handler) and one file
//!   per command family.
//! - [`scripting`]: EVAL's sandboxed Lua 5.1 engine, one per shard, the conversions
//!   between Redis replies and Lua values, and the `cjson`, `cmsgpack`, `bit` and
//!   `struct` libraries Redis gives scripts.
//! - [`storage`]: a shard's databases: keys, values and their encodings, expiry.
//! - [`logging`]: the log format.
//! - [`metrics`](crate::metrics): Prometheus metrics: shard totals published from each shard's timer, the
//!   exporter's HTTP listener (`--prometheus_port`) and `GET /metrics` on the main port.
//! - [`persistence`]: RDB snapshots (SAVE/BGSAVE, point-in-time without fork, written
//!   through glommio's DMA file API), the save schedule and the start-up load.
//! - [`ops`]: systemd notifications (`READY=1`, `STOPPING=1`, watchdog) and graceful
//!   shutdown on SIGTERM/SIGINT.
//!
//! See `docs/decisions.md` for the design choices and why they were made.

pub mod commands;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod persistence;
pub mod protocol;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod storage;

/// The version reported by `--version`, `INFO` and `HELLO`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Redis version Libellule answers as (`redis_version` in INFO; clients check it).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// Starts the server with `config` and blocks until it stops.
pub fn start(config: config::Config) -> Result<(), String> {
    // Before any thread starts, so every thread inherits the blocked signals.
    ops::install_signal_handling()?;
    let n = shard::runtime::shard_count(&config);
    shard::clock::init();
    log::info!(
        "latency clock: {}",
        if shard::clock::uses_tsc() {
            "TSC"
        } else {
            "monotonic"
        }
    );
    log::info!(
        "Libellule {} starting: {} shard(s), port {}, bind {}",
        VERSION,
        n,
        config.port,
        config.bind.join(" ")
    );
    log::info!("configuration: {}", config.summary());
    if config.binds_non_loopback() && config.requirepass.is_empty() {
        log::warn!(
            "WARNING: listening on a non-loopback address ({}) with no password: anyone who can reach this port can read and change all data. Set --requirepass.",
            config.bind.join(" ")
        );
    }
    if config.prometheus_port != 0 && config.prometheus_port == config.port {
        return Err(format!(
            "--prometheus_port {} is the main port: the main port already answers GET /metrics; give the exporter another port or 0",
            config.port
        ));
    }
    let metrics_ip = match config.bind.first() {
        Some(b) => shard::runtime::parse_bind(b)?,
        None => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    crate::metrics::init(metrics_ip, config.prometheus_port)?;
    persistence::prepare_start(&config)?;
    shard::runtime::run(config)
}
