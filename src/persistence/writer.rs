//! Writing a snapshot file through glommio's DMA API (io_uring, O_DIRECT, aligned
//! buffers): bytes go to `temp-<pid>-<n>.rdb` in the snapshot directory through a
//! `DmaStreamWriter` (which pads the last block and truncates the file to its real
//! length on close), the CRC64 is computed in the order of writing, then the file is
//! fsynced, renamed over the target and the directory fsynced. Until the rename the
//! previous snapshot is untouched, so a crash or `kill -9` at any moment leaves it
//! intact; on any error the temporary file is removed.

use crate::storage::rdb::crc64::crc64;
use futures_lite::AsyncWriteExt;
use glommio::io::{DmaFile, DmaStreamWriter, DmaStreamWriterBuilder};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Size of each DMA buffer.
const BUFFER: usize = 256 << 10;
/// Buffers in flight.
const WRITE_BEHIND: usize = 2;

/// An open snapshot file being written.
pub struct RdbWriter {
    out: DmaStreamWriter,
    crc: u64,
    len: u64,
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Test hook: when the environment variable `LIBELLULE_FAIL_WRITE_AFTER` holds a byte
/// count, writes beyond it fail as a full disk would (for the failed-save tests when no
/// small file system can be mounted).
fn injected_limit() -> Option<u64> {
    std::env::var("LIBELLULE_FAIL_WRITE_AFTER")
        .ok()
        .and_then(|v| v.parse().ok())
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

impl RdbWriter {
    /// Creates the temporary file in `dir` for a snapshot to be renamed to
    /// `dir/filename`.
    pub async fn create(dir: &str, filename: &str) -> Result<RdbWriter, String> {
        let dir = PathBuf::from(dir);
        let temp = dir.join(format!(
            "temp-{}-{}.rdb",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let target = dir.join(filename);
        let file = DmaFile::create(&temp)
            .await
            .map_err(|e| io_err("Failed opening the temp RDB file", &temp, e))?;
        let out = DmaStreamWriterBuilder::new(file)
            .with_buffer_size(BUFFER)
            .with_write_behind(WRITE_BEHIND)
            .build();
        Ok(RdbWriter {
            out,
            crc: 0,
            len: 0,
            temp,
            target,
            dir,
        })
    }

    /// Appends `bytes` (and folds them into the checksum).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(limit) = injected_limit() {
            if self.len + bytes.len() as u64 > limit {
                return Err(io_err(
                    "Write error saving DB on disk",
                    &self.temp,
                    "No space left on device (injected)",
                ));
            }
        }
        self.crc = crc64(self.crc, bytes);
        self.len += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .await
            .map_err(|e| io_err("Write error saving DB on disk", &self.temp, e))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the checksum, syncs, closes, renames over the target and syncs the
    /// directory. Returns the file's length.
    pub async fn finish(mut self) -> Result<u64, String> {
        let crc = self.crc.to_le_bytes();
        if let Err(e) = self.write(&crc).await {
            self.abort().await;
            return Err(e);
        }
        let temp = self.temp.clone();
        let r = self.finish_inner().await;
        if r.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        r
    }

    async fn finish_inner(mut self) -> Result<u64, String> {
        // close() flushes the padded last block, fdatasyncs, truncates to the real
        // length and closes.
        self.out
            .close()
            .await
            .map_err(|e| io_err("Write error saving DB on disk", &self.temp, e))?;
        // The truncation changed the size: sync again so the length is durable too.
        let f = DmaFile::open(&self.temp)
            .await
            .map_err(|e| io_err("Failed reopening the temp RDB file", &self.temp, e))?;
        f.fdatasync()
            .await
            .map_err(|e| io_err("Failed syncing the temp RDB file", &self.temp, e))?;
        let _ = f.close().await;
        glommio::io::rename(&self.temp, &self.target)
            .await
            .map_err(|e| {
                format!(
                    "Error moving temp DB file {} on the final destination {}: {e}",
                    self.temp.display(),
                    self.target.display()
                )
            })?;
        let d = glommio::io::Directory::open(&self.dir)
            .await
            .map_err(|e| io_err("Failed opening the snapshot directory", &self.dir, e))?;
        d.sync()
            .await
            .map_err(|e| io_err("Failed syncing the snapshot directory", &self.dir, e))?;
        let _ = d.close().await;
        Ok(self.len)
    }

    /// Gives up: drops the stream (cancelling its pending writes, closing the file) and
    /// removes the temporary file.
    ///
    /// The stream is dropped, not closed: once a write error has been returned (a full
    /// disk: ENOSPC), glommio's `DmaStreamWriter::close` asserts that every buffer
    /// reached the file, and panicked the shard (found by the real-tmpfs full-disk
    /// test, `tests/persistence.rs`).
    pub async fn abort(self) {
        let temp = self.temp.clone();
        drop(self.out);
        let _ = std::fs::remove_file(&temp);
    }
}
