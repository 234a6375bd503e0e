//! The `libellule` binary: flags -> configuration -> shards.

use libellule::config::{Config, ConfigError};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
