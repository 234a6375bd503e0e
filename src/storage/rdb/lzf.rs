//! LZF compression as Redis's bundled liblzf writes and reads it (RDB `RDB_ENC_LZF`
//! strings). The format: a control byte `c`; `c < 32` starts a literal run of `c + 1`
//! bytes; otherwise `len = c >> 5` (7 means an extra length byte follows, added), the
//! back reference distance is `((c & 31) << 8) + next byte + 1`, and `len + 2` bytes are
//! copied from that distance (overlapping copies allowed).

/// Decompresses `input` into exactly `out_len` bytes. Errors name what is wrong; never
/// reads or writes out of bounds.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, &'static str> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() {
                return Err("LZF literal run past the end of the input");
            }
            if out.len() + n > out_len {
                return Err("LZF output longer than announced");
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let Some(&b) = input.get(i) else {
                    return Err("LZF back reference truncated");
                };
                len += b as usize;
                i += 1;
            }
            let Some(&b) = input.get(i) else {
                return Err("LZF back reference truncated");
            };
            i += 1;
            let dist = ((ctrl & 31) << 8) + b as usize + 1;
            let len = len + 2;
            if dist > out.len() {
                return Err("LZF back reference before the start of the output");
            }
            if out.len() + len > out_len {
                return Err("LZF output longer than announced");
            }
            let start = out.len() - dist;
            if dist == 1 {
                // A run of one byte.
                let c = out[start];
                out.resize(out.len() + len, c);
            } else {
                // Overlapping copies repeat with period `dist`: copy in slices of at
                // most `dist` bytes, each already in the output.
                let mut copied = 0;
                while copied < len {
                    let n = (len - copied).min(dist);
                    out.extend_from_within(start + copied..start + copied + n);
                    copied += n;
                }
            }
        }
    }
    if out.len() != out_len {
        return Err("LZF output shorter than announced");
    }
    Ok(out)
}

/// Compresses `input`; returns `None` when the result would not be shorter than
/// `max_len` bytes (Redis asks for at most `len - 4`).
pub fn compress(input: &[u8], max_len: usize) -> Option<Vec<u8>> {
    const HLOG: usize = 14;
    let n = input.len();
    let mut out: Vec<u8> = Vec::with_capacity(max_len + 1);
    if n < 4 {
        // Literal only.
        if n == 0 {
            return None;
        }
        out.push((n - 1) as u8);
        out.extend_from_slice(input);
        return (out.len() <= max_len).then_some(out);
    }
    if n >= u32::MAX as usize {
        return None;
    }
    // The hash table is reused between calls (a 128 KiB zeroed allocation per string
    // dominated snapshot time): entries carry the call's generation, and an entry of
    // another generation reads as empty, exactly like a fresh zeroed table.
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let (gen, table) = &mut *t;
        if table.is_empty() {
            *table = vec![0u64; 1 << HLOG];
        }
        *gen = gen.wrapping_add(1);
        if *gen == 0 {
            table.fill(0);
            *gen = 1;
        }
        compress_with(input, max_len, out, table, (*gen as u64) << 32)
    })
}

thread_local! {
    static TABLE: std::cell::RefCell<(u32, Vec<u64>)> = const { std::cell::RefCell::new((0, Vec::new())) };
}

fn compress_with(
    input: &[u8],
    max_len: usize,
    mut out: Vec<u8>,
    table: &mut [u64],
    gen: u64,
) -> Option<Vec<u8>> {
    const HLOG: usize = 14;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    let n = input.len();
    let hash = |p: usize| -> usize {
        let v = ((input[p] as u32) << 16) | ((input[p + 1] as u32) << 8) | input[p + 2] as u32;
        ((v.wrapping_mul(2654435761)) >> (32 - HLOG as u32)) as usize
    };
    let mut lit_start = 0usize;
    let mut ip = 0usize;
    let flush_lit = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let run = (to - s).min(32);
            out.push((run - 1) as u8);
            out.extend_from_slice(&input[s..s + run]);
            s += run;
        }
    };
    while ip + 2 < n {
        let h = hash(ip);
        let e = table[h];
        let cand = if e >> 32 == gen >> 32 {
            (e & 0xffff_ffff) as usize
        } else {
            0
        };
        table[h] = gen | (ip + 1) as u64;
        if cand > 0 {
            let r = cand - 1;
            let off = ip - r;
            if (1..=MAX_OFF).contains(&off)
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
                && input[r + 2] == input[ip + 2]
            {
                let mut len = 3;
                let maxlen = (n - ip).min(MAX_REF);
                while len < maxlen && input[r + len] == input[ip + len] {
                    len += 1;
                }
                flush_lit(&mut out, lit_start, ip);
                let l = len - 2;
                let d = off - 1;
                if l < 7 {
                    out.push(((l << 5) | (d >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (d >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push((d & 0xff) as u8);
                ip += len;
                lit_start = ip;
                if out.len() > max_len {
                    return None;
                }
                continue;
            }
        }
        ip += 1;
    }
    flush_lit(&mut out, lit_start, n);
    (out.len() <= max_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello world world world".to_vec(),
            (0..5000u32).map(|i| (i % 7) as u8 + b'a').collect(),
            (0..70000u32).map(|i| ((i / 300) % 200) as u8).collect(),
        ];
        for c in cases {
            let z = compress(&c, c.len()).expect("compressible");
            assert!(z.len() < c.len());
            assert_eq!(decompress(&z, c.len()).unwrap(), c);
        }
    }

    #[test]
    fn incompressible_is_refused() {
        let mut x = 12345u64;
        let data: Vec<u8> = (0..100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(&data, data.len() - 4).is_none());
    }

    #[test]
    fn known_redis_stream() {
        // "aaaaaaaaaaaaaaaaaaaaaaaa" (24 bytes) as liblzf writes it: literal 'a', then a
        // back reference of length 23 at distance 1.
        let z = [0x00, b'a', 0xe0, 0x0e, 0x00];
        assert_eq!(decompress(&z, 24).unwrap(), vec![b'a'; 24]);
    }

    #[test]
    fn corrupt_input_errors() {
        assert!(decompress(&[0x05, b'a'], 6).is_err());
        assert!(decompress(&[0x20, 0x05], 3).is_err());
        assert!(decompress(&[0x00, b'a', 0xe0], 24).is_err());
        assert!(decompress(&[0x00, b'a'], 2).is_err());
        assert!(decompress(&[0x01, b'a', b'b'], 1).is_err());
    }
}
