//! The start-up load: the snapshot in `--dir/--dbfilename` is read once through
//! glommio's buffered file stream (io_uring reads through the page cache), streamed
//! (a window of the file is in memory, grown only for a value larger than it), each
//! key routed to the shard that owns it in batches over the channel mesh, so shards
//! insert in parallel with the parse. Until it ends, data commands answer `-LOADING`
//! and INFO shows `loading:1`. Keys already expired are dropped.
//!
//! A corrupt or truncated file, a checksum mismatch, or a value this server cannot load
//! stops the process with a message naming the file and the offset of the item that
//! failed: a dataset is never half-loaded silently, and the file is never overwritten.

use super::file::{self, Item};
use crate::shard::{ShardData, Shards};
use crate::storage::rdb::{crc64::crc64, Reader};
use crate::storage::{Detached, Value};
use futures_lite::AsyncReadExt;
use glommio::io::{BufferedFile, StreamReader, StreamReaderBuilder};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

/// Bytes read from the file at a time (at least).
const READ_CHUNK: usize = 1 << 20;
/// Keys per batch sent to a shard.
const BATCH: usize = 1024;
/// Batches in flight before the parser waits for the oldest.
const IN_FLIGHT: usize = 64;

/// One key to insert: database, key, value, expiry, idle seconds / LFU counter.
type Load = (usize, Vec<u8>, Value, u64, Option<u64>, Option<u8>);

/// Runs the load of `path` on this shard (shard 0) and clears the loading state. On
/// failure the process exits with status 1 after logging why.
pub async fn run(shards: Rc<Shards>, path: PathBuf) {
    futures_lite::future::yield_now().await;
    let start = Instant::now();
    log::info!("Loading the snapshot {}", path.display());
    match load(&shards, &path).await {
        Ok((keys, expired)) => {
            log::info!(
                "Done loading RDB, keys loaded: {keys}, keys expired: {expired}. DB loaded from disk: {:.3} seconds",
                start.elapsed().as_secs_f64()
            );
            super::set_loading(false);
        }
        Err(e) => {
            log::error!("{e}");
            log::error!(
                "Fatal error loading the DB, check server logs. Exiting. (The file {} is left as it is.)",
                path.display()
            );
            std::process::exit(1);
        }
    }
}

/// A streaming window over the file.
struct Window {
    reader: StreamReader,
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    crc: u64,
}

impl Window {
    /// Reads more of the file: at least `READ_CHUNK`, or as much as is already held
    /// (so a large value needs a logarithmic number of retries).
    async fn fill(&mut self) -> std::io::Result<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let want = READ_CHUNK.max(self.buf.len());
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let mut got = 0;
        while got < want {
            let n = self.reader.read(&mut self.buf[old + got..]).await?;
            if n == 0 {
                self.eof = true;
                break;
            }
            got += n;
        }
        self.buf.truncate(old + got);
        Ok(())
    }

    /// Marks `n` bytes parsed (folded into the checksum).
    fn consume(&mut self, n: usize) {
        self.crc = crc64(self.crc, &self.buf[self.pos..self.pos + n]);
        self.pos += n;
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}

fn fail(path: &Path, offset: u64, what: impl std::fmt::Display) -> String {
    format!(
        "Short read or corrupt RDB file {} at offset {offset}: {what}",
        path.display()
    )
}

/// Parses the file and inserts its keys. Returns (keys loaded, keys dropped as expired).
async fn load(shards: &Rc<Shards>, path: &Path) -> Result<(u64, u64), String> {
    // Buffered (io_uring reads through the page cache): a snapshot just written or
    // copied is usually cached, and O_DIRECT would read it from the disk again.
    let f = BufferedFile::open(path)
        .await
        .map_err(|e| format!("Can't open the RDB file {}: {e}", path.display()))?;
    let reader = StreamReaderBuilder::new(f)
        .with_buffer_size(READ_CHUNK)
        .build();
    let mut w = Window {
        reader,
        buf: Vec::new(),
        pos: 0,
        base: 0,
        eof: false,
        crc: 0,
    };
    let io = |e: std::io::Error| format!("Error reading the RDB file {}: {e}", path.display());
    let (lim, dbnum, nshards) = {
        let d = shards.data.borrow();
        (
            crate::commands::dump::load_limits(&d),
            d.dbs.len(),
            d.nshards,
        )
    };
    // Header.
    let version = loop {
        let mut r = Reader::new(&w.buf[w.pos..]);
        match file::parse_header(&mut r) {
            Ok(v) => {
                let n = r.pos();
                w.consume(n);
                break v;
            }
            Err(e) if w.eof || w.buf.len() >= file::HEADER_LEN => {
                return Err(fail(path, 0, e));
            }
            Err(_) => w.fill().await.map_err(io)?,
        }
    };
    let now = crate::shard::now_ms();
    let mut db = 0usize;
    let mut batches: Vec<Vec<Load>> = (0..nshards).map(|_| Vec::new()).collect();
    let mut pending: VecDeque<glommio::Task<()>> = VecDeque::new();
    let (mut keys, mut expired) = (0u64, 0u64);
    let mut since_yield = 0usize;
    loop {
        let item = loop {
            let mut r = Reader::new(&w.buf[w.pos..]);
            match file::parse_item(&mut r, &lim) {
                Ok(item) => {
                    let n = r.pos();
                    break (item, n);
                }
                Err(e) if w.eof => return Err(fail(path, w.offset(), e)),
                Err(_) => w.fill().await.map_err(io)?,
            }
        };
        let (item, n) = item;
        let at = w.offset();
        w.consume(n);
        match item {
            Item::Aux(k, v) => {
                if k == b"redis-ver" {
                    log::info!(
                        "RDB version {version}, written by Redis-compatible version {}",
                        String::from_utf8_lossy(&v)
                    );
                }
            }
            Item::ResizeDb(..) => {}
            Item::SelectDb(i) => {
                if i as usize >= dbnum {
                    return Err(fail(
                        path,
                        at,
                        format_args!(
                            "the file selects database {i}, this server has {dbnum} (--databases)"
                        ),
                    ));
                }
                db = i as usize;
            }
            Item::Key {
                key,
                value,
                expire_at,
                idle,
                freq,
            } => {
                if expire_at != 0 && expire_at <= now {
                    expired += 1;
                    continue;
                }
                keys += 1;
                let shard = crate::shard::key_shard(&key, nshards);
                batches[shard].push((db, key, value, expire_at, idle, freq));
                if batches[shard].len() >= BATCH {
                    let batch = std::mem::take(&mut batches[shard]);
                    send_batch(shards, shard, batch, &mut pending).await;
                }
                since_yield += 1;
                if since_yield >= 256 {
                    since_yield = 0;
                    glommio::yield_if_needed().await;
                }
            }
            Item::Eof => break,
        }
    }
    // The checksum (versions 5 and later): 8 bytes, 0 = not computed.
    if version >= 5 {
        while w.buf.len() - w.pos < 8 && !w.eof {
            w.fill().await.map_err(io)?;
        }
        if w.buf.len() - w.pos < 8 {
            return Err(fail(path, w.offset(), "the CRC64 checksum is missing"));
        }
        let expect = w.crc;
        let got = u64::from_le_bytes(w.buf[w.pos..w.pos + 8].try_into().expect("8 bytes"));
        if got != 0 && got != expect {
            return Err(fail(
                path,
                w.offset(),
                format_args!("Wrong RDB checksum expected: ({expect:x}) got: ({got:x})"),
            ));
        }
    }
    for (shard, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            send_batch(shards, shard, batch, &mut pending).await;
        }
    }
    while let Some(h) = pending.pop_front() {
        h.await;
    }
    Ok((keys, expired))
}

/// Hands a batch to its shard (inline when it is this one), keeping at most
/// `IN_FLIGHT` batches outstanding.
async fn send_batch(
    shards: &Rc<Shards>,
    shard: usize,
    batch: Vec<Load>,
    pending: &mut VecDeque<glommio::Task<()>>,
) {
    if shard == shards.id {
        insert(&mut shards.data.borrow_mut(), batch);
        return;
    }
    let s = shards.clone();
    pending.push_back(glommio::spawn_local(async move {
        futures_lite::future::yield_now().await;
        s.run_on(shard, move |d| insert(d, batch)).await;
    }));
    while pending.len() > IN_FLIGHT {
        if let Some(h) = pending.pop_front() {
            h.await;
        }
    }
}

/// Inserts loaded keys into this shard's databases.
fn insert(d: &mut ShardData, batch: Vec<Load>) {
    let clock = d.lru_clock();
    for (db, key, value, expire_at, idle, freq) in batch {
        let access = idle.map_or(clock, |i| {
            clock.saturating_sub(i.min(u32::MAX as u64) as u32)
        });
        d.dbs[db].insert_entry(
            &key,
            Detached {
                value,
                expire_at,
                access,
                freq: freq.unwrap_or(crate::storage::db::LFU_INIT_VAL),
            },
        );
    }
}
