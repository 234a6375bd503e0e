//! Differential tests of the bitmap and HyperLogLog commands: the same commands go to the
//! reference `redis-server` (7.0) and to Libellule, and the replies must be identical,
//! byte for byte. Both families work on plain strings, so the scripts also GET the
//! resulting values and compare them byte for byte (a HyperLogLog's sparse/dense bytes,
//! its cached cardinality, a bitmap grown by SETBIT/BITFIELD).
//!
//! Every suite runs with `--io_threads 1` and `--io_threads 3` (cross-shard BITOP,
//! PFCOUNT and PFMERGE). The random suite prints its seed; reproduce with
//! `DIFF_SEED=<seed>`, change its length with `DIFF_COMMANDS=<n>`.

mod common;

use common::diff::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bitmap and error paths.
const BITMAP_SCRIPT: &str = r#"
FLUSHALL
SETBIT b 7 1
SETBIT b 7 1
SETBIT b 100 1
SETBIT b 100 0
GET b
OBJECT ENCODING b
STRLEN b
GETBIT b 7
GETBIT b 100000
GETBIT nokey 3
GETBIT b -1
GETBIT b abc
GETBIT b 4294967295
SETBIT b 4294967296 1
SETBIT b 1 2
SETBIT b 1 -1
SETBIT b 1 x
SETBIT b -1 1
SET n 12345
GETBIT n 2
BITCOUNT n
SETBIT n 0 1
GET n
OBJECT ENCODING n
SET s "\xff\xf0\x00\x0f"
BITCOUNT s
BITCOUNT s 0 -1
BITCOUNT s 1 1
BITCOUNT s -2 -1
BITCOUNT s -1 -2
BITCOUNT s 5 100
BITCOUNT s 0 -1 BIT
BITCOUNT s 3 20 bit
BITCOUNT s 3 20 byte
BITCOUNT s 3 20 nope
BITCOUNT s 3
BITCOUNT s a b
BITCOUNT s 0 1 bit extra
BITCOUNT nokey 0 x
BITPOS s 0
BITPOS s 1
BITPOS s 1 1
BITPOS s 0 1 1
BITPOS s 0 -1
BITPOS s 1 3 -1 bit
BITPOS s 0 0 11 bit
BITPOS s 0 0 7 bit
BITPOS s 1 5 7 bit
BITPOS s 2
BITPOS s x
BITPOS s 1 0 1 nope
BITPOS s 1 a
BITPOS s 1 0 a
BITPOS nokey 0
BITPOS nokey 1
BITPOS nokey 1 a b c
SET f "\xff\xff"
BITPOS f 0
BITPOS f 0 0
BITPOS f 0 0 -1
BITPOS f 0 0 -1 bit
BITPOS f 0 3 bit
BITPOS f 1 1 0
SET e ""
BITPOS e 0
BITPOS e 1
BITPOS e 0 0 -1
BITCOUNT e
BITOP AND d1 s f
GET d1
OBJECT ENCODING d1
BITOP OR d1 s f b
GET d1
BITOP XOR d1 s f n
GET d1
BITOP NOT d1 s
GET d1
BITOP NOT d1 s f
BITOP nand d1 s
BITOP AND d1 nope1 nope2
EXISTS d1
BITOP OR d1 s nope
GET d1
HSET h f v
BITOP AND d1 s h
GETBIT h 1
SETBIT h 1 1
BITCOUNT h
BITPOS h 1
BITFIELD h GET u8 0
SET lng "0123456789abcdefghijklmnopqrstuvwxyz0123456789"
BITOP AND d2 lng lng f
GET d2
BITOP XOR d2 lng s b f n lng
GET d2
BITCOUNT lng 3 -3
BITPOS lng 1 9
"#;

/// BITFIELD paths.
const BITFIELD_SCRIPT: &str = r#"
FLUSHALL
BITFIELD bf SET i8 0 -100 GET u4 0 INCRBY u2 100 1 OVERFLOW SAT INCRBY i8 #1 200 OVERFLOW FAIL INCRBY u8 #2 300
GET bf
BITFIELD bf GET u64 0
BITFIELD bf GET i64 0
BITFIELD bf GET u63 0
BITFIELD bf GET i65 0
BITFIELD bf GET x8 0
BITFIELD bf GET u0 0
BITFIELD bf GET u8 -1
BITFIELD bf GET u8 #-1
BITFIELD bf GET u8 #a
BITFIELD bf GET u8 4294967296
BITFIELD bf SET u8 0 abc
BITFIELD bf bogus
BITFIELD bf GET u8
BITFIELD bf OVERFLOW nah
BITFIELD bf OVERFLOW
BITFIELD_RO bf GET u8 0 SET u8 0 1
BITFIELD_RO bf GET u8 0 GET i3 #5
BITFIELD_RO nokey GET u8 0
BITFIELD bf
BITFIELD nokey
EXISTS nokey
BITFIELD bf SET i64 0 -9223372036854775808 INCRBY i64 0 -1 OVERFLOW SAT INCRBY i64 0 -1 SET i8 #3 -200 SET u8 #4 -1
GET bf
BITFIELD bf OVERFLOW WRAP SET u8 0 300 SET i8 8 200 INCRBY u3 16 9 INCRBY i3 19 -9 INCRBY i64 64 9223372036854775807 INCRBY i64 64 1
GET bf
BITFIELD bf OVERFLOW SAT SET u8 0 300 SET i8 8 200 SET i8 8 -200 INCRBY u3 16 9 INCRBY u3 16 -9 INCRBY i3 19 -9 INCRBY i64 64 9223372036854775807 INCRBY i64 64 1
GET bf
BITFIELD bf OVERFLOW FAIL SET u8 0 300 SET i8 8 200 INCRBY u3 16 9 INCRBY i3 19 -9 INCRBY u63 0 9223372036854775807 GET u63 0
GET bf
BITFIELD bf SET u1 1000 1 GET u1 1000 GET u16 995 GET i5 #200
STRLEN bf
BITFIELD bf SET i8 0 -9223372036854775808 OVERFLOW SAT SET i8 0 -9223372036854775808 SET u8 8 -9223372036854775808
GET bf
BITFIELD n2 INCRBY u8 #100 1
STRLEN n2
OBJECT ENCODING n2
SET n3 42
BITFIELD n3 GET u8 0 SET u8 8 65
GET n3
BITFIELD_RO n3 GET i16 0
"#;

/// HyperLogLog paths (replies and the exact bytes after each write).
const HLL_SCRIPT: &str = r#"
FLUSHALL
PFADD h
GET h
PFADD h a b c d e
GET h
PFCOUNT h
GET h
OBJECT ENCODING h
PFADD h a
PFADD h f
PFCOUNT h
PFADD h2 x y z a
PFCOUNT h h2
PFCOUNT h h2 nokey
PFCOUNT nokey
PFMERGE h3 h h2
GET h3
PFCOUNT h3
PFMERGE h3
GET h3
PFMERGE h4
GET h4
PFDEBUG ENCODING h3
PFDEBUG DECODE h3
PFDEBUG TODENSE h3
PFDEBUG TODENSE h3
PFDEBUG ENCODING h3
PFDEBUG DECODE h3
GET h3
PFCOUNT h3
PFADD h3 new1 new2
GET h3
PFCOUNT h3
PFMERGE h5 h h3
PFDEBUG ENCODING h5
GET h5
PFDEBUG FOO h3
PFDEBUG DECODE nokey
PFDEBUG GETREG nokey
SET s hello
PFADD s x
PFCOUNT s
PFCOUNT s h
PFMERGE h s
PFDEBUG ENCODING s
SET n 1234567890123456789
PFADD n x
HSET hs f v
PFADD hs x
PFCOUNT hs
PFCOUNT h hs
PFMERGE hs h
PFMERGE h hs
SET bad "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
PFCOUNT bad
PFADD bad foo
PFCOUNT bad h
PFMERGE m bad
SET bad2 "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
PFCOUNT bad2
SET bad3 "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"
PFADD bad3 x
SET cached "HYLL\x01\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
PFCOUNT cached
PFADD cached z
PFCOUNT cached
GET cached
APPEND h xyz
PFCOUNT h
SETBIT h2 200 1
PFCOUNT h2
# Corrupt sparse sketches: registers past 16384, truncated XZERO at the end.
SET t "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x80"
PFCOUNT t t
PFDEBUG TODENSE t
PFMERGE t2 t
PFADD t a b c
GET t
SET t "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x00"
PFCOUNT t t
PFADD t a b c
GET t
SET t "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xfe\x81"
PFCOUNT t t
PFMERGE t2 t
SET t "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x20\x00\x5f"
PFADD t e1 e2 e3 e4 e5 e6 e7 e8 e9 e10 e11 e12 e13 e14 e15 e16 e17 e18 e19 e20
GET t
PFCOUNT t
PFADD t e21 e22 e23 e24 e25 e26 e27 e28 e29 e30
GET t
SET t "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f"
PFADD t x1 x2 x3 x4 x5 x6 x7 x8
GET t
PFDEBUG DECODE t
PFSELFTEST
# Inside MULTI and scripts (keys on several shards with io_threads 3).
FLUSHALL
SETBIT k1 3 1
SETBIT k2 9 1
PFADD p1 a b c
PFADD p2 c d e
MULTI
BITOP OR k3 k1 k2
GET k3
PFMERGE p3 p1 p2
PFCOUNT p1 p2 p3
GET p3
BITFIELD k3 INCRBY u8 0 1
EXEC
EVAL "redis.call('PFADD', KEYS[1], 'x', 'y'); return redis.call('PFCOUNT', KEYS[1], KEYS[2])" 2 p1 p2
EVAL "return redis.call('BITOP', 'XOR', KEYS[1], KEYS[2], KEYS[3])" 3 k4 k1 k2
GET k4
EVAL "return redis.call('BITFIELD', KEYS[1], 'GET', 'u4', 0, 'SET', 'i4', 4, -1)" 1 k4
EVAL "return redis.call('BITFIELD_RO', KEYS[1], 'SET', 'u4', 0, 1)" 1 k4
"#;

#[test]
fn bits_scripted_io1() {
    with_pair("bits-scripted", "1", &[], |d, _| {
        d.script(BITMAP_SCRIPT);
        d.script(BITFIELD_SCRIPT);
        d.script(HLL_SCRIPT);
    });
}

#[test]
fn bits_scripted_io3() {
    with_pair("bits-scripted", "3", &[], |d, _| {
        d.script(BITMAP_SCRIPT);
        d.script(BITFIELD_SCRIPT);
        d.script(HLL_SCRIPT);
    });
}

/// RESP3 forms (BITFIELD's nulls, integers).
#[test]
fn bits_resp3() {
    with_pair("bits-resp3", "3", &[], |d, _| {
        d.line("HELLO 3");
        d.script(
            "FLUSHALL\nBITFIELD k OVERFLOW FAIL INCRBY u2 0 5 GET u2 0\nPFADD p a b\nPFCOUNT p\nPFDEBUG ENCODING p\nBITPOS k 1\n",
        );
    });
}

/// Adds `n` elements `prefix0..` to `key` on both servers in batches, comparing replies.
fn pfadd_many(d: &mut Diff, key: &str, prefix: &str, n: usize, batch: usize) {
    let mut i = 0;
    while i < n {
        let mut line = format!("PFADD {key}");
        for j in i..(i + batch).min(n) {
            line.push_str(&format!(" {prefix}{j}"));
        }
        d.line(&line);
        i += batch;
    }
}

/// Sparse to dense promotion at `hll-sparse-max-bytes`, byte-identical strings along the
/// way, merges of sparse and dense sketches, CONFIG SET of the threshold.
fn run_hll_growth(io: &str) {
    with_pair("hll-growth", io, &[], |d, _| {
        d.line("FLUSHALL");
        for (step, n) in [(1, 50), (7, 300), (50, 3000)] {
            let key = format!("g{step}");
            let mut i = 0;
            while i < n {
                pfadd_many(d, &key, &format!("e{step}-{i}-"), step, step);
                if i % (step * 10) == 0 {
                    d.line(&format!("GET {key}"));
                    d.line(&format!("PFDEBUG ENCODING {key}"));
                }
                i += step;
            }
            d.line(&format!("GET {key}"));
            d.line(&format!("PFCOUNT {key}"));
            d.line(&format!("GET {key}"));
        }
        d.line("PFCOUNT g1 g7 g50");
        d.line("PFMERGE {m}x g1 g7");
        d.line("GET {m}x");
        d.line("PFMERGE {m}y g50 g1");
        d.line("GET {m}y");
        d.line("PFMERGE g1 g7");
        d.line("GET g1");
        d.line("CONFIG SET hll-sparse-max-bytes 100");
        pfadd_many(d, "small", "s", 200, 5);
        d.line("GET small");
        d.line("PFDEBUG ENCODING small");
        d.line("CONFIG SET hll-sparse-max-bytes 3000");
        pfadd_many(d, "big", "b", 20000, 500);
        d.line("GET big");
        d.line("PFCOUNT big");
        d.line("PFDEBUG GETREG big");
        d.line("PFDEBUG GETREG g7");
        d.line("GET g7");
    });
}

#[test]
fn hll_growth_io1() {
    run_hll_growth("1");
}

#[test]
fn hll_growth_io3() {
    run_hll_growth("3");
}

/// Keys of the random generator (with 3 shards they span shards).
const KEYS: &[&str] = &["k1", "k2", "k3", "k4", "k5", "p1", "p2", "p3"];

/// One random command line.
fn random_line(rng: &mut SmallRng) -> String {
    let k = |rng: &mut SmallRng| KEYS[rng.gen_range(0..KEYS.len())];
    let off = |rng: &mut SmallRng| -> i64 {
        match rng.gen_range(0..10) {
            0 => rng.gen_range(-3..0),
            1 => rng.gen_range(0..4000),
            _ => rng.gen_range(0..64),
        }
    };
    let idx = |rng: &mut SmallRng| -> i64 { rng.gen_range(-12..12) };
    match rng.gen_range(0..22) {
        0 | 1 => format!("SETBIT {} {} {}", k(rng), off(rng), rng.gen_range(0..2)),
        2 => format!("GETBIT {} {}", k(rng), off(rng)),
        3 => format!("BITCOUNT {}", k(rng)),
        4 => {
            let unit = ["", " BIT", " BYTE"][rng.gen_range(0..3)];
            format!("BITCOUNT {} {} {}{unit}", k(rng), idx(rng), idx(rng))
        }
        5 => format!("BITPOS {} {}", k(rng), rng.gen_range(0..2)),
        6 => format!("BITPOS {} {} {}", k(rng), rng.gen_range(0..2), idx(rng)),
        7 => {
            let unit = ["", " BIT", " BYTE"][rng.gen_range(0..3)];
            format!(
                "BITPOS {} {} {} {}{unit}",
                k(rng),
                rng.gen_range(0..2),
                idx(rng) * 4,
                idx(rng) * 4
            )
        }
        8 => {
            let op = ["AND", "OR", "XOR", "NOT"][rng.gen_range(0..4)];
            let n = if op == "NOT" { 1 } else { rng.gen_range(1..4) };
            let srcs: Vec<&str> = (0..n).map(|_| k(rng)).collect();
            format!("BITOP {op} {} {}", k(rng), srcs.join(" "))
        }
        9 | 10 => {
            let mut l = format!("BITFIELD {}", k(rng));
            for _ in 0..rng.gen_range(1..4) {
                let sign = if rng.gen_bool(0.5) { "i" } else { "u" };
                let bits = if sign == "i" {
                    rng.gen_range(1..65)
                } else {
                    rng.gen_range(1..64)
                };
                let o = if rng.gen_bool(0.2) {
                    format!("#{}", rng.gen_range(0..8))
                } else {
                    rng.gen_range(0..80).to_string()
                };
                let v: i64 = match rng.gen_range(0..4) {
                    0 => rng.gen(),
                    1 => rng.gen_range(-300..300),
                    2 => i64::MAX - rng.gen_range(0..3),
                    _ => i64::MIN + rng.gen_range(0..3),
                };
                match rng.gen_range(0..4) {
                    0 => l.push_str(&format!(" GET {sign}{bits} {o}")),
                    1 => l.push_str(&format!(" SET {sign}{bits} {o} {v}")),
                    2 => l.push_str(&format!(" INCRBY {sign}{bits} {o} {v}")),
                    _ => l.push_str(&format!(
                        " OVERFLOW {}",
                        ["WRAP", "SAT", "FAIL"][rng.gen_range(0..3)]
                    )),
                }
            }
            l
        }
        11 => format!("GET {}", k(rng)),
        12 => format!(
            "APPEND {} {}",
            k(rng),
            ["x", "\"\\x00\\xff\"", "HYLL"][rng.gen_range(0..3)]
        ),
        13..=15 => {
            let n = rng.gen_range(0..40);
            let els: Vec<String> = (0..n)
                .map(|_| format!("e{}", rng.gen_range(0..3000)))
                .collect();
            format!("PFADD {} {}", k(rng), els.join(" "))
        }
        16 => format!("PFCOUNT {}", k(rng)),
        17 => {
            let n = rng.gen_range(1..4);
            let ks: Vec<&str> = (0..n).map(|_| k(rng)).collect();
            format!("PFCOUNT {}", ks.join(" "))
        }
        18 => {
            let n = rng.gen_range(0..3);
            let ks: Vec<&str> = (0..n).map(|_| k(rng)).collect();
            format!("PFMERGE {} {}", k(rng), ks.join(" "))
        }
        19 => format!("DEL {}", k(rng)),
        20 => format!("BITFIELD_RO {} GET u8 {}", k(rng), rng.gen_range(0..40)),
        _ => format!("PFDEBUG ENCODING {}", k(rng)),
    }
}

fn run_random(io: &str) {
    let seed: u64 = match std::env::var("DIFF_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("DIFF_SEED must be an unsigned integer"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    let n: usize = std::env::var("DIFF_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    eprintln!("random bits differential io_threads={io}: DIFF_SEED={seed} DIFF_COMMANDS={n}");
    let shards: BTreeSet<usize> = KEYS
        .iter()
        .map(|k| libellule::shard::key_shard(k.as_bytes(), 3))
        .collect();
    assert!(shards.len() >= 2, "the keys all live on one shard");
    with_pair("bits-random", io, &[], |d, _| {
        d.seed = Some(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        d.line("FLUSHALL");
        let mut errors = 0;
        for i in 0..n {
            let l = random_line(&mut rng);
            errors += d.line(&l).0.is_error() as usize;
            if i % 200 == 199 {
                for k in KEYS {
                    d.line(&format!("GET {k}"));
                }
            }
        }
        for k in KEYS {
            d.line(&format!("GET {k}"));
        }
        eprintln!("random bits differential io_threads={io}: {n} commands, {errors} errors");
        assert!(errors < n / 2, "mostly errors: the generator is broken");
    });
}

#[test]
fn bits_random_io1() {
    run_random("1");
}

#[test]
fn bits_random_io3() {
    run_random("3");
}

/// HLL bytes written by redis-server, SET into Libellule (and back), count the same; the
/// same PFADDs produce identical bytes on both.
#[test]
fn hll_interop() {
    with_pair("hll-interop", "3", &[], |d, _| {
        d.line("FLUSHALL");
        let mut rng = SmallRng::seed_from_u64(7);
        for (key, n) in [("a", 10usize), ("b", 700), ("c", 5000), ("d", 60000)] {
            let els: Vec<Vec<u8>> = (0..n)
                .map(|_| format!("x{}", rng.gen::<u32>()).into_bytes())
                .collect();
            for chunk in els.chunks(1000) {
                let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
                args.extend(chunk.iter().map(|e| e.as_slice()));
                d.redis.cmd(&args);
            }
            // redis -> libellule
            let bytes = d.redis.cmd(&[b"GET", key.as_bytes()]).as_bytes().to_vec();
            let copy = format!("{key}-copy");
            d.lib.cmd(&[b"SET", copy.as_bytes(), &bytes]);
            let want = d.redis.cmd(&[b"PFCOUNT", key.as_bytes()]);
            let got = d.lib.cmd(&[b"PFCOUNT", copy.as_bytes()]);
            assert_eq!(
                want, got,
                "count of redis's {key} ({n} elements) in libellule"
            );
            // libellule -> redis
            for chunk in els.chunks(1000) {
                let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
                args.extend(chunk.iter().map(|e| e.as_slice()));
                d.lib.cmd(&args);
            }
            let mine = d.lib.cmd(&[b"GET", key.as_bytes()]).as_bytes().to_vec();
            assert_eq!(mine, bytes, "PFADD bytes differ for {key}");
            d.redis.cmd(&[b"SET", copy.as_bytes(), &mine]);
            let back = d.redis.cmd(&[b"PFCOUNT", copy.as_bytes()]);
            assert_eq!(back, d.lib.cmd(&[b"PFCOUNT", key.as_bytes()]));
            let c = want.as_int() as f64;
            assert!(
                (c - n as f64).abs() <= n as f64 * 0.05 + 1.0,
                "{key}: {c} for {n}"
            );
        }
        d.line("PFCOUNT a b c d");
        d.line("PFCOUNT a-copy b-copy c-copy d-copy");
        d.line("PFMERGE {x}m a b c d");
    });
}
