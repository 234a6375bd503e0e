//! The pre-7.0 packed formats, read only (Redis 7.0 still loads them and converts to
//! listpacks): the ziplist (`ziplist.c`) and the zipmap (`zipmap.c`). A writer for the
//! ziplist exists for tests.
//!
//! Ziplist: zlbytes (u32 LE), zltail (u32 LE), zllen (u16 LE, 65535 when unknown), entries,
//! 0xFF. An entry: the previous entry's length (1 byte below 254, else 0xFE + u32 LE), an
//! encoding (strings: `00pppppp`, `01pppppp qqqqqqqq` big-endian, `10000000` + u32
//! big-endian; integers: 0xC0 i16, 0xD0 i32, 0xE0 i64, 0xF0 i24, 0xFE i8, 0xF1..0xFD the
//! immediate 0..12), then the data.
//!
//! Zipmap: a count byte, then pairs of (length, field, length, free byte, value, free
//! bytes), lengths as 1 byte below 254 or 0xFE + u32 LE; 0xFF ends it.

use super::listpack::Elem;

/// Parses and validates a ziplist.
pub fn parse(buf: &[u8]) -> Result<Vec<Elem<'_>>, String> {
    if buf.len() < 11 {
        return Err("ziplist shorter than its header".into());
    }
    let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if total != buf.len() {
        return Err(format!(
            "ziplist header says {total} bytes, payload has {}",
            buf.len()
        ));
    }
    let tail = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let announced = u16::from_le_bytes([buf[8], buf[9]]) as usize;
    let end = buf.len() - 1;
    if buf[end] != 0xff {
        return Err("ziplist without its end byte".into());
    }
    let mut out = Vec::with_capacity(announced.min(buf.len()));
    let mut p = 10;
    let mut prev_len = 0usize;
    let mut last_start = 10;
    let err = || "ziplist entry runs past the end".to_string();
    while p < end {
        let start = p;
        let (plen, hdr) = if buf[p] < 254 {
            (buf[p] as usize, 1)
        } else if buf[p] == 254 {
            if p + 5 > end {
                return Err(err());
            }
            (
                u32::from_le_bytes([buf[p + 1], buf[p + 2], buf[p + 3], buf[p + 4]]) as usize,
                5,
            )
        } else {
            return Err("ziplist entry with an invalid previous length".into());
        };
        if plen != prev_len {
            return Err("ziplist entry with a wrong previous length".into());
        }
        p += hdr;
        if p >= end {
            return Err(err());
        }
        let b = buf[p];
        let take = |p: usize, n: usize| -> Result<&[u8], String> {
            if p + n > end {
                Err(err())
            } else {
                Ok(&buf[p..p + n])
            }
        };
        let e = match b >> 6 {
            0 => {
                let n = (b & 0x3f) as usize;
                let s = take(p + 1, n)?;
                p += 1 + n;
                Elem::Str(s)
            }
            1 => {
                let h = take(p, 2)?;
                let n = (((h[0] & 0x3f) as usize) << 8) | h[1] as usize;
                let s = take(p + 2, n)?;
                p += 2 + n;
                Elem::Str(s)
            }
            2 => {
                if b != 0x80 {
                    return Err(format!("ziplist entry with invalid encoding {b:#04x}"));
                }
                let h = take(p + 1, 4)?;
                let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let s = take(p + 5, n)?;
                p += 5 + n;
                Elem::Str(s)
            }
            _ => {
                let (n, v) = match b {
                    0xc0 => {
                        let d = take(p + 1, 2)?;
                        (2, i16::from_le_bytes([d[0], d[1]]) as i64)
                    }
                    0xd0 => {
                        let d = take(p + 1, 4)?;
                        (4, i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64)
                    }
                    0xe0 => {
                        let d = take(p + 1, 8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(d);
                        (8, i64::from_le_bytes(a))
                    }
                    0xf0 => {
                        let d = take(p + 1, 3)?;
                        (3, (i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64)
                    }
                    0xfe => {
                        let d = take(p + 1, 1)?;
                        (1, d[0] as i8 as i64)
                    }
                    0xf1..=0xfd => (0, (b & 0x0f) as i64 - 1),
                    _ => return Err(format!("ziplist entry with invalid encoding {b:#04x}")),
                };
                p += 1 + n;
                Elem::Int(v)
            }
        };
        prev_len = p - start;
        last_start = start;
        out.push(e);
    }
    if p != end {
        return Err(err());
    }
    if (out.is_empty() && tail != 10) || (!out.is_empty() && tail != last_start) {
        return Err("ziplist tail offset is wrong".into());
    }
    if announced != 65535 && announced != out.len() {
        return Err(format!(
            "ziplist header says {announced} entries, found {}",
            out.len()
        ));
    }
    Ok(out)
}

/// Builds a ziplist of strings (integers encoded as Redis would), for tests.
pub fn build(items: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; 10];
    let mut prev = 0usize;
    let mut tail = 10;
    for it in items {
        let start = buf.len();
        tail = start;
        if prev < 254 {
            buf.push(prev as u8);
        } else {
            buf.push(254);
            buf.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match crate::protocol::reply::parse_i64(it) {
            Some(v @ 0..=12) => buf.push(0xf1 + v as u8),
            Some(v) if i8::try_from(v).is_ok() => {
                buf.push(0xfe);
                buf.push(v as i8 as u8);
            }
            Some(v) if i16::try_from(v).is_ok() => {
                buf.push(0xc0);
                buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if (-8388608..=8388607).contains(&v) => {
                buf.push(0xf0);
                buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                buf.push(0xd0);
                buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                buf.push(0xe0);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            None => {
                let n = it.len();
                if n < 64 {
                    buf.push(n as u8);
                } else if n < 16384 {
                    buf.push(0x40 | (n >> 8) as u8);
                    buf.push(n as u8);
                } else {
                    buf.push(0x80);
                    buf.extend_from_slice(&(n as u32).to_be_bytes());
                }
                buf.extend_from_slice(it);
            }
        }
        prev = buf.len() - start;
    }
    buf.push(0xff);
    let total = buf.len() as u32;
    buf[0..4].copy_from_slice(&total.to_le_bytes());
    buf[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    buf[8..10].copy_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
    buf
}

/// A (field, value) pair of a zipmap.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Parses and validates a zipmap into (field, value) pairs.
pub fn parse_zipmap(buf: &[u8]) -> Result<Vec<Pair<'_>>, String> {
    if buf.len() < 2 {
        return Err("zipmap shorter than its header".into());
    }
    let mut p = 1;
    let mut out = Vec::new();
    let err = || "zipmap entry runs past the end".to_string();
    let read_len = |p: &mut usize| -> Result<Option<usize>, String> {
        match buf.get(*p) {
            None => Err(err()),
            Some(255) => Ok(None),
            Some(254) => {
                if *p + 5 > buf.len() {
                    return Err(err());
                }
                let n = u32::from_le_bytes([buf[*p + 1], buf[*p + 2], buf[*p + 3], buf[*p + 4]]);
                *p += 5;
                Ok(Some(n as usize))
            }
            Some(&n) => {
                *p += 1;
                Ok(Some(n as usize))
            }
        }
    };
    while let Some(flen) = read_len(&mut p)? {
        if p + flen > buf.len() {
            return Err(err());
        }
        let field = &buf[p..p + flen];
        p += flen;
        let Some(vlen) = read_len(&mut p)? else {
            return Err("zipmap field without a value".into());
        };
        let Some(&free) = buf.get(p) else {
            return Err(err());
        };
        p += 1;
        if p + vlen + free as usize > buf.len() {
            return Err(err());
        }
        out.push((field, &buf[p..p + vlen]));
        p += vlen + free as usize;
    }
    if p + 1 != buf.len() {
        return Err("zipmap has bytes after its end".into());
    }
    if buf[0] < 254 && buf[0] as usize != out.len() {
        return Err("zipmap count does not match".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let big = vec![b'z'; 20000];
        let mid = vec![b'm'; 300];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"12",
            b"13",
            b"-1",
            b"-200",
            b"30000",
            b"-8000000",
            b"2000000000",
            b"9223372036854775807",
            b"abc",
            b"",
            &mid,
            &big,
            b"01",
        ];
        let zl = build(&items);
        let got: Vec<Vec<u8>> = parse(&zl).unwrap().iter().map(|e| e.to_vec()).collect();
        let want: Vec<Vec<u8>> = items.iter().map(|s| s.to_vec()).collect();
        assert_eq!(got, want);
        for n in 0..zl.len() {
            assert!(parse(&zl[..n]).is_err());
        }
        for i in 0..zl.len().min(400) {
            let mut c = zl.clone();
            c[i] ^= 0xa5;
            let _ = parse(&c);
        }
    }

    #[test]
    fn zipmap() {
        // {"a": "1", "bc": ""} with one free byte after "1".
        let zm = [2u8, 1, b'a', 1, 1, b'1', 0, 2, b'b', b'c', 0, 0, 0xff];
        let p = parse_zipmap(&zm).unwrap();
        assert_eq!(p, vec![(&b"a"[..], &b"1"[..]), (&b"bc"[..], &b""[..])]);
        for n in 0..zm.len() {
            assert!(parse_zipmap(&zm[..n]).is_err());
        }
    }
}
