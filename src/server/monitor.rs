//! MONITOR: every command any client runs, streamed to the clients in monitor mode.
//!
//! The registry of monitors is global (a mutex-protected list) but the hot path only reads
//! an atomic counter: with no monitor connected, a command pays one relaxed load.

use crate::protocol::parse::Args;
use crate::shard::{ShardData, Shards};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static MONITORS: Mutex<Vec<(u64, usize)>> = Mutex::new(Vec::new());

/// True when at least one client is in MONITOR mode.
#[inline]
pub fn active() -> bool {
    COUNT.load(Ordering::Relaxed) > 0
}

/// Registers client `id` homed on `shard` as a monitor.
pub fn add(id: u64, shard: usize) {
    let mut m = MONITORS.lock().expect("monitors");
    if !m.iter().any(|(i, _)| *i == id) {
        m.push((id, shard));
        COUNT.store(m.len(), Ordering::Relaxed);
    }
}

/// Unregisters client `id`.
pub fn remove(id: u64) {
    let mut m = MONITORS.lock().expect("monitors");
    m.retain(|(i, _)| *i != id);
    COUNT.store(m.len(), Ordering::Relaxed);
}

/// Formats a command the way Redis's MONITOR shows it and sends it to every monitor.
pub fn feed(shards: &Shards, data: &mut ShardData, db: usize, addr: &str, args: &Args) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = String::new();
    let _ = write!(
        line,
        "+{}.{:06} [{} {}]",
        now.as_secs(),
        now.subsec_micros(),
        db,
        addr
    );
    for a in args.iter() {
        line.push_str(" \"");
        for &c in a {
            match c {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                0x20..=0x7e => line.push(c as char),
                _ => {
                    let _ = write!(line, "\\x{c:02x}");
                }
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    let targets: Vec<(u64, usize)> = MONITORS.lock().expect("monitors").clone();
    for (id, shard) in targets {
        let bytes = line.clone().into_bytes();
        shards.post(
            shard,
            data,
            Box::new(move |d: &mut ShardData| d.push_to_client(id, bytes)),
        );
    }
}
