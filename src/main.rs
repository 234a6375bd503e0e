//! The `libellule` binary: flags -> configuration -> shards.

use libellule::config::{Config, ConfigError};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options, chosen by measuring RSS per key (docs/keyspace.md, "Process-level
/// costs"):
/// - `slab_sizes:64-256:8`: the size classes of key blocks (64 to 256 bytes) get slabs of
///   8 pages instead of 1-2, so jemalloc's per-slab metadata (an extent record per slab)
///   costs about 0.5 byte per key instead of 4.
/// - `metadata_thp:disabled` and the default `thp`: jemalloc's own memory stays on 4 KiB
///   pages (`thp:always` added 17 MB to the idle RSS and rounded growth up to 2 MiB
///   pages); the key table's large arrays ask for transparent huge pages themselves
///   (`storage::table`), which is where they pay off.
/// - `background_thread` (Redis's `jemalloc-bg-thread yes`): freed pages go back to the
///   system after jemalloc's decay time even when the server is idle; without it jemalloc
///   purges only during allocations, and an idle server kept its peak RSS
///   (docs/reliability.md, soak test).
///
/// An array reference, so a thin pointer like C's `const char *malloc_conf`.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 65] =
    b"slab_sizes:64-256:8,metadata_thp:disabled,background_thread:true\0";

fn main() {
    let config = match Config::from_args(std::env::args()) {
        Ok(c) => c,
        Err(ConfigError::Exit(text)) => {
            println!("{text}");
            std::process::exit(0);
        }
        Err(ConfigError::Invalid(msg)) => {
            eprintln!("libellule: {msg}");
            std::process::exit(1);
        }
    };
    libellule::logging::init(&config.log_level);
    if let Err(e) = libellule::start(config) {
        log::error!("{e}");
        eprintln!("libellule: {e}");
        std::process::exit(1);
    }
}
