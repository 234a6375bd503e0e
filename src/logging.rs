//! Logging to stderr through `env_logger`, in a format journald shows well.

use std::io::Write;

/// Initialises the logger with a level name (error, warn, info, debug, trace).
/// `RUST_LOG` overrides it when set.
pub fn init(level: &str) {
    let mut b = env_logger::Builder::new();
    b.parse_filters(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(|buf, record| {
        writeln!(
            buf,
            "{} {:<5} {}",
            buf.timestamp_millis(),
            record.level(),
            record.args()
        )
    });
    let _ = b.try_init();
}
