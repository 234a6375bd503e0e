//! SAVE and BGSAVE: one snapshot of every shard, gathered into one RDB file.
//!
//! [`run`] (on the shard that received the command) claims the save, opens the
//! temporary file and writes the header, then asks every shard to start its cut
//! ([`begin_on_shard`]: each database's epoch is bumped and a walker task spawned on
//! that shard). Walkers send chunks (SELECTDB + serialized keys) over one bounded
//! channel; the writer appends them in arrival order (an RDB file may select a
//! database any number of times), so the bytes in flight stay bounded: a walker waits
//! while the channel is full. When every walker has finished, the writer closes the
//! file with EOF and the CRC64, and renames it over the target.

use super::cut::DbSnap;
use super::file::{self, AuxInfo, Recency};
use super::writer::RdbWriter;
use crate::shard::locks::{whole_shard, LockKey};
use crate::shard::{ShardData, Shards};
use futures_channel::mpsc;
use futures_lite::StreamExt;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Entries a walker visits between yields.
const STEP_ENTRIES: usize = 256;
/// Chunks queued for the writer (plus one per shard) before walkers wait.
const CHANNEL_CHUNKS: usize = 8;
/// A walker sends its chunk once it holds this many bytes (or at the end).
const CHUNK_BYTES: usize = 64 << 10;

/// Why a save did not happen.
#[derive(Debug)]
pub enum SaveError {
    /// Another save is running.
    InProgress,
    /// The save failed (the text is logged and the old file left alone).
    Failed(String),
}

/// A save whose cut is taken: the walkers run; [`finish`] writes the file.
pub struct Started {
    rx: mpsc::Receiver<Vec<u8>>,
    failed: Arc<AtomicBool>,
    keys_total: Arc<std::sync::atomic::AtomicU64>,
    start: Instant,
    ctime: u64,
    used_mem: u64,
}

/// SAVE (`background` false) or a save from the schedule: claims, cuts and writes.
pub async fn run(shards: Rc<Shards>, background: bool) -> Result<(), SaveError> {
    if !claim() {
        return Err(SaveError::InProgress);
    }
    let st = start(&shards, background, false).await;
    finish(&shards, st).await
}

/// Claims the right to save (false when a save runs); follow with [`start`] and
/// [`finish`].
pub fn claim() -> bool {
    super::begin()
}

/// Takes the cut on every shard (each bumps its epoch and spawns its walker). Writes
/// that any shard runs after this returns are not in the snapshot. `locked`: the
/// caller holds every shard's whole-shard lock already (BGSAVE inside EXEC, which
/// locks every shard for a keyless command), so the cut does not take them again.
pub async fn start(shards: &Rc<Shards>, background: bool, locked: bool) -> Started {
    if background {
        log::info!("Background saving started");
    } else {
        log::info!("DB saved on disk: starting");
    }
    let (tx, rx) = mpsc::channel::<Vec<u8>>(CHANNEL_CHUNKS);
    let failed = Arc::new(AtomicBool::new(false));
    let keys_total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ctime = super::unix_secs();
    let used_mem = used_memory();
    {
        let failed = failed.clone();
        let keys_total = keys_total.clone();
        // The cut is one message round across shards, not one instant: it runs under
        // the whole-shard lock of every shard (what a transaction with a global
        // command takes), so a cross-shard MSET, EXEC, script or FLUSHALL is wholly
        // before or wholly after the cut on every shard. Only the round itself waits
        // (single-shard commands queue behind the locks for that long).
        let all: BTreeMap<usize, Vec<LockKey>> =
            (0..shards.n).map(|s| (s, vec![whole_shard()])).collect();
        if !locked {
            shards.lock(&all).await;
        }
        shards
            .run_on_all(move |d| begin_on_shard(d, tx.clone(), failed.clone(), keys_total.clone()))
            .await;
        if !locked {
            shards.unlock(&all).await;
        }
    }
    Started {
        rx,
        failed,
        keys_total,
        start: Instant::now(),
        ctime,
        used_mem,
    }
}

/// Writes the file of a started save and records the outcome (INFO, LASTSAVE, the
/// changes counter).
pub async fn finish(shards: &Rc<Shards>, st: Started) -> Result<(), SaveError> {
    let start = st.start;
    let r = write_snapshot(shards, st).await;
    let secs = start.elapsed().as_secs() as i64;
    match r {
        Ok((keys, bytes)) => {
            // Changes made before the cut are in the file.
            shards
                .run_on_all(|d| {
                    d.dirty = d.dirty.saturating_sub(d.dirty_at_save);
                    d.dirty_at_save = 0;
                    super::publish_dirty(d.id, d.dirty);
                })
                .await;
            super::end(true, secs, keys, bytes);
            log::info!(
                "DB saved on disk: {keys} keys, {bytes} bytes in {:.3} s",
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            super::end(false, secs, 0, 0);
            log::error!("Snapshot failed: {e}. The previous snapshot file is left alone.");
            Err(SaveError::Failed(e))
        }
    }
}

/// The eviction policy's idle/frequency opcode choice, as Redis's `rdbSaveKeyValuePair`.
fn recency_of(d: &ShardData) -> Recency {
    let p = d.config.maxmemory_policy.to_ascii_lowercase();
    let clock = d.lru_clock();
    if p.contains("lfu") {
        Recency::Freq(clock)
    } else if p.contains("lru") {
        Recency::Idle(clock)
    } else {
        Recency::None
    }
}

fn compression(d: &ShardData) -> bool {
    !d.config
        .extra
        .get("rdbcompression")
        .is_some_and(|v| v.eq_ignore_ascii_case("no"))
}

async fn write_snapshot(shards: &Rc<Shards>, st: Started) -> Result<(u64, u64), String> {
    let Started {
        mut rx,
        failed,
        keys_total,
        ctime,
        used_mem,
        ..
    } = st;
    let (dir, filename) = {
        let d = shards.data.borrow();
        (d.config.dir.clone(), d.config.dbfilename.clone())
    };
    let header = file::header(&AuxInfo { ctime, used_mem });
    let mut err = None;
    let mut w = match RdbWriter::create(&dir, &filename).await {
        Ok(mut w) => match w.write(&header).await {
            Ok(()) => Some(w),
            Err(e) => {
                err = Some(e);
                w.abort().await;
                None
            }
        },
        Err(e) => {
            err = Some(e);
            None
        }
    };
    if err.is_some() {
        failed.store(true, Ordering::Relaxed);
    }
    // Every walker holds a sender; the stream ends when the last one finishes. After a
    // failure the chunks are drained (the walkers still stamp every entry).
    while let Some(chunk) = rx.next().await {
        if let Some(out) = w.as_mut() {
            if let Err(e) = out.write(&chunk).await {
                failed.store(true, Ordering::Relaxed);
                err = Some(e);
                if let Some(out) = w.take() {
                    out.abort().await;
                }
            }
        }
    }
    let (Some(mut w), None) = (w, err.clone()) else {
        return Err(err.unwrap_or_else(|| "snapshot writer lost".into()));
    };
    if let Err(e) = w.write(&file::trailer()).await {
        w.abort().await;
        return Err(e);
    }
    let bytes = w.finish().await?;
    Ok((keys_total.load(Ordering::Relaxed), bytes))
}

/// Memory in use (RSS), for the `used-mem` AUX field.
pub fn used_memory() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// On one shard: the cut (every database's epoch is bumped) and the walker task.
fn begin_on_shard(
    d: &mut ShardData,
    tx: mpsc::Sender<Vec<u8>>,
    failed: Arc<AtomicBool>,
    keys_total: Arc<std::sync::atomic::AtomicU64>,
) {
    let cut_ms = crate::shard::now_ms();
    let compress = compression(d);
    let recency = recency_of(d);
    d.dirty_at_save = d.dirty;
    for (i, db) in d.dbs.iter_mut().enumerate() {
        db.snap_begin(Box::new(DbSnap::new(i, cut_ms, compress, recency)));
    }
    glommio::spawn_local(walk(tx, failed, keys_total)).detach();
}

/// Collects every database's serialized bytes into `chunk` (one SELECTDB each) and
/// advances the first unfinished walk by up to `budget` entries. Returns (keys written,
/// true when every database is done).
pub fn step_shard(d: &mut ShardData, budget: usize, chunk: &mut Vec<u8>) -> (u64, bool) {
    let mut left = budget;
    let mut all_done = true;
    let mut keys = 0;
    for db in d.dbs.iter_mut() {
        let Some((index, out, n, done)) = db.snap_step(left) else {
            continue;
        };
        keys += n;
        left = 0;
        if !out.is_empty() {
            file::select_db(chunk, index);
            chunk.extend_from_slice(&out);
        }
        all_done &= done;
    }
    (keys, all_done)
}

async fn walk(
    mut tx: mpsc::Sender<Vec<u8>>,
    failed: Arc<AtomicBool>,
    keys_total: Arc<std::sync::atomic::AtomicU64>,
) {
    // glommio runs a spawned task at once: let the spawner release the shard first.
    futures_lite::future::yield_now().await;
    let shards = crate::shard::local_shards();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    loop {
        let done = {
            let mut d = shards.data.borrow_mut();
            let discard = failed.load(Ordering::Relaxed);
            let (keys, done) = step_shard(&mut d, STEP_ENTRIES, &mut chunk);
            keys_total.fetch_add(keys, Ordering::Relaxed);
            if discard {
                chunk.clear();
            }
            done
        };
        if chunk.len() >= CHUNK_BYTES || (done && !chunk.is_empty()) {
            let c = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
            if send(&mut tx, c).await.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        }
        if done {
            break;
        }
        // Give clients their turn when the shard's time slice is used up.
        glommio::yield_if_needed().await;
    }
}

/// Sends one chunk, waiting while the channel is full (the walker's backpressure).
async fn send(tx: &mut mpsc::Sender<Vec<u8>>, chunk: Vec<u8>) -> Result<(), ()> {
    std::future::poll_fn(|cx| tx.poll_ready(cx))
        .await
        .map_err(|_| ())?;
    tx.start_send(chunk).map_err(|_| ())
}
