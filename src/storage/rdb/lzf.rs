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

/// liblzf's hash table size (`HLOG` 16, Redis's setting).
const HLOG: u32 = 16;

thread_local! {
    /// The compressor's hash table: `generation << 32 | position + 1` per slot, so that
    /// each call sees an empty table without clearing 64 Ki slots.
    static TABLE: std::cell::RefCell<(u32, Vec<u64>)> =
        std::cell::RefCell::new((0, vec![0; 1 << HLOG]));
}

/// Compresses `input` into at most `out_len` bytes, or `None` when it does not fit
/// (Redis asks for at most `len - 4`). The output is the one liblzf 3.6 gives with
/// Redis's settings (`HLOG` 16, `VERY_FAST`, the match-length unrolling, the
/// conservative output checks), so compressed RDB strings are Redis's byte for byte.
/// (Redis leaves its hash table uninitialised, `INIT_HTAB 0`; a stale slot can only
/// matter when it happens to point into the current input, which this compressor, whose
/// table always starts empty, never sees.)
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    const MAX_LIT: usize = 1 << 5;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    let n = input.len();
    if n == 0 || out_len == 0 || n >= u32::MAX as usize {
        return None;
    }
    let idx = |h: u32| -> usize {
        ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) & ((1 << HLOG) - 1)) as usize
    };
    let frst = |p: usize| -> u32 {
        ((input[p] as u32) << 8) | input.get(p + 1).copied().unwrap_or(0) as u32
    };
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let (gen, table) = &mut *t;
        *gen = gen.wrapping_add(1);
        if *gen == 0 {
            table.iter_mut().for_each(|s| *s = 0);
            *gen = 1;
        }
        let stamp = (*gen as u64) << 32;
        let get = |table: &Vec<u64>, h: usize| -> Option<usize> {
            let s = table[h];
            (s >> 32 == stamp >> 32 && s as u32 != 0).then(|| (s as u32 - 1) as usize)
        };
        // Slack past `out_len`: liblzf's checks keep the result within it, the slack
        // only absorbs its "start a run" increments.
        let mut out = vec![0u8; out_len + 8];
        let mut op = 1usize; // start run
        let mut lit = 0usize;
        let mut ip = 0usize;
        let mut hval = frst(0);
        while ip + 2 < n {
            hval = (hval << 8) | input[ip + 2] as u32;
            let h = idx(hval);
            let r = get(table, h);
            table[h] = stamp | (ip as u64 + 1);
            let m = r.filter(|&r| {
                ip - r - 1 < MAX_OFF
                    && r > 0
                    && input[r + 2] == input[ip + 2]
                    && input[r] == input[ip]
                    && input[r + 1] == input[ip + 1]
            });
            if let Some(r) = m {
                let off = ip - r - 1;
                let mut len = 2usize;
                let maxlen = (n - ip - len).min(MAX_REF);
                if op + 3 + 1 >= out_len && op - (lit == 0) as usize + 3 + 1 >= out_len {
                    return None;
                }
                out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
                op -= (lit == 0) as usize; // undo an empty run
                let mut done = false;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            done = true;
                            break;
                        }
                    }
                }
                if !done {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }
                len -= 2; // octets - 1
                ip += 1;
                if len < 7 {
                    out[op] = ((off >> 8) + (len << 5)) as u8;
                    op += 1;
                } else {
                    out[op] = ((off >> 8) + (7 << 5)) as u8;
                    out[op + 1] = (len - 7) as u8;
                    op += 2;
                }
                out[op] = off as u8;
                op += 1;
                lit = 0;
                op += 1; // start run
                ip += len + 1;
                if ip >= n - 2 {
                    break;
                }
                ip -= 2;
                hval = frst(ip);
                hval = (hval << 8) | input[ip + 2] as u32;
                table[idx(hval)] = stamp | (ip as u64 + 1);
                ip += 1;
                hval = (hval << 8) | input[ip + 2] as u32;
                table[idx(hval)] = stamp | (ip as u64 + 1);
                ip += 1;
            } else {
                if op >= out_len {
                    return None;
                }
                lit += 1;
                out[op] = input[ip];
                op += 1;
                ip += 1;
                if lit == MAX_LIT {
                    out[op - lit - 1] = (lit - 1) as u8; // stop run
                    lit = 0;
                    op += 1; // start run
                }
            }
        }
        if op + 3 > out_len {
            return None;
        }
        while ip < n {
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
        out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
        op -= (lit == 0) as usize;
        if op > out_len {
            return None;
        }
        out.truncate(op);
        Some(out)
    })
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
    fn liblzf_bytes() {
        // What Redis 7.0.15's DUMP holds for 24 x "a" and 30 x "ab": no match at
        // position 0 (`ref > in_data`), matches stop two bytes before the end.
        let z = compress(&[b'a'; 24], 20).unwrap();
        assert_eq!(
            z,
            vec![0x01, b'a', b'a', 0xe0, 0x0b, 0x00, 0x01, b'a', b'a']
        );
        let ab = b"ab".repeat(30);
        let z = compress(&ab, 56).unwrap();
        assert_eq!(
            z,
            vec![0x02, b'a', b'b', b'a', 0xe0, 0x2e, 0x01, 0x01, b'a', b'b']
        );
        // Literal runs are cut at 32 bytes; no match at position 0 (`ref > in_data`).
        let mut v: Vec<u8> = (0..40u8).collect();
        v.extend_from_slice(&(0..40u8).collect::<Vec<u8>>());
        let z = compress(&v, v.len() - 4).unwrap();
        assert_eq!(decompress(&z, v.len()).unwrap(), v);
        assert_eq!(&z[..2], &[31, 0]);
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
