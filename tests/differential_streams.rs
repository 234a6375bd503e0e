//! Differential tests of the stream commands: the same commands go to the reference
//! `redis-server` (7.0) and to Libellule and the replies must match byte for byte,
//! except for what depends on the clock or on Redis's radix tree internals:
//! `*`-generated IDs are compared by shape, and in XINFO / XPENDING replies the idle
//! times, seen times, delivery times and `radix-tree-nodes` are masked (see [`masked`]).
//! Every suite runs with `--io_threads 1` and `--io_threads 3`: with three shards the
//! multi-key XREAD/XREADGROUP calls take their cross-shard paths.
//!
//! * `scripted_*`: every command with its options and errors, explicit IDs.
//! * `resp3_*`: the same kind of script after `HELLO 3` (maps).
//! * `random_*`: a seeded random command stream over a few keys and groups with
//!   explicit increasing IDs (`DIFF_SEED`, `DIFF_COMMANDS`).

mod common;

use common::diff::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{SystemTime, UNIX_EPOCH};

/// Commands whose replies carry clock-dependent numbers: compared after masking.
const FUZZY: &[&str] = &["XINFO", "XPENDING"];

/// Replaces clock-dependent integers (and `radix-tree-nodes`) with 0 in XINFO and
/// XPENDING replies.
fn masked(args: &[Vec<u8>], r: &Reply) -> Reply {
    let name = upper(&args[0]);
    match name.as_str() {
        "XPENDING" if args.len() > 3 => match r {
            Reply::Array(Some(rows)) => Reply::Array(Some(
                rows.iter()
                    .map(|row| match row {
                        Reply::Array(Some(v)) if v.len() == 4 => {
                            let mut v = v.clone();
                            v[2] = Reply::Int(0);
                            Reply::Array(Some(v))
                        }
                        other => other.clone(),
                    })
                    .collect(),
            )),
            other => other.clone(),
        },
        "XINFO" => mask_tree(r),
        _ => r.clone(),
    }
}

fn is_clock_key(k: &Reply) -> bool {
    matches!(k, Reply::Bulk(Some(b)) if [&b"idle"[..], b"seen-time", b"radix-tree-nodes"].contains(&&b[..]))
}

/// Masks clock fields in maps (RESP3) or flat key/value arrays (RESP2), and the
/// delivery times of XINFO STREAM FULL's pending rows.
fn mask_tree(r: &Reply) -> Reply {
    match r {
        Reply::Map(m) => Reply::Map(
            m.iter()
                .map(|(k, v)| {
                    if is_clock_key(k) {
                        (k.clone(), Reply::Int(0))
                    } else if matches!(k, Reply::Bulk(Some(b)) if b == b"pending") {
                        (k.clone(), mask_pending(v))
                    } else {
                        (k.clone(), mask_tree(v))
                    }
                })
                .collect(),
        ),
        Reply::Array(Some(v)) => {
            let mut out = v.clone();
            let mut i = 0;
            while i + 1 < out.len() {
                if is_clock_key(&out[i]) {
                    out[i + 1] = Reply::Int(0);
                } else if matches!(&out[i], Reply::Bulk(Some(b)) if b == b"pending") {
                    out[i + 1] = mask_pending(&out[i + 1]);
                }
                i += 1;
            }
            Reply::Array(Some(out.iter().map(mask_tree).collect()))
        }
        other => other.clone(),
    }
}

/// Pending rows `[id, consumer, time, count]` or `[id, time, count]`: time -> 0.
fn mask_pending(r: &Reply) -> Reply {
    match r {
        Reply::Array(Some(rows)) => Reply::Array(Some(
            rows.iter()
                .map(|row| match row {
                    Reply::Array(Some(v)) if v.len() >= 3 => {
                        let mut v = v.clone();
                        let at = v.len() - 2;
                        v[at] = Reply::Int(0);
                        Reply::Array(Some(v))
                    }
                    other => other.clone(),
                })
                .collect(),
        )),
        other => other.clone(),
    }
}

/// True when `b` looks like `<ms>-<seq>`.
fn id_shaped(b: &[u8]) -> bool {
    let s = String::from_utf8_lossy(b);
    let mut it = s.splitn(2, '-');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    ok(it.next()) && ok(it.next())
}

/// Runs one script line, with the stream-specific comparison rules.
fn run_line(d: &mut Diff, line: &str) {
    let args = split_args(line);
    let name = upper(&args[0]);
    let auto_id = name == "XADD" && args.iter().any(|a| a == b"*");
    if !auto_id && !FUZZY.contains(&name.as_str()) {
        d.exec(&args);
        return;
    }
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let a = d.redis.cmd(&refs);
    let b = d.lib.cmd(&refs);
    d.history
        .push(format!("{}  -> {:?}", show_command(&args), a));
    if auto_id {
        let ok = match (&a, &b) {
            (Reply::Bulk(Some(x)), Reply::Bulk(Some(y))) => id_shaped(x) && id_shaped(y),
            _ => a == b,
        };
        if !ok {
            d.fail(&format!("XADD * mismatch: redis {a:?} libellule {b:?}"));
        }
        return;
    }
    if masked(&args, &a) != masked(&args, &b) {
        d.fail(&format!(
            "MISMATCH (masked) on {}\n  redis-server: {a:?}\n  libellule:    {b:?}",
            show_command(&args)
        ));
    }
}

fn run_script(d: &mut Diff, text: &str) {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        run_line(d, l);
    }
}

/// XADD/XLEN/XRANGE/XREVRANGE/XDEL/XTRIM and their errors.
const SCRIPT_BASIC: &str = r#"
XADD s 1-1 a 1 b 2
XADD s 1-1 a 1
XADD s 1-0 a 1
XADD s 0-0 a 1
XADD s 0-1 a 1
XADD s 1-* c 3
XADD s 1-* c 4
XADD s 5 d 4
XADD s 5-* d 5
XADD s bad x y
XADD s 1-x x y
XADD s -1 x y
XADD s 18446744073709551616-0 x y
XADD s + x y
XADD s - x y
XADD s 9-0 f
XADD s 9-0 f v g
XADD s 9-0
XADD s NOMKSTREAM 9-0 f v
XADD nokey NOMKSTREAM 1-1 f v
EXISTS nokey
XADD auto * f v
XLEN auto
XADD s MAXLEN
XADD s MAXLEN -1 10-0 f v
XADD s MAXLEN abc 10-0 f v
XADD s MAXLEN 2 MINID 0 10-0 f v
XADD s LIMIT 10 10-0 f v
XADD s MAXLEN 100 LIMIT 10 10-0 f v
XADD s MAXLEN = 100 LIMIT 10 10-0 f v
XADD s MAXLEN ~ 100 LIMIT -1 10-0 f v
XADD s MAXLEN ~ 100 LIMIT x 10-0 f v
XADD s MINID bad 10-0 f v
XADD s MINID + 10-0 f v
XLEN s
XLEN nokey
XRANGE s - +
XRANGE s - + COUNT 2
XRANGE s - + COUNT 0
XRANGE s - + COUNT -5
XRANGE s - + COUNT x
XRANGE s - + COUNT
XRANGE s - + LIMIT 2
XRANGE s 1 1
XRANGE s 1-1 1-2
XRANGE s (1-1 5
XRANGE s 1 (5-0
XRANGE s (0 (1
XRANGE s 5 1
XRANGE s (- +
XRANGE s - (+
XRANGE s ( +
XRANGE s (18446744073709551615-18446744073709551615 +
XRANGE s - (0-0
XRANGE s abc +
XRANGE nokey - +
XREVRANGE s + -
XREVRANGE s + - COUNT 1
XREVRANGE s (5-1 (1-1
XREVRANGE s - +
XREVRANGE nokey + -
XDEL s 1-2 1-2 99-0
XDEL s bad
XDEL nokey bad
XDEL nokey 1-1
XRANGE s - +
XLEN s
XDEL s 1-1
XINFO STREAM s
XTRIM s
XTRIM s MAXLEN
XTRIM s MAXLEN 1 MAXLEN 2
XTRIM s BOGUS 1
XTRIM s MAXLEN 10 LIMIT 1
XTRIM s MINID ~ 0 LIMIT 1
XTRIM nokey MAXLEN 0
XTRIM s MAXLEN 2
XRANGE s - +
XTRIM s MINID 5-1
XRANGE s - +
XTRIM s MINID = 5-1
XTRIM s MAXLEN ~ 0
XTRIM s MAXLEN 0
XLEN s
EXISTS s
TYPE s
OBJECT ENCODING s
XINFO STREAM s
XADD s 3-0 a b
XADD s 20-0 a b
XINFO STREAM s
DEL s
XADD s MAXLEN 0 1-0 a b
XLEN s
XINFO STREAM s
"#;

/// Node boundaries: approximate trimming removes whole nodes.
const SCRIPT_NODES: &str = r#"
CONFIG SET stream-node-max-entries 3
XADD n 1-0 f v
XADD n 2-0 f v
XADD n 3-0 f v
XADD n 4-0 f v
XADD n 5-0 f v
XADD n 6-0 f v
XADD n 7-0 f v
XADD n 8-0 f v
XADD n 9-0 f v
XADD n 10-0 f v
XINFO STREAM n
XTRIM n MAXLEN ~ 8
XINFO STREAM n
XTRIM n MAXLEN ~ 5
XLEN n
XTRIM n MINID ~ 9
XLEN n
XRANGE n - +
XTRIM n MAXLEN ~ 1 LIMIT 2
XLEN n
XTRIM n MAXLEN ~ 1 LIMIT 3
XLEN n
XDEL n 7-0 8-0 9-0
XINFO STREAM n
XADD n MAXLEN ~ 2 11-0 f v
XADD n MAXLEN ~ 2 12-0 f v
XADD n MAXLEN ~ 2 13-0 f v
XADD n MAXLEN ~ 2 14-0 f v
XRANGE n - +
XINFO STREAM n
XADD n MINID ~ 14 15-0 f v
XINFO STREAM n
CONFIG SET stream-node-max-entries 100
"#;

/// Consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO.
const SCRIPT_GROUPS: &str = r#"
XGROUP
XGROUP HELP
XGROUP HELP extra
XGROUP FOO
XGROUP CREATE
XGROUP CREATE g
XGROUP CREATE g grp
XGROUP CREATE g grp $
XGROUP CREATE g grp $ MKSTREAM
XGROUP CREATE g grp $ MKSTREAM
XGROUP CREATE g grp2 0 MKSTREAM ENTRIESREAD
XGROUP CREATE g grp2 0 ENTRIESREAD -2
XGROUP CREATE g grp2 0 ENTRIESREAD x
XGROUP CREATE g grp2 0 BOGUS
XGROUP CREATE g grp2 bad
XGROUP CREATE g grp2 - 
XGROUP CREATE g grp2 0 ENTRIESREAD 3 MKSTREAM
XINFO GROUPS g
XGROUP DESTROY g grp2
XGROUP DESTROY g grp2
XADD g 1-0 f 1
XADD g 2-0 f 2
XADD g 3-0 f 3
XADD g 4-0 f 4
XADD g 5-0 f 5
XINFO GROUPS g
XREADGROUP GROUP grp alice COUNT 2 STREAMS g >
XREADGROUP GROUP grp bob COUNT 1 STREAMS g >
XINFO GROUPS g
XINFO CONSUMERS g grp
XINFO CONSUMERS g nogrp
XINFO CONSUMERS nokey grp
XPENDING g grp
XPENDING g grp - + 10
XPENDING g grp - + 10 alice
XPENDING g grp - + 10 carol
XPENDING g grp (1-0 + 10
XPENDING g grp - (3-0 1
XPENDING g grp IDLE 0 - + 10
XPENDING g grp IDLE 100000 - + 10
XPENDING g grp IDLE 0 - + 10 bob
XPENDING g grp IDLE x - + 10
XPENDING g grp IDLE 0 - +
XPENDING g grp - + x
XPENDING g grp - + -1
XPENDING g grp - +
XPENDING g grp bad + 10
XPENDING g nogrp
XPENDING nokey grp
XPENDING g grp - + 10 alice extra extra
XREADGROUP GROUP grp alice STREAMS g 0
XREADGROUP GROUP grp alice COUNT 1 STREAMS g 1-0
XREADGROUP GROUP grp alice STREAMS g $
XREADGROUP GROUP grp alice STREAMS g bad
XREADGROUP GROUP nogrp alice STREAMS g >
XREADGROUP GROUP grp alice STREAMS nokey >
XREADGROUP GROUP grp alice STREAMS g
XREADGROUP GROUP grp alice NOACK COUNT 1 STREAMS g >
XREADGROUP STREAMS g >
XREADGROUP GROUP grp alice BOGUS STREAMS g >
XPENDING g grp
XACK g grp 1-0 1-0 9-9
XACK g grp bad
XACK g nogrp bad
XACK nokey grp 1-0
XPENDING g grp
XGROUP CREATECONSUMER g grp carol
XGROUP CREATECONSUMER g grp carol
XGROUP CREATECONSUMER g nogrp carol
XGROUP CREATECONSUMER nokey grp carol
XINFO CONSUMERS g grp
XCLAIM g grp carol 0 2-0 3-0
XPENDING g grp - + 10
XCLAIM g grp dave 0 2-0 JUSTID
XPENDING g grp - + 10
XCLAIM g grp dave 0 4-0 5-0
XCLAIM g grp dave 0 5-0 FORCE RETRYCOUNT 7
XPENDING g grp - + 10
XCLAIM g grp dave 100000 3-0
XCLAIM g grp dave 0 3-0 IDLE 5000 RETRYCOUNT 3 JUSTID
XPENDING g grp - + 10
XCLAIM g grp dave 0 3-0 TIME 1000
XCLAIM g grp dave 0 3-0 BOGUS
XCLAIM g grp dave 0 bad
XCLAIM g grp dave x 3-0
XCLAIM g grp dave 0 3-0 IDLE x
XCLAIM g grp dave 0 3-0 TIME x
XCLAIM g grp dave 0 3-0 RETRYCOUNT x
XCLAIM g grp dave 0 3-0 LASTID bad
XCLAIM g grp dave 0 3-0 LASTID 10-0 JUSTID
XINFO GROUPS g
XCLAIM g nogrp dave 0 3-0
XCLAIM nokey grp dave 0 3-0
XDEL g 3-0
XCLAIM g grp erin 0 3-0
XPENDING g grp - + 10
XREADGROUP GROUP grp alice STREAMS g 0
XAUTOCLAIM g grp frank 0 0 COUNT 1
XAUTOCLAIM g grp frank 0 0 COUNT 1 JUSTID
XAUTOCLAIM g grp frank 0 - COUNT 10
XAUTOCLAIM g grp frank 100000 0
XAUTOCLAIM g grp frank 0 (2-0 JUSTID
XAUTOCLAIM g grp frank 0 0 COUNT 0
XAUTOCLAIM g grp frank 0 0 COUNT x
XAUTOCLAIM g grp frank 0 0 BOGUS
XAUTOCLAIM g grp frank x 0
XAUTOCLAIM g grp frank 0 bad
XAUTOCLAIM g nogrp frank 0 0
XAUTOCLAIM nokey grp frank 0 0
XADD g 6-0 f 6
XREADGROUP GROUP grp alice STREAMS g >
XDEL g 6-0
XAUTOCLAIM g grp frank 0 0
XPENDING g grp
XINFO GROUPS g
XGROUP SETID g grp 0
XINFO GROUPS g
XGROUP SETID g grp $ ENTRIESREAD 2
XINFO GROUPS g
XGROUP SETID g grp 1-0 ENTRIESREAD 1
XGROUP SETID g grp - 
XGROUP SETID g grp bad
XGROUP SETID g grp 0 MKSTREAM
XGROUP SETID g nogrp 0
XGROUP SETID nokey grp 0
XINFO GROUPS g
XGROUP DELCONSUMER g grp frank
XGROUP DELCONSUMER g grp frank
XGROUP DELCONSUMER g nogrp frank
XINFO CONSUMERS g grp
XINFO STREAM g
XINFO STREAM g FULL
XINFO STREAM g FULL COUNT 1
XINFO STREAM g FULL COUNT 0
XINFO STREAM g FULL COUNT -1
XINFO STREAM g FULL COUNT x
XINFO STREAM g FULL BOGUS 1
XINFO STREAM g BOGUS
XINFO STREAM g FULL COUNT
XINFO STREAM nokey
XINFO
XINFO HELP
XINFO HELP x
XINFO BOGUS
XINFO GROUPS
XINFO GROUPS nokey
XGROUP DESTROY g grp
XINFO GROUPS g
"#;

/// XREAD, XSETID, WRONGTYPE against other types, arity.
const SCRIPT_READ: &str = r#"
XADD {k}a 1-0 f 1
XADD {k}a 2-0 f 2
XADD {k}b 1-5 g 1
XADD b2 3-0 h 1
XREAD STREAMS {k}a 0
XREAD COUNT 1 STREAMS {k}a {k}b 0 0
XREAD STREAMS {k}a {k}b 1-0 1-5
XREAD STREAMS {k}a $
XREAD STREAMS {k}a {k}b b2 nokey 0 0 0 0
XREAD STREAMS {k}a b2 1 2
XREAD STREAMS {k}a bad
XREAD STREAMS {k}a >
XREAD STREAMS {k}a -
XREAD STREAMS {k}a {k}b 0
XREAD STREAMS
XREAD COUNT x STREAMS {k}a 0
XREAD COUNT -1 STREAMS {k}a 0
XREAD GROUP g c STREAMS {k}a 0
XREAD NOACK STREAMS {k}a 0
XREAD BOGUS STREAMS {k}a 0
XREAD COUNT 1
XREAD BLOCK x STREAMS {k}a 0
XREAD BLOCK -1 STREAMS {k}a 0
XREAD BLOCK 10 STREAMS {k}a 0
XREAD BLOCK 10 STREAMS {k}a $
XREAD BLOCK 10 STREAMS nokey $
XREAD STREAMS nokey 0
XREAD STREAMS nokey $
SET str x
HSET hash f v
XREAD STREAMS {k}a str 0 0
XREAD STREAMS nokey str 0 bad
XREAD STREAMS nokey str bad 0
XADD str 1-0 f v
XADD hash 1-0 f v
XLEN str
XRANGE str - +
XREVRANGE hash + -
XDEL str 1-0
XTRIM str MAXLEN 0
XGROUP CREATE str g 0
XGROUP CREATE str g 0 MKSTREAM
XREADGROUP GROUP g c STREAMS str >
XACK str g 1-0
XPENDING str g
XCLAIM str g c 0 1-0
XAUTOCLAIM str g c 0 0
XINFO STREAM str
XINFO GROUPS hash
XSETID str 1-0
XSETID nokey 1-0
XSETID {k}a 1-0
XSETID {k}a 2-0
XSETID {k}a 5-0
XSETID {k}a bad
XSETID {k}a 10-0 ENTRIESADDED 1
XSETID {k}a 10-0 ENTRIESADDED -1
XSETID {k}a 10-0 ENTRIESADDED x
XSETID {k}a 10-0 MAXDELETEDID 11-0
XSETID {k}a 10-0 MAXDELETEDID bad
XSETID {k}a 10-0 ENTRIESADDED 10 MAXDELETEDID 9-0
XSETID {k}a 10-0 BOGUS
XINFO STREAM {k}a
XADD {k}a 10-0 f v
XADD {k}a 10-* f v
XSETID {k}a 18446744073709551615-18446744073709551615
XADD {k}a * f v
XADD {k}a 18446744073709551615-* f v
XLEN
XADD s
XRANGE s -
XDEL s
XACK s g
XCLAIM s g c 0
XAUTOCLAIM s g c 0
XSETID s
XPENDING s
XREADGROUP GROUP g c STREAMS
XREAD STREAMS s
XADD {k}c * a b
XADD {k}c MAXLEN 1 * a b
XLEN {k}c
MULTI
XREAD BLOCK 0 STREAMS nokey $
XREADGROUP GROUP grp c BLOCK 0 STREAMS nokey >
XADD {k}c 18446744073709551615-0 a b
EXEC
"#;

fn run_scripts(io_threads: &str) {
    with_pair("stream scripts", io_threads, &[], |d, _| {
        for script in [SCRIPT_BASIC, SCRIPT_NODES, SCRIPT_GROUPS, SCRIPT_READ] {
            d.line("FLUSHALL");
            run_script(d, script);
        }
        // The scripts really ran against both servers.
        let (a, b) = d.line("XADD chk 7-7 f v");
        assert_eq!((a, b), (Reply::bulk("7-7"), Reply::bulk("7-7")));
    });
}

#[test]
fn scripted_io1() {
    run_scripts("1");
}

#[test]
fn scripted_io3() {
    run_scripts("3");
}

/// RESP3: XREAD's map, XINFO's maps, nulls.
const SCRIPT_RESP3: &str = r#"
HELLO 3
XADD {r}a 1-0 f 1
XADD {r}b 2-0 f 2
XADD r3 3-0 f 3
XREAD STREAMS {r}a {r}b r3 0 0 0
XREAD STREAMS nokey 0
XREAD BLOCK 10 STREAMS nokey $
XRANGE {r}a - + COUNT 0
XGROUP CREATE {r}a g 0
XREADGROUP GROUP g c STREAMS {r}a >
XREADGROUP GROUP g c STREAMS {r}a >
XREADGROUP GROUP g c STREAMS {r}a 0
XPENDING {r}a g
XPENDING {r}a g - + 10
XINFO STREAM {r}a
XINFO STREAM {r}a FULL
XINFO GROUPS {r}a
XINFO CONSUMERS {r}a g
XAUTOCLAIM {r}a g c2 0 0
XGROUP CREATE {r}b g $
XINFO GROUPS {r}b
XPENDING {r}b g
XINFO STREAM nokey
XADD nokey NOMKSTREAM 1-0 a b
"#;

fn run_resp3(io_threads: &str) {
    with_pair("stream resp3", io_threads, &[], |d, _| {
        d.line("FLUSHALL");
        run_script(d, SCRIPT_RESP3);
    });
}

#[test]
fn resp3_io1() {
    run_resp3("1");
}

#[test]
fn resp3_io3() {
    run_resp3("3");
}

// ---------------------------------------------------------------------------
// Random
// ---------------------------------------------------------------------------

const KEYS: &[&str] = &["{s}1", "{s}2", "s3", "s4"];
const GROUPS: &[&str] = &["g1", "g2"];
const CONSUMERS: &[&str] = &["c1", "c2", "c3"];

struct Gen {
    rng: SmallRng,
    /// Next explicit ID's ms part, per key (increasing).
    next_ms: Vec<u64>,
}

impl Gen {
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.rng.gen_range(0..v.len())]
    }

    fn key_index(&mut self) -> usize {
        self.rng.gen_range(0..KEYS.len())
    }

    fn some_id(&mut self, k: usize) -> String {
        let top = self.next_ms[k].max(2);
        format!(
            "{}-{}",
            self.rng.gen_range(0..top),
            self.rng.gen_range(0..3)
        )
    }

    fn command(&mut self) -> Vec<String> {
        let k = self.key_index();
        let key = KEYS[k].to_string();
        let g = self.pick(GROUPS).to_string();
        let c = self.pick(CONSUMERS).to_string();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.rng.gen_range(0..100) {
            0..=29 => {
                self.next_ms[k] += self.rng.gen_range(0..3);
                let id = match self.rng.gen_range(0..4) {
                    0 => format!("{}-*", self.next_ms[k]),
                    _ => format!("{}-{}", self.next_ms[k], self.rng.gen_range(0..3)),
                };
                let mut v = s(&["XADD", &key]);
                match self.rng.gen_range(0..10) {
                    0 => v.extend(s(&["MAXLEN", "~", "5"])),
                    1 => v.extend(s(&["MAXLEN", "8"])),
                    2 => {
                        let m = self.some_id(k);
                        v.extend(s(&["MINID", &m]))
                    }
                    _ => {}
                }
                v.push(id);
                for _ in 0..self.rng.gen_range(1..4) {
                    let f = self.pick(&["a", "b", "c", "field", "x"]);
                    v.push(f.into());
                    v.push(self.rng.gen_range(0..1000).to_string());
                }
                v
            }
            30..=34 => {
                let a = self.some_id(k);
                let cnt = self.rng.gen_range(0..5).to_string();
                s(&["XRANGE", &key, &a, "+", "COUNT", &cnt])
            }
            35..=37 => s(&["XREVRANGE", &key, "+", "-", "COUNT", "3"]),
            38..=41 => {
                let (a, b) = (self.some_id(k), self.some_id(k));
                s(&["XDEL", &key, &a, &b])
            }
            42..=43 => {
                let n = self.rng.gen_range(0..12).to_string();
                let approx = self.pick(&["=", "~"]);
                s(&["XTRIM", &key, "MAXLEN", approx, &n])
            }
            44..=47 => {
                let other = self.pick(KEYS).to_string();
                let (a, b) = (self.some_id(k), self.some_id(k));
                s(&["XREAD", "COUNT", "3", "STREAMS", &key, &other, &a, &b])
            }
            48..=51 => {
                let id = self.pick(&["0", "$"]);
                s(&["XGROUP", "CREATE", &key, &g, id, "MKSTREAM"])
            }
            52..=63 => {
                let cnt = self.rng.gen_range(1..4).to_string();
                let mut v = s(&["XREADGROUP", "GROUP", &g, &c, "COUNT", &cnt]);
                if self.rng.gen_range(0..5) == 0 {
                    v.push("NOACK".into());
                }
                v.push("STREAMS".into());
                v.push(key.clone());
                v.push(if self.rng.gen_range(0..4) == 0 {
                    "0".into()
                } else {
                    ">".into()
                });
                v
            }
            64..=69 => {
                let a = self.some_id(k);
                s(&["XACK", &key, &g, &a])
            }
            70..=72 => s(&["XPENDING", &key, &g]),
            73..=75 => s(&["XPENDING", &key, &g, "-", "+", "10"]),
            76..=79 => {
                let a = self.some_id(k);
                let mut v = s(&["XCLAIM", &key, &g, &c, "0", &a]);
                if self.rng.gen_range(0..3) == 0 {
                    v.push("JUSTID".into());
                }
                v
            }
            80..=83 => {
                let a = self.some_id(k);
                let n = self.rng.gen_range(1..4).to_string();
                s(&["XAUTOCLAIM", &key, &g, &c, "0", &a, "COUNT", &n])
            }
            84..=85 => s(&["XINFO", "GROUPS", &key]),
            86..=87 => s(&["XINFO", "STREAM", &key]),
            88 => s(&["XINFO", "CONSUMERS", &key, &g]),
            89 => s(&["XGROUP", "DELCONSUMER", &key, &g, &c]),
            90 => s(&["XGROUP", "CREATECONSUMER", &key, &g, &c]),
            91 => s(&["XGROUP", "DESTROY", &key, &g]),
            92 => {
                let id = self.pick(&["0", "$"]);
                s(&["XGROUP", "SETID", &key, &g, id])
            }
            93 => s(&["XLEN", &key]),
            94 => s(&["XINFO", "STREAM", &key, "FULL", "COUNT", "3"]),
            95 => {
                self.next_ms[k] += 1;
                let id = format!("{}-0", self.next_ms[k]);
                s(&["XSETID", &key, &id])
            }
            96 => s(&["DEL", &key]),
            97 => s(&["XADD", "str", "1-1", "f", "v"]),
            _ => s(&["XRANGE", &key, "-", "+"]),
        }
    }
}

fn checkpoint(d: &mut Diff) {
    for k in KEYS {
        run_line(d, &format!("XRANGE {k} - +"));
        run_line(d, &format!("XINFO STREAM {k} FULL"));
    }
}

fn run_random(io_threads: &str) {
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
        .unwrap_or(4000);
    eprintln!(
        "stream random differential io_threads={io_threads}: DIFF_SEED={seed} DIFF_COMMANDS={n}"
    );
    with_pair("stream random", io_threads, &[], |d, _| {
        d.seed = Some(seed);
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(seed),
            next_ms: vec![1; KEYS.len()],
        };
        d.line("FLUSHALL");
        d.line("SET str x");
        d.line("CONFIG SET stream-node-max-entries 4");
        let mut errors = 0;
        for i in 0..n {
            let cmd: Vec<String> = g.command();
            let line: Vec<Vec<u8>> = cmd.iter().map(|s| s.clone().into_bytes()).collect();
            let name = cmd[0].as_str();
            if matches!(name, "XINFO" | "XPENDING") {
                run_line(d, &cmd.join(" "));
            } else {
                let (r, _) = d.exec(&line);
                errors += r.is_error() as usize;
            }
            if i % 300 == 299 {
                checkpoint(d);
            }
        }
        checkpoint(d);
        assert!(
            errors < n / 2,
            "too many errors: the generator is off ({errors}/{n})"
        );
    });
}

#[test]
fn random_io1() {
    run_random("1");
}

#[test]
fn random_io3() {
    run_random("3");
}
