//! Redis's listpack byte format (`listpack.c`), written and read exactly: a 6-byte header
//! (total bytes, u32 LE; element count, u16 LE, 65535 when unknown), the entries, and an
//! end byte 0xFF. An entry is an encoding byte (with data) followed by its "backlen", the
//! entry's own length written so that it can be read backwards.
//!
//! Strings that are canonical decimal integers are stored as integers in the smallest of
//! the 7, 13, 16, 24, 32 and 64-bit forms, as `lpAppend` does.

use crate::protocol::reply::parse_i64;

/// One listpack element as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A string entry.
    Str(&'a [u8]),
    /// An integer entry.
    Int(i64),
}

impl Elem<'_> {
    /// The element as a string (integers formatted in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(v) => itoa::Buffer::new().format(*v).as_bytes().to_vec(),
        }
    }

    /// Length of the string form.
    pub fn str_len(&self) -> usize {
        match self {
            Elem::Str(s) => s.len(),
            Elem::Int(v) => itoa::Buffer::new().format(*v).len(),
        }
    }
}

/// Bytes of the header plus the end byte.
const OVERHEAD: usize = 7;

/// Builds a listpack.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

/// Appends the backlen of an entry of `l` bytes (`lpEncodeBacklen`).
fn put_backlen(out: &mut Vec<u8>, l: usize) {
    if l <= 127 {
        out.push(l as u8);
    } else if l < 16383 {
        out.push((l >> 7) as u8);
        out.push((l & 127) as u8 | 128);
    } else if l < 2097151 {
        out.push((l >> 14) as u8);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    } else if l < 268435455 {
        out.push((l >> 21) as u8);
        out.push(((l >> 14) & 127) as u8 | 128);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    } else {
        out.push((l >> 28) as u8);
        out.push(((l >> 21) & 127) as u8 | 128);
        out.push(((l >> 14) & 127) as u8 | 128);
        out.push(((l >> 7) & 127) as u8 | 128);
        out.push((l & 127) as u8 | 128);
    }
}

/// Bytes of the backlen of an entry of `l` bytes.
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Bytes an integer entry takes (encoding, data and back length), as
/// `lpAppendInteger` writes it: the smallest of the 7, 13, 16, 24, 32 and 64-bit forms.
pub fn int_entry_size(v: i64) -> usize {
    // Every integer entry is at most 9 bytes, so its back length is one byte.
    1 + if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if i16::try_from(v).is_ok() {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        9
    }
}

/// Bytes a string entry takes as `lpAppend` writes it (an integer entry when the string
/// is a canonical integer), back length included.
pub fn entry_size(s: &[u8]) -> usize {
    if let Some(v) = parse_i64(s) {
        return int_entry_size(v);
    }
    let n = s.len();
    let l = if n < 64 {
        1 + n
    } else if n < 4096 {
        2 + n
    } else {
        5 + n
    };
    l + backlen_size(l)
}

impl Writer {
    /// An empty listpack.
    pub fn new() -> Writer {
        Writer {
            buf: vec![0; 6],
            count: 0,
        }
    }

    /// Number of elements appended.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the finished listpack will take.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends a string, as an integer entry when it is a canonical integer.
    pub fn push(&mut self, s: &[u8]) {
        match parse_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    /// Appends a string entry.
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push((n & 0xff) as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let l = self.buf.len() - start;
        put_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// Appends an integer entry in its smallest form.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push((u & 0xff) as u8);
        } else if i16::try_from(v).is_ok() {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let l = self.buf.len() - start;
        put_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// The finished listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 {
            self.count as u16
        } else {
            65535
        };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// Parses and validates a listpack: header, every entry and its backlen, the count and
/// the end byte. Errors name what is wrong.
pub fn parse(buf: &[u8]) -> Result<Vec<Elem<'_>>, String> {
    if buf.len() < OVERHEAD {
        return Err("listpack shorter than its header".into());
    }
    let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if total != buf.len() {
        return Err(format!(
            "listpack header says {total} bytes, payload has {}",
            buf.len()
        ));
    }
    let announced = u16::from_le_bytes([buf[4], buf[5]]) as usize;
    let mut out = Vec::with_capacity(announced.min(buf.len()));
    let mut p = 6;
    let end = buf.len() - 1;
    while p < end {
        let start = p;
        let b = buf[p];
        let need = |p: usize, n: usize| -> Result<(), String> {
            if p + n > end {
                Err("listpack entry runs past the end".into())
            } else {
                Ok(())
            }
        };
        let e = if b & 0x80 == 0 {
            p += 1;
            Elem::Int(b as i64)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            need(p + 1, n)?;
            p += 1 + n;
            Elem::Str(&buf[p - n..p])
        } else if b & 0xe0 == 0xc0 {
            need(p, 2)?;
            let u = (((b & 0x1f) as u64) << 8) | buf[p + 1] as u64;
            p += 2;
            let v = if u >= 1 << 12 {
                u as i64 - (1 << 13)
            } else {
                u as i64
            };
            Elem::Int(v)
        } else if b & 0xf0 == 0xe0 {
            need(p, 2)?;
            let n = (((b & 0x0f) as usize) << 8) | buf[p + 1] as usize;
            need(p + 2, n)?;
            p += 2 + n;
            Elem::Str(&buf[p - n..p])
        } else {
            match b {
                0xf0 => {
                    need(p, 5)?;
                    let n = u32::from_le_bytes([buf[p + 1], buf[p + 2], buf[p + 3], buf[p + 4]])
                        as usize;
                    need(p + 5, n)?;
                    p += 5 + n;
                    Elem::Str(&buf[p - n..p])
                }
                0xf1 => {
                    need(p, 3)?;
                    let v = i16::from_le_bytes([buf[p + 1], buf[p + 2]]) as i64;
                    p += 3;
                    Elem::Int(v)
                }
                0xf2 => {
                    need(p, 4)?;
                    let v = i32::from_le_bytes([0, buf[p + 1], buf[p + 2], buf[p + 3]]) >> 8;
                    p += 4;
                    Elem::Int(v as i64)
                }
                0xf3 => {
                    need(p, 5)?;
                    let v = i32::from_le_bytes([buf[p + 1], buf[p + 2], buf[p + 3], buf[p + 4]]);
                    p += 5;
                    Elem::Int(v as i64)
                }
                0xf4 => {
                    need(p, 9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&buf[p + 1..p + 9]);
                    p += 9;
                    Elem::Int(i64::from_le_bytes(a))
                }
                _ => {
                    return Err(format!(
                        "listpack entry with invalid encoding byte {b:#04x}"
                    ))
                }
            }
        };
        let l = p - start;
        let bl = backlen_size(l);
        need(p, bl)?;
        let mut expect = Vec::with_capacity(5);
        put_backlen(&mut expect, l);
        if buf[p..p + bl] != expect[..] {
            return Err("listpack entry with a wrong back length".into());
        }
        p += bl;
        out.push(e);
    }
    if p != end || buf[end] != 0xff {
        return Err("listpack without its end byte".into());
    }
    if announced != 65535 && announced != out.len() {
        return Err(format!(
            "listpack header says {announced} entries, found {}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_encodings() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"128".to_vec(),
            b"-1".to_vec(),
            b"-4096".to_vec(),
            b"4095".to_vec(),
            b"4096".to_vec(),
            b"-32768".to_vec(),
            b"32767".to_vec(),
            b"8388607".to_vec(),
            b"-8388608".to_vec(),
            b"2147483647".to_vec(),
            b"-2147483648".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"007".to_vec(),
            b"".to_vec(),
            b"hello".to_vec(),
            mid.clone(),
            big.clone(),
        ];
        let mut w = Writer::new();
        for i in &items {
            w.push(i);
        }
        let lp = w.finish();
        let parsed = parse(&lp).unwrap();
        let back: Vec<Vec<u8>> = parsed.iter().map(|e| e.to_vec()).collect();
        assert_eq!(back, items);
        assert!(matches!(parsed[15], Elem::Str(_)));
        assert!(matches!(parsed[14], Elem::Int(_)));
    }

    #[test]
    fn entry_sizes_match_the_writer() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let cases: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-4096",
            b"4096",
            b"-32768",
            b"32768",
            b"8388607",
            b"8388608",
            b"2147483648",
            b"-9223372036854775808",
            b"007",
            b"",
            b"hello",
            &mid,
            &big,
        ];
        for c in cases {
            let mut w = Writer::new();
            let before = w.bytes();
            w.push(c);
            assert_eq!(
                w.bytes() - before,
                entry_size(c),
                "{:?}",
                &c[..c.len().min(8)]
            );
        }
        for v in [0i64, -1, 127, 128, 4095, -4097, 1 << 20, 1 << 40, i64::MIN] {
            let mut w = Writer::new();
            w.push_int(v);
            assert_eq!(w.bytes() - 7, int_entry_size(v), "{v}");
        }
    }

    #[test]
    fn exact_bytes_like_redis() {
        // lpNew + lpAppend("a") + lpAppend("1"): what RPUSH l a 1 leaves in Redis 7.0.
        let mut w = Writer::new();
        w.push(b"a");
        w.push(b"1");
        let lp = w.finish();
        assert_eq!(lp, vec![12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 1, 1, 0xff]);
    }

    #[test]
    fn corrupt_is_rejected() {
        let mut w = Writer::new();
        w.push(b"hello");
        w.push(b"12345");
        let lp = w.finish();
        for i in 0..lp.len() {
            let mut c = lp.clone();
            c[i] ^= 0x55;
            let _ = parse(&c); // must not panic
        }
        for n in 0..lp.len() {
            assert!(parse(&lp[..n]).is_err());
        }
        let mut c = lp.clone();
        c[4] = 9;
        assert!(parse(&c).is_err());
    }
}
