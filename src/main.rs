//! The `libellule` binary: flags -> configuration -> shards.

use libellule::config::{Config, ConfigError};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options. `thp:always` backs the large keyspace tables with transparent huge
/// pages: a lookup in a table of millions of keys otherwise pays a TLB miss (a nested page
/// walk on a VM) per cache miss. Redis turns THP off because fork() copy-on-write makes
/// huge pages costly; Libellule never forks, so it can use them. `background_thread`
/// (Redis's `jemalloc-bg-thread yes`): freed pages go back to the system after jemalloc's
/// decay time even when the server is idle; without it jemalloc purges only during
/// allocations, and an idle server kept its peak RSS (docs/reliability.md, soak test).
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 52] = b"thp:always,metadata_thp:auto,background_thread:true\0";

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
