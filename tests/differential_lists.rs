//! Differential tests of the list commands: the same commands go to the reference
//! `redis-server` (7.0) and to Libellule and the replies must be identical, byte for
//! byte. Every suite runs with `--io_threads 1` and `--io_threads 3` (keys then live on
//! different shards, so LMOVE/RPOPLPUSH/LMPOP and the blocking commands take their
//! cross-shard paths).
//!
//! * `scripted_*`: hand-written scripts for every list command, with their errors,
//!   WRONGTYPE cases, RESP3 forms, node-size settings, and the blocking commands when
//!   data is available or with tiny timeouts.
//! * `random_*`: a seeded random command stream over a few list keys (plus a string and
//!   a hash for WRONGTYPE). The seed is printed; reproduce with `DIFF_SEED=<seed>`,
//!   change the length with `DIFF_COMMANDS=<n>`.

mod common;

use common::diff::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{SystemTime, UNIX_EPOCH};

/// Pushes, pops (with and without COUNT), lengths and ranges.
const SCRIPT_BASICS: &str = r#"
LPUSH l a b c
RPUSH l d e f
LPUSHX l z
RPUSHX l y
LPUSHX nokey a
RPUSHX nokey a
EXISTS nokey
LLEN l
LLEN nokey
LRANGE l 0 -1
LRANGE l 2 4
LRANGE l -3 -1
LRANGE l -100 100
LRANGE l 5 2
LRANGE l 100 200
LRANGE l 0 -100
LRANGE nokey 0 -1
LRANGE l a 1
LRANGE l 0 b
LRANGE nokey x 1
LRANGE l 9223372036854775807 -9223372036854775808
LPOP l
RPOP l
LPOP l 2
RPOP l 2
LPOP l 0
RPOP l 0
LPOP l -1
LPOP l abc
LPOP l 1.5
LPOP l 1 2
LPOP nokey
LPOP nokey 2
LPOP nokey 0
RPOP nokey
RPOP nokey 5
LRANGE l 0 -1
LPOP l 100
EXISTS l
TYPE l
RPUSH l 1 2 3 4 5 6 7 8 9 10
RPOP l 3
LPOP l 3
LRANGE l 0 -1
OBJECT ENCODING l
TYPE l
DEL l
LPUSH l ""
LRANGE l 0 -1
LPOP l
EXISTS l
"#;

/// LINDEX, LSET, LINSERT, LREM, LTRIM.
const SCRIPT_EDIT: &str = r#"
RPUSH l a b c a b c a
LINDEX l 0
LINDEX l -1
LINDEX l 3
LINDEX l 7
LINDEX l -8
LINDEX l x
LINDEX nokey 0
LINDEX nokey x
LSET l 0 A
LSET l -1 Z
LSET l 7 x
LSET l -8 x
LSET l x y
LSET nokey 0 x
LSET nokey x x
LRANGE l 0 -1
LINSERT l BEFORE b B1
LINSERT l after b B2
LINSERT l before nothere x
LINSERT l middle b x
LINSERT nokey before a x
LINSERT nokey middle a x
LRANGE l 0 -1
LREM l 0 c
LREM l 1 b
LREM l -1 a
LREM l x a
LREM l 0 nothere
LREM nokey 0 a
LRANGE l 0 -1
LREM l 0 A
LREM l 0 B1
LREM l 0 B2
LRANGE l 0 -1
LREM l -100 b
LREM l 0 a
LREM l 0 Z
EXISTS l
RPUSH t 1 2 3 4 5 6 7 8 9
LTRIM t 1 -2
LRANGE t 0 -1
LTRIM t -3 100
LRANGE t 0 -1
LTRIM t x 1
LTRIM t 0 y
LTRIM nokey 0 1
LTRIM t 5 1
EXISTS t
RPUSH t a b c
LTRIM t 0 0
LRANGE t 0 -1
LTRIM t -100 -50
EXISTS t
"#;

/// LPOS with its options and errors.
const SCRIPT_LPOS: &str = r#"
RPUSH l a b c 1 2 3 c c
LPOS l c
LPOS l c RANK 2
LPOS l c RANK -1
LPOS l c RANK -3
LPOS l c RANK 4
LPOS l c COUNT 0
LPOS l c COUNT 2
LPOS l c COUNT 2 RANK 2
LPOS l c COUNT 0 RANK -1
LPOS l c MAXLEN 2
LPOS l c MAXLEN 3
LPOS l c COUNT 0 MAXLEN 7
LPOS l c RANK -1 MAXLEN 1
LPOS l c RANK -1 MAXLEN 2 COUNT 0
LPOS l nothere
LPOS l nothere COUNT 0
LPOS l c RANK 0
LPOS l c RANK x
LPOS l c COUNT -1
LPOS l c COUNT x
LPOS l c MAXLEN -1
LPOS l c MAXLEN x
LPOS l c BOGUS 1
LPOS l c RANK
LPOS l c COUNT
LPOS nokey c
LPOS nokey c COUNT 1
LPOS nokey c RANK 0
LPOS l c RANK -9223372036854775808
LPOS l c RANK 9223372036854775807
LPOS l c RANK 1 RANK 2
"#;

/// LMOVE and RPOPLPUSH, same key and across keys (shards with io_threads 3), LMPOP.
const SCRIPT_MOVE: &str = r#"
RPUSH src a b c d
LMOVE src dst LEFT RIGHT
LMOVE src dst RIGHT LEFT
LMOVE src dst left left
LMOVE src dst right right
LMOVE src dst up down
LMOVE src dst left down
LRANGE dst 0 -1
EXISTS src
LMOVE src dst LEFT RIGHT
RPOPLPUSH src dst
RPOPLPUSH dst dst
LRANGE dst 0 -1
LMOVE dst dst LEFT RIGHT
LRANGE dst 0 -1
RPUSH one x
LMOVE one one LEFT RIGHT
LRANGE one 0 -1
RPOPLPUSH one one
SET s str
LMOVE s dst LEFT RIGHT
LMOVE dst s LEFT RIGHT
RPOPLPUSH dst s
RPOPLPUSH s dst
LMOVE nokey s LEFT RIGHT
LRANGE dst 0 -1
RPUSH {t}a 1 2 3
LMOVE {t}a {t}b RIGHT LEFT
LRANGE {t}b 0 -1
RPUSH m1 a b c
RPUSH m2 x y
LMPOP 2 nokey m1 LEFT
LMPOP 2 m2 m1 RIGHT COUNT 10
LMPOP 2 m2 m1 RIGHT COUNT 1
LMPOP 1 nokey LEFT
LMPOP 0 m1 LEFT
LMPOP -1 m1 LEFT
LMPOP x m1 LEFT
LMPOP 1 m1 MIDDLE
LMPOP 3 m1 LEFT
LMPOP 1 m1 LEFT COUNT 0
LMPOP 1 m1 LEFT COUNT -1
LMPOP 1 m1 LEFT COUNT x
LMPOP 1 m1 LEFT COUNT 1 COUNT 1
LMPOP 1 m1 LEFT BOGUS
LMPOP 1 m1 LEFT COUNT
LMPOP 2 m1 s LEFT
LMPOP 2 s m1 LEFT
LMPOP 1 m1 LEFT
EXISTS m1
LMPOP 1 m1
"#;

/// Blocking commands that find data or time out quickly, and their errors.
const SCRIPT_BLOCKING: &str = r#"
RPUSH b1 a b c
BLPOP b1 0
BRPOP b1 0
BLPOP nokey b1 0.5
BLPOP nokey 0.01
BRPOP nokey other 0.01
EXISTS b1
BLPOP b1 x
BLPOP b1 -1
RPUSH b1 p
BLPOP b1 -0.0001
BLPOP b1 1e400
BLPOP b1 inf
BLPOP b1 -inf
BLPOP b1 9.3e15
BLPOP b1 nan
BLPOP b1 ""
BLPOP b1 " 1"
BLPOP nokey 0x1p-20
BLPOP nokey 0.00001
RPUSH b1 q r
BLPOP b1 9.2e15
BLPOP b1 -0
SET s str
BLPOP s 0.01
BLPOP nokey s 0.01
RPUSH b2 x
BLPOP b2 s 0.01
BLPOP s b2 0.01
RPUSH b3 1 2 3
BLMOVE b3 d3 LEFT RIGHT 0
BLMOVE b3 d3 RIGHT LEFT 0.01
BRPOPLPUSH b3 d3 0
BRPOPLPUSH b3 d3 0.01
BLMOVE b3 d3 LEFT RIGHT 0.01
BLMOVE b3 d3 UP RIGHT 0
BLMOVE b3 d3 LEFT RIGHT x
BLMOVE b3 d3 LEFT RIGHT -1
BRPOPLPUSH b3 d3 -1
LRANGE d3 0 -1
RPUSH b3 z
BLMOVE b3 s LEFT RIGHT 0
BLMOVE s d3 LEFT RIGHT 0
LRANGE b3 0 -1
RPUSH bm1 a b c
BLMPOP 0 2 nokey bm1 LEFT COUNT 2
BLMPOP 0.01 1 nokey RIGHT
BLMPOP 0 1 bm1 RIGHT COUNT 5
BLMPOP 0.01 1 bm1 RIGHT COUNT 5
BLMPOP x 1 bm1 LEFT
BLMPOP -1 1 bm1 LEFT
BLMPOP 0 0 bm1 LEFT
BLMPOP 0 1 bm1 UP
BLMPOP 0 2 bm1 LEFT
BLMPOP 0 1 bm1 LEFT COUNT 0
BLMPOP 0.01 2 nokey s LEFT
"#;

/// WRONGTYPE for every list command on a string and a hash, and list keys under
/// string commands.
const SCRIPT_WRONGTYPE: &str = r#"
SET s str
HSET h f v
LPUSH s a
RPUSH h a
LPUSHX s a
RPUSHX s a
LPOP s
RPOP h 2
LPOP s 0
LLEN s
LRANGE s 0 -1
LINDEX s 0
LINDEX s x
LSET s 0 x
LSET s x x
LINSERT h BEFORE a b
LREM s 0 a
LTRIM s 0 1
LPOS s a
LPOS s a COUNT 0
LMOVE s h LEFT RIGHT
RPOPLPUSH h s
LMPOP 1 s LEFT
RPUSH l a b
GET l
INCR l
APPEND l x
HGET l f
HSET l f v
TYPE l
OBJECT ENCODING l
RENAME l l2
LRANGE l2 0 -1
COPY l2 l3
LRANGE l3 0 -1
RPUSH l3 more
LRANGE l2 0 -1
SCAN 0 TYPE list COUNT 100
DEL l2 l3
"#;

/// Node sizes (`list-max-listpack-size`): the encoding stays "quicklist", contents
/// survive node splits.
const SCRIPT_ENCODING: &str = r#"
CONFIG SET list-max-listpack-size 2
RPUSH e 1 2 3 4 5 6 7
OBJECT ENCODING e
LINSERT e BEFORE 4 x
LSET e 2 y
LRANGE e 0 -1
LINDEX e 5
LREM e 0 x
LTRIM e 1 -2
LRANGE e 0 -1
CONFIG SET list-max-listpack-size -1
RPUSH e 8 9 10
OBJECT ENCODING e
CONFIG SET list-max-listpack-size 1
LPUSH e a b c
LRANGE e 0 -1
CONFIG SET list-max-listpack-size 0
RPUSH e z
LRANGE e 0 -1
LPOS e z
CONFIG GET list-max-listpack-size
CONFIG SET list-max-listpack-size -2
"#;

fn run_scripts(io_threads: &str) {
    let scripts: &[(&str, &str)] = &[
        ("basics", SCRIPT_BASICS),
        ("edit", SCRIPT_EDIT),
        ("lpos", SCRIPT_LPOS),
        ("move", SCRIPT_MOVE),
        ("blocking", SCRIPT_BLOCKING),
        ("wrongtype", SCRIPT_WRONGTYPE),
        ("encoding", SCRIPT_ENCODING),
    ];
    with_pair("lists", io_threads, &[], |d, _| {
        for (name, text) in scripts {
            d.line("FLUSHALL");
            d.history.push(format!("(script {name})"));
            d.script(text);
        }
        // RESP3: the nil forms of LPOP/RPOP (with and without COUNT), LMPOP, LPOS,
        // BLPOP timeouts and BLMOVE timeouts.
        d.line("FLUSHALL");
        d.line("HELLO 3");
        d.script(
            r#"
            LPOP nokey
            LPOP nokey 1
            RPOP nokey 0
            LINDEX nokey 0
            LMPOP 1 nokey LEFT
            LPOS nokey a
            LPOS nokey a COUNT 1
            BLPOP nokey 0.01
            BRPOP nokey 0.01
            BLMPOP 0.01 1 nokey LEFT
            BLMOVE nokey d LEFT LEFT 0.01
            BRPOPLPUSH nokey d 0.01
            LMOVE nokey d LEFT LEFT
            RPUSH l a b c
            LPOP l 2
            LMPOP 1 l RIGHT COUNT 3
            "#,
        );
        d.line("HELLO 2");
        // Long elements and many of them: several nodes.
        d.line("FLUSHALL");
        let big = "x".repeat(5000);
        for i in 0..40 {
            d.line(&format!("RPUSH big {big}{i} small{i}"));
        }
        d.line("LLEN big");
        d.line("LINDEX big 41");
        d.line("LINDEX big -3");
        d.line("LRANGE big 30 33");
        d.line("LINSERT big AFTER small20 mid");
        d.line("LSET big 10 changed");
        d.line("LREM big 0 small3");
        d.line("LPOS big small39");
        d.line("LTRIM big 3 -4");
        d.line("LRANGE big 0 5");
        d.line("OBJECT ENCODING big");
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

// ---------------------------------------------------------------------------
// Random stream
// ---------------------------------------------------------------------------

/// List keys (two share a hash tag, the others spread over shards).
const LIST_KEYS: &[&str] = &["l1", "l2", "l3", "{t}a", "{t}b", "nokey"];
/// Elements: few distinct values so LREM/LPOS/LINSERT find matches.
const ELEMS: &[&str] = &["a", "b", "c", "1", "22", "-3", ""];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn pick(&mut self, xs: &[&'static str]) -> String {
        xs[self.rng.gen_range(0..xs.len())].to_string()
    }
    fn key(&mut self) -> String {
        if self.rng.gen_bool(0.06) {
            return self.pick(&["s", "h"]);
        }
        self.pick(LIST_KEYS)
    }
    fn elem(&mut self) -> String {
        if self.rng.gen_bool(0.03) {
            return "y".repeat(self.rng.gen_range(100..9000));
        }
        self.pick(ELEMS)
    }
    fn int(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => self.pick(&["x", "9223372036854775807", "-9223372036854775808", "1.5"]),
            1..=3 => self.rng.gen_range(-12..-1).to_string(),
            _ => self.rng.gen_range(0..12).to_string(),
        }
    }
    fn end(&mut self) -> String {
        if self.rng.gen_bool(0.03) {
            return "middle".into();
        }
        self.pick(&["LEFT", "RIGHT", "left"])
    }
    fn timeout(&mut self) -> String {
        self.pick(&["0.01", "0.02", "0.001"])
    }

    fn command(&mut self) -> Vec<String> {
        let mut c: Vec<String> = Vec::new();
        let k = self.key();
        match self.rng.gen_range(0..30) {
            0..=3 => {
                c.push(self.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]));
                c.push(k);
                for _ in 0..self.rng.gen_range(1..5) {
                    c.push(self.elem());
                }
            }
            4 | 5 => {
                c.push(self.pick(&["LPOP", "RPOP"]));
                c.push(k);
                if self.rng.gen_bool(0.5) {
                    c.push(self.int());
                }
            }
            6 => c.extend(["LLEN".into(), k]),
            7 | 8 => c.extend(["LRANGE".into(), k, self.int(), self.int()]),
            9 => c.extend(["LINDEX".into(), k, self.int()]),
            10 => c.extend(["LSET".into(), k, self.int(), self.elem()]),
            11 => c.extend([
                "LINSERT".into(),
                k,
                self.pick(&["BEFORE", "AFTER", "after"]),
                self.elem(),
                self.elem(),
            ]),
            12 => c.extend(["LREM".into(), k, self.int(), self.elem()]),
            13 => c.extend(["LTRIM".into(), k, self.int(), self.int()]),
            14 => {
                c.extend(["LPOS".into(), k, self.elem()]);
                for _ in 0..self.rng.gen_range(0..3) {
                    let opt = self.pick(&["RANK", "COUNT", "MAXLEN"]);
                    c.push(opt);
                    c.push(self.int());
                }
            }
            15 | 16 => c.extend(["LMOVE".into(), k, self.key(), self.end(), self.end()]),
            17 => c.extend(["RPOPLPUSH".into(), k, self.key()]),
            18 | 19 => {
                let n = self.rng.gen_range(1..4);
                c.extend(["LMPOP".into(), n.to_string()]);
                for _ in 0..n {
                    c.push(self.key());
                }
                c.push(self.end());
                if self.rng.gen_bool(0.5) {
                    c.push("COUNT".into());
                    c.push(self.int());
                }
            }
            20 | 21 => {
                c.push(self.pick(&["BLPOP", "BRPOP"]));
                c.push(k);
                if self.rng.gen_bool(0.5) {
                    c.push(self.key());
                }
                c.push(self.timeout());
            }
            22 => c.extend([
                "BLMOVE".into(),
                k,
                self.key(),
                self.end(),
                self.end(),
                self.timeout(),
            ]),
            23 => c.extend(["BRPOPLPUSH".into(), k, self.key(), self.timeout()]),
            24 => {
                let n = self.rng.gen_range(1..3);
                c.extend(["BLMPOP".into(), self.timeout(), n.to_string()]);
                for _ in 0..n {
                    c.push(self.key());
                }
                c.push(self.end());
                if self.rng.gen_bool(0.5) {
                    c.push("COUNT".into());
                    c.push(self.int());
                }
            }
            25 => c.extend(["TYPE".into(), k]),
            26 => c.extend(["DEL".into(), k]),
            27 => {
                let v = self.pick(&["2", "-1", "-2", "3", "1", "-3"]);
                c.extend([
                    "CONFIG".into(),
                    "SET".into(),
                    "list-max-listpack-size".into(),
                    v,
                ]);
            }
            28 => c.extend(["LRANGE".into(), k, "0".into(), "-1".into()]),
            _ => c.extend(["OBJECT".into(), "ENCODING".into(), k]),
        }
        c
    }
}

fn run_random(io_threads: &str) {
    let seed: u64 = match std::env::var("DIFF_SEED") {
        Ok(s) => s.trim().parse().expect("DIFF_SEED must be an integer"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    let n: usize = std::env::var("DIFF_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    eprintln!("random lists io_threads={io_threads}: DIFF_SEED={seed} DIFF_COMMANDS={n}");
    with_pair("random lists", io_threads, &[], |d, _| {
        d.seed = Some(seed);
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(seed),
        };
        d.line("FLUSHALL");
        d.line("SET s str");
        d.line("HSET h f v");
        let mut errors = 0;
        for i in 0..n {
            let cmd = g.command();
            let args: Vec<Vec<u8>> = cmd.iter().map(|s| s.as_bytes().to_vec()).collect();
            let (r, _): (Reply, Reply) = d.exec(&args);
            errors += r.is_error() as usize;
            if i % 400 == 399 {
                for k in LIST_KEYS {
                    d.line(&format!("LRANGE {k} 0 -1"));
                }
            }
        }
        for k in LIST_KEYS {
            d.line(&format!("LRANGE {k} 0 -1"));
        }
        d.line("DBSIZE");
        eprintln!("random lists: {n} commands, {errors} errors");
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
