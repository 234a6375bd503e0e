//! Snapshots: fork-less, point-in-time RDB files written through io_uring, and the
//! start-up load.
//!
//! - [`file`]: the file-level RDB v10 format (header, AUX fields, opcodes, EOF, CRC64).
//! - [`cut`]: the per-database state that makes a snapshot point-in-time without a copy
//!   (epoch stamps; mutating paths serialize an entry before changing it).
//! - [`save`]: SAVE/BGSAVE: starts the cut on every shard, runs each shard's walker, and
//!   gathers their chunks in the writer.
//! - [`writer`]: the temporary file written through glommio's DMA API (O_DIRECT), CRC64
//!   computed on the way, fsync, rename over `--dbfilename`, directory fsync.
//! - [`loader`]: the start-up load (streamed parse, keys routed to their shards,
//!   `-LOADING` meanwhile).
//! - [`schedule`]: `--save` points, `--snapshot_cron`, BGSAVE SCHEDULE, the save on
//!   SIGTERM.
//!
//! The process-wide status (INFO persistence, LASTSAVE) lives in atomics here: it is
//! written a few times per save and read by INFO, never on a request path, except
//! [`loading`], one relaxed load per command while the dispatcher checks `-LOADING`.

pub mod cut;
pub mod file;
pub mod loader;
pub mod save;
pub mod schedule;
pub mod writer;

use crate::config::Config;
use crate::shard::MAX_SHARDS;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// The reply to data commands while the dataset is loading.
pub const LOADING_ERR: &[u8] = b"LOADING Libellule is loading the dataset in memory";

static LOADING: AtomicBool = AtomicBool::new(false);
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);
static LAST_SAVE: AtomicU64 = AtomicU64::new(0);
static LAST_OK: AtomicBool = AtomicBool::new(true);
static LAST_TRY: AtomicU64 = AtomicU64::new(0);
static LAST_DURATION: AtomicI64 = AtomicI64::new(-1);
static CURRENT_START: AtomicU64 = AtomicU64::new(0);
static SAVES_OK: AtomicU64 = AtomicU64::new(0);
static SAVES_FAILED: AtomicU64 = AtomicU64::new(0);
static LAST_KEYS: AtomicU64 = AtomicU64::new(0);
static LAST_BYTES: AtomicU64 = AtomicU64::new(0);
static SAVE_CONFIGURED: AtomicBool = AtomicBool::new(false);
static DIRTY: [AtomicU64; MAX_SHARDS] = [const { AtomicU64::new(0) }; MAX_SHARDS];

static STARTUP_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The snapshot to load at start, as [`prepare_start`] found it.
pub fn startup_file() -> Option<std::path::PathBuf> {
    STARTUP_FILE.get().cloned()
}

/// Unix seconds now.
pub fn unix_secs() -> u64 {
    crate::shard::now_ms() / 1000
}

/// True while the start-up load runs: data commands answer [`LOADING_ERR`].
#[inline]
pub fn loading() -> bool {
    LOADING.load(Ordering::Relaxed)
}

/// Sets or clears the loading state.
pub fn set_loading(on: bool) {
    LOADING.store(on, Ordering::SeqCst);
}

/// True while a snapshot is being written.
pub fn in_progress() -> bool {
    IN_PROGRESS.load(Ordering::SeqCst)
}

/// Unix time of the last successful save (start time of the server before any).
pub fn last_save() -> u64 {
    LAST_SAVE.load(Ordering::Relaxed)
}

/// True when the last save succeeded (or none was tried).
pub fn last_ok() -> bool {
    LAST_OK.load(Ordering::Relaxed)
}

/// Unix time of the last save attempt (for the retry delay after a failure).
pub fn last_try() -> u64 {
    LAST_TRY.load(Ordering::Relaxed)
}

/// Seconds the last save took (-1 before any).
pub fn last_duration() -> i64 {
    LAST_DURATION.load(Ordering::Relaxed)
}

/// Saves that succeeded and that failed since start.
pub fn counts() -> (u64, u64) {
    (
        SAVES_OK.load(Ordering::Relaxed),
        SAVES_FAILED.load(Ordering::Relaxed),
    )
}

/// Claims the right to save; false when a save is already running.
pub(crate) fn begin() -> bool {
    let ok = IN_PROGRESS
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if ok {
        let now = unix_secs();
        CURRENT_START.store(now, Ordering::Relaxed);
        LAST_TRY.store(now, Ordering::Relaxed);
    }
    ok
}

/// Records the outcome of the save [`begin`] claimed.
pub(crate) fn end(ok: bool, secs: i64, keys: u64, bytes: u64) {
    if ok {
        LAST_SAVE.store(unix_secs(), Ordering::Relaxed);
        SAVES_OK.fetch_add(1, Ordering::Relaxed);
        LAST_KEYS.store(keys, Ordering::Relaxed);
        LAST_BYTES.store(bytes, Ordering::Relaxed);
    } else {
        SAVES_FAILED.fetch_add(1, Ordering::Relaxed);
    }
    LAST_OK.store(ok, Ordering::Relaxed);
    LAST_DURATION.store(secs, Ordering::Relaxed);
    IN_PROGRESS.store(false, Ordering::SeqCst);
}

/// Called once at start: the last-save time starts at the start time (as Redis's), the
/// directory must exist, and the loading state is set when there is a file to load.
/// Returns the file to load, if any.
pub fn prepare_start(config: &Config) -> Result<Option<std::path::PathBuf>, String> {
    LAST_SAVE.store(unix_secs(), Ordering::Relaxed);
    note_config(config);
    let dir = std::path::Path::new(&config.dir);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("Can't chdir to '{}': Not a directory", config.dir)),
        Err(e) => return Err(format!("Can't chdir to '{}': {e}", config.dir)),
    }
    let path = dir.join(&config.dbfilename);
    if path.exists() {
        set_loading(true);
        let _ = STARTUP_FILE.set(path.clone());
        Ok(Some(path))
    } else {
        Ok(None)
    }
}

/// Mirrors what the signal thread needs of the configuration (whether `save` points
/// are configured). Called by shard 0 at start and after each CONFIG SET.
pub fn note_config(config: &Config) {
    SAVE_CONFIGURED.store(!config.save.is_empty(), Ordering::Relaxed);
}

/// True when `save` points are configured (SIGTERM and SHUTDOWN then save).
pub fn save_configured() -> bool {
    SAVE_CONFIGURED.load(Ordering::Relaxed)
}

/// Publishes shard `id`'s count of changes (from its timer), for the save schedule.
pub fn publish_dirty(id: usize, dirty: u64) {
    if let Some(slot) = DIRTY.get(id) {
        slot.store(dirty, Ordering::Relaxed);
    }
}

/// Changes since the last save, summed over shards as last published.
pub fn dirty_published(nshards: usize) -> u64 {
    DIRTY
        .iter()
        .take(nshards)
        .map(|d| d.load(Ordering::Relaxed))
        .sum()
}

/// The `# Persistence` section of INFO. `dirty` is the sum of the shards' changes.
pub fn info_section(config: &Config, dirty: u64) -> String {
    let now = unix_secs();
    let running = in_progress();
    let current = if running {
        now.saturating_sub(CURRENT_START.load(Ordering::Relaxed)) as i64
    } else {
        -1
    };
    let (ok, failed) = counts();
    format!(
        "# Persistence\r\nloading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_saves_failed:{}\r\nrdb_last_cow_size:0\r\nrdb_last_saved_keys:{}\r\nrdb_last_file_bytes:{}\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\nrdb_saves_configured:{}\r\nrdb_save_schedule:{}\r\nsnapshot_cron:{}\r\nrdb_dir:{}\r\nrdb_filename:{}\r\n\r\n",
        u8::from(loading()),
        dirty,
        u8::from(running),
        last_save(),
        if last_ok() { "ok" } else { "err" },
        LAST_DURATION.load(Ordering::Relaxed),
        current,
        ok,
        failed,
        LAST_KEYS.load(Ordering::Relaxed),
        LAST_BYTES.load(Ordering::Relaxed),
        u8::from(!config.save.is_empty()),
        config.save_raw,
        config.snapshot_cron,
        config.dir,
        config.dbfilename,
    )
}
