//! Redis RDB value serialization, format version 10 (Redis 7.0): the encoders and
//! decoders shared by DUMP/RESTORE ([`crate::commands::dump`]) and, later, by snapshots.
//!
//! - [`encode`]: a [`Value`] to its RDB type byte and body, written as Redis 7.0 writes it.
//! - [`decode`]: an RDB type byte and body to a [`Value`], accepting every form Redis 7.0
//!   loads (plain, ziplist, zipmap, intset, listpack, quicklist 1 and 2), converted to
//!   the encoding Redis's loader would leave under the configured thresholds.
//! - The byte formats: [`listpack`], [`ziplist`] (and zipmap), [`intset`]; [`lzf`]
//!   compression and the [`crc64`] checksum.
//!
//! This module holds what both directions share: type numbers, length encoding and the
//! bounded [`Reader`]. Decoders never panic and never allocate more than the remaining
//! input justifies: every length is checked against the bytes left first.
//!
//! Streams: [`stream`] writes type 19 (Redis 7.0's listpack nodes, groups, PELs and
//! consumers) and reads 15, 19 and 21.

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod stream;
pub mod ziplist;

pub use decode::{load_object, LoadLimits};
pub use encode::{save_object, type_byte};

use crate::storage::{Value, ValueRef};

/// The RDB format version this module writes (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

/// `RDB_TYPE_STRING`
pub const TYPE_STRING: u8 = 0;
/// `RDB_TYPE_LIST` (a plain list of strings, pre-3.2)
pub const TYPE_LIST: u8 = 1;
/// `RDB_TYPE_SET`
pub const TYPE_SET: u8 = 2;
/// `RDB_TYPE_ZSET` (scores as strings)
pub const TYPE_ZSET: u8 = 3;
/// `RDB_TYPE_HASH`
pub const TYPE_HASH: u8 = 4;
/// `RDB_TYPE_ZSET_2` (binary double scores)
pub const TYPE_ZSET_2: u8 = 5;
/// `RDB_TYPE_MODULE` (pre-GA modules)
pub const TYPE_MODULE: u8 = 6;
/// `RDB_TYPE_MODULE_2`
pub const TYPE_MODULE_2: u8 = 7;
/// `RDB_TYPE_HASH_ZIPMAP`
pub const TYPE_HASH_ZIPMAP: u8 = 9;
/// `RDB_TYPE_LIST_ZIPLIST`
pub const TYPE_LIST_ZIPLIST: u8 = 10;
/// `RDB_TYPE_SET_INTSET`
pub const TYPE_SET_INTSET: u8 = 11;
/// `RDB_TYPE_ZSET_ZIPLIST`
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
/// `RDB_TYPE_HASH_ZIPLIST`
pub const TYPE_HASH_ZIPLIST: u8 = 13;
/// `RDB_TYPE_LIST_QUICKLIST` (ziplist nodes)
pub const TYPE_LIST_QUICKLIST: u8 = 14;
/// `RDB_TYPE_STREAM_LISTPACKS`
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// `RDB_TYPE_HASH_LISTPACK`
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// `RDB_TYPE_ZSET_LISTPACK`
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// `RDB_TYPE_LIST_QUICKLIST_2` (listpack or plain nodes)
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// `RDB_TYPE_STREAM_LISTPACKS_2`
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// `RDB_TYPE_SET_LISTPACK` (Redis 7.2)
pub const TYPE_SET_LISTPACK: u8 = 20;
/// `RDB_TYPE_STREAM_LISTPACKS_3` (Redis 7.2)
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// Quicklist node container: one element stored as a plain string.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// Quicklist node container: a listpack.
pub const QUICKLIST_NODE_PACKED: u64 = 2;

/// `RDB_ENC_INT8`, `RDB_ENC_INT16`, `RDB_ENC_INT32`, `RDB_ENC_LZF`: the special string
/// encodings (the low bits of a length byte whose two top bits are set).
pub const ENC_INT8: u8 = 0;
/// See [`ENC_INT8`].
pub const ENC_INT16: u8 = 1;
/// See [`ENC_INT8`].
pub const ENC_INT32: u8 = 2;
/// See [`ENC_INT8`].
pub const ENC_LZF: u8 = 3;

/// A decoding error; the text names what is wrong (Redis answers RESTORE with
/// `ERR Bad data format` whatever it is, and so does DUMP/RESTORE here; snapshots log it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error(s.to_string())
    }
}

/// Result of a decoder.
pub type Result<T> = std::result::Result<T, Error>;

/// Appends an RDB length (6, 14, 32 or 64-bit form).
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A cursor over an input that checks every read against the bytes left.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length as read: a plain length, or a special string encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// A length.
    Plain(u64),
    /// One of the `ENC_*` encodings.
    Encoded(u8),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a length or a special encoding marker (`rdbLoadLenByRef`).
    pub fn len_or_enc(&mut self, what: &str) -> Result<Len> {
        let b = self.u8(what)?;
        match b >> 6 {
            0 => Ok(Len::Plain((b & 0x3f) as u64)),
            1 => {
                let c = self.u8(what)?;
                Ok(Len::Plain((((b & 0x3f) as u64) << 8) | c as u64))
            }
            2 => match b {
                0x80 => {
                    let d = self.take(4, what)?;
                    Ok(Len::Plain(
                        u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64
                    ))
                }
                0x81 => {
                    let d = self.take(8, what)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(d);
                    Ok(Len::Plain(u64::from_be_bytes(a)))
                }
                _ => Err(Error(format!("{what}: unknown length encoding {b:#04x}"))),
            },
            _ => Ok(Len::Encoded(b & 0x3f)),
        }
    }

    /// Reads a plain length.
    pub fn len(&mut self, what: &str) -> Result<u64> {
        match self.len_or_enc(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(e) => Err(Error(format!(
                "{what}: expected a length, found string encoding {e}"
            ))),
        }
    }

    /// Reads the element count of a collection whose elements take at least
    /// `min_bytes` bytes each, refusing counts the input cannot hold.
    pub fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let n = self.len(what)?;
        if n == 0 {
            return Err(Error(format!("{what}: empty collection")));
        }
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return Err(Error(format!(
                "{what}: {n} elements cannot fit in the {} bytes left",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    /// Reads a string in any of its forms (raw, integer, LZF), as bytes.
    pub fn string(&mut self, what: &str) -> Result<Vec<u8>> {
        match self.len_or_enc(what)? {
            Len::Plain(n) => {
                if n > self.remaining() as u64 {
                    return Err(Error(format!(
                        "{what}: string of {n} bytes, {} left",
                        self.remaining()
                    )));
                }
                Ok(self.take(n as usize, what)?.to_vec())
            }
            Len::Encoded(ENC_INT8) => {
                let v = self.u8(what)? as i8 as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Encoded(ENC_INT16) => {
                let d = self.take(2, what)?;
                let v = i16::from_le_bytes([d[0], d[1]]) as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Encoded(ENC_INT32) => {
                let d = self.take(4, what)?;
                let v = i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.len(what)?;
                let len = self.len(what)?;
                if clen > self.remaining() as u64 {
                    return Err(Error(format!(
                        "{what}: compressed string of {clen} bytes, {} left",
                        self.remaining()
                    )));
                }
                // LZF expands at most 88 times (a 3-byte back reference copies 264 bytes).
                if len > clen.saturating_mul(88) + 32 {
                    return Err(Error(format!(
                        "{what}: {clen} compressed bytes cannot expand to {len}"
                    )));
                }
                let data = self.take(clen as usize, what)?;
                lzf::decompress(data, len as usize).map_err(|e| Error(format!("{what}: {e}")))
            }
            Len::Encoded(e) => Err(Error(format!("{what}: unknown string encoding {e}"))),
        }
    }

    /// Reads a double in the old string form (`rdbLoadDoubleValue`).
    pub fn double_str(&mut self, what: &str) -> Result<f64> {
        let n = self.u8(what)?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let d = self.take(n as usize, what)?;
                std::str::from_utf8(d)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| Error(format!("{what}: invalid double")))
            }
        }
    }

    /// Reads a binary double (8 bytes, little-endian).
    pub fn double_bin(&mut self, what: &str) -> Result<f64> {
        let d = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(d);
        Ok(f64::from_le_bytes(a))
    }
}

/// Serializes `v` as a DUMP payload: type byte, value, RDB version (u16 LE), CRC64 (LE)
/// of everything before it. `compress` is `rdbcompression`.
pub fn dump_payload<'a>(v: impl Into<ValueRef<'a>>, compress: bool) -> Vec<u8> {
    let v = v.into();
    let mut out = Vec::new();
    out.push(encode::type_byte_ref(v));
    encode::save_object_ref(v, &mut out, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a DUMP payload's footer (Redis's `verifyDumpPayload`): at least 10 bytes, an
/// RDB version this server reads (at most [`RDB_VERSION`]), and a matching CRC64 (a zero
/// CRC is accepted unchecked only when `skip_zero_crc`, as Redis does with
/// `rdbchecksum no`). Returns the body (type byte and value).
pub fn verify_payload(p: &[u8], skip_zero_crc: bool) -> Option<&[u8]> {
    if p.len() < 10 {
        return None;
    }
    let footer = &p[p.len() - 10..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&footer[2..]);
    let crc = u64::from_le_bytes(a);
    if skip_zero_crc && crc == 0 {
        return Some(&p[..p.len() - 10]);
    }
    (crc64::crc64(0, &p[..p.len() - 8]) == crc).then(|| &p[..p.len() - 10])
}

/// Parses a DUMP payload body (after [`verify_payload`]): a type byte and one value.
/// Bytes after the value are ignored, as Redis's RESTORE ignores them.
pub fn load_payload(body: &[u8], lim: &LoadLimits) -> Result<Value> {
    let mut r = Reader::new(body);
    let t = r.u8("type byte")?;
    load_object(t, &mut r, lim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoding_round_trips() {
        for n in [
            0u64,
            1,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_len(&mut b, n);
            let expect_len = match n {
                0..=63 => 1,
                64..=16383 => 2,
                16384..=0xffff_ffff => 5,
                _ => 9,
            };
            assert_eq!(b.len(), expect_len, "{n}");
            let mut r = Reader::new(&b);
            assert_eq!(r.len("x").unwrap(), n);
            assert_eq!(r.remaining(), 0);
        }
        let mut b = Vec::new();
        put_len(&mut b, 300);
        assert_eq!(b, vec![0x41, 0x2c]);
    }

    #[test]
    fn special_strings() {
        let mut r = Reader::new(&[0xc0, 0xfb]);
        assert_eq!(r.string("s").unwrap(), b"-5");
        let mut r = Reader::new(&[0xc1, 0x39, 0x30]);
        assert_eq!(r.string("s").unwrap(), b"12345");
        let mut r = Reader::new(&[0xc2, 0x00, 0x00, 0x00, 0x80]);
        assert_eq!(r.string("s").unwrap(), b"-2147483648");
        let mut r = Reader::new(&[0xc3, 0x05, 0x18, 0x00, b'a', 0xe0, 0x0e, 0x00]);
        assert_eq!(r.string("s").unwrap(), vec![b'a'; 24]);
        // A huge LZF length is refused before any allocation.
        let mut r = Reader::new(&[0xc3, 0x01, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        assert!(r.string("s").is_err());
        let mut r = Reader::new(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(r.string("s").is_err());
        let mut r = Reader::new(&[0xc4]);
        assert!(r.string("s").is_err());
    }
}
