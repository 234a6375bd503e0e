//! Differential tests of the sorted set commands: the same commands go to the reference
//! `redis-server` (7.0) and to Libellule and the replies must match byte for byte
//! (ZRANDMEMBER by shape, a skiplist's ZSCAN by content; see `common::diff::compare`).
//! Every suite runs with `--io_threads 1` and `--io_threads 3`: with three shards the
//! multi-key commands (ZUNION..., *STORE, ZRANGESTORE, ZMPOP) take their cross-shard
//! paths, since the scripts' keys hash to different shards.
//!
//! * `scripted_*`: every command with its options and errors, scores such as 1.5, -0,
//!   1e300, inf, 0.1+0.2, lex ranges, WRONGTYPE against strings and hashes.
//! * `encodings_*`: listpack -> skiplist conversions around the thresholds (CONFIG SET,
//!   the *-ziplist-* aliases) and the encodings *STORE results get.
//! * `resp3_*`: the same kind of script after `HELLO 3` (doubles, nested pairs).
//! * `zscan_*`: full ZSCAN iterations of skiplist sets compared as sets.
//! * `random_*`: a seeded random command stream (`DIFF_SEED`, `DIFF_COMMANDS`).

mod common;

use common::diff::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

/// Core commands, options and errors on small (listpack) sets.
const SCRIPT_BASIC: &str = r#"
ZADD z 1 a 2 b 3 c 1.5 d -0 e 1e300 f inf g -inf h
ZRANGE z 0 -1 WITHSCORES
ZADD z 0.1 x
ZINCRBY z 0.2 x
ZSCORE z x
ZSCORE z e
ZSCORE z nosuch
ZSCORE nokey a
ZCARD z
ZCARD nokey
ZREVRANGE z 0 -1 WITHSCORES
ZREVRANGE z 1 2
ZRANGE z -3 -1
ZRANGE z 5 2
ZRANGE z 100 200
ZRANGE z -100 1
ZRANGE z (1 3 BYSCORE WITHSCORES
ZRANGE z 3 (1 BYSCORE REV WITHSCORES
ZRANGE z -inf +inf BYSCORE LIMIT 1 3
ZRANGE z -inf +inf BYSCORE LIMIT -1 3
ZRANGE z -inf +inf BYSCORE LIMIT 2 -1
ZRANGE z -inf +inf BYSCORE LIMIT 2 0
ZRANGE z +inf -inf BYSCORE REV LIMIT 2 -1
ZRANGE z -inf +inf BYSCORE LIMIT 100 1
ZRANGE z 0 -1 REV REV
ZRANGE z 0 1 BYSCORE BYLEX
ZRANGE z 0 1 LIMIT 0 1
ZRANGE z 0 1 BYLEX WITHSCORES
ZRANGE z a b
ZRANGE z 0 b
ZRANGE z 0 1 BOGUS
ZRANGE z 0 1 LIMIT 1
ZRANGEBYSCORE z "" 2
ZRANGEBYSCORE z ( 2
ZRANGEBYSCORE z " 1" 2 WITHSCORES
ZRANGEBYSCORE z "1 " 2
ZRANGEBYSCORE z 1e400 inf
ZRANGEBYSCORE z -INF +Infinity
ZRANGEBYSCORE z abc 2
ZRANGEBYSCORE z nan 2
ZRANGEBYSCORE z 0 1 LIMIT a 1
ZRANGEBYSCORE z 0 1 LIMIT 0
ZRANGEBYSCORE z 0 1 WITHSCORES WITHSCORES
ZRANGEBYSCORE z (0 (3 WITHSCORES LIMIT 1 1
ZRANGEBYSCORE z 3 0
ZRANGEBYSCORE z 1 1
ZRANGEBYSCORE z (1 1
ZREVRANGEBYSCORE z +inf -inf WITHSCORES
ZREVRANGEBYSCORE z 3 (1
ZREVRANGEBYSCORE z 3 1 LIMIT 1 2
ZREVRANGEBYSCORE z 0 3
ZCOUNT z -inf +inf
ZCOUNT z (1 (3
ZCOUNT z 1 1.5
ZCOUNT z 3 1
ZCOUNT z x 1
ZCOUNT nokey 0 1
ZRANK z c
ZREVRANK z c
ZRANK z nope
ZRANK nokey a
ZREVRANK z h
ZADD z NX XX 1 a
ZADD z GT LT 1 a
ZADD z NX GT 1 a
ZADD z NX LT 1 a
ZADD z INCR 1 a 2 b
ZADD z 1 a 2
ZADD z abc a
ZADD z nan a
ZADD z "" a
ZADD z " 1" a
ZADD z 1e400 a
ZADD z 0x10 a
ZADD z NX
ZADD z CH
ZADD z INCR inf g
ZADD z INCR -inf g
ZADD z CH GT 0 a 5 b 7 newm
ZADD z CH LT 0 a 5 b 7 newm
ZADD z XX INCR 1 nosuch
ZADD z NX INCR 1 a
ZADD z GT INCR -1 a
ZADD z LT INCR -1 a
ZADD z XX CH 9 a 9 nosuch
ZADD z ch xx gt 10 a
ZADD z 1 a 1 a 2 a
ZINCRBY z NX a
ZINCRBY z 1.5 a
ZINCRBY z abc a
ZINCRBY z -inf g
ZINCRBY nk 2.5 m
ZMSCORE z a b nosuch
ZMSCORE nokey a b
ZREM z a b nosuch
ZREM nokey a
ZRANGE z 0 -1 WITHSCORES
ZREMRANGEBYSCORE z -inf (1
ZREMRANGEBYSCORE z x 1
ZREMRANGEBYSCORE nokey 0 1
ZREMRANGEBYRANK z -1 -1
ZREMRANGEBYRANK z 5 1
ZREMRANGEBYRANK z a 1
ZRANGE z 0 -1 WITHSCORES
ZPOPMIN z
ZPOPMAX z 2
ZPOPMIN z 0
ZPOPMIN z -1
ZPOPMIN z a
ZPOPMIN z 1 2
ZPOPMIN nokey
ZPOPMIN nokey 3
ZPOPMAX z 100
EXISTS z
ZADD del 1 a
ZREM del a
EXISTS del
ZADD del 1 a 2 b
ZREMRANGEBYRANK del 0 -1
EXISTS del
ZADD d1 1 a
ZPOPMIN d1
EXISTS d1
ZADD d2 1 a 2 b
ZREMRANGEBYSCORE d2 -inf +inf
EXISTS d2
ZADD xx XX 1 a
EXISTS xx
ZADD xx XX INCR 1 a
ZINCRBY newz -0 m
ZSCORE newz m
ZADD newz2 INCR -0 m
ZSCORE newz2 m
"#;

/// Lex ranges (all scores equal).
const SCRIPT_LEX: &str = r#"
ZADD l 0 a 0 b 0 c 0 d 0 e 0 f 0 "" 0 aa 0 "b\x00"
ZRANGEBYLEX l - +
ZRANGEBYLEX l [b (e
ZRANGEBYLEX l (b [e
ZRANGEBYLEX l [ +
ZRANGEBYLEX l ( +
ZRANGEBYLEX l - [
ZRANGEBYLEX l + -
ZRANGEBYLEX l [e [b
ZREVRANGEBYLEX l (e [b
ZREVRANGEBYLEX l + -
ZREVRANGEBYLEX l - +
ZRANGEBYLEX l [b (e LIMIT 1 1
ZRANGEBYLEX l - + LIMIT 2 -1
ZRANGEBYLEX l - + LIMIT -2 5
ZREVRANGEBYLEX l + - LIMIT 1 3
ZRANGE l [b (e BYLEX
ZRANGE l (e [b BYLEX REV
ZRANGE l [b (e BYLEX WITHSCORES
ZRANGE l [b (e BYLEX LIMIT 0 2
ZRANGEBYLEX l b e
ZRANGEBYLEX l [b e
ZRANGEBYLEX l -- +
ZRANGEBYLEX l "" +
ZRANGEBYLEX l - + WITHSCORES
ZLEXCOUNT l - +
ZLEXCOUNT l (a [c
ZLEXCOUNT l + -
ZLEXCOUNT l [b\x00 +
ZLEXCOUNT l a b
ZLEXCOUNT nokey - +
ZREMRANGEBYLEX l [b [c
ZREMRANGEBYLEX l x y
ZREMRANGEBYLEX nokey - +
ZRANGE l 0 -1
ZREMRANGEBYLEX l - +
EXISTS l
"#;

/// Set operations, ZRANGESTORE and ZMPOP (cross-shard with io_threads 3).
/// The blocking pops where they do not block: data present, tiny timeouts, MULTI.
const SCRIPT_BLOCKING: &str = r#"
ZADD bz 1 a 2 b 3 c 4 d
BZPOPMIN bz 0
BZPOPMAX nokey bz 0
BZPOPMIN nokey 0.01
BZMPOP 0 2 nokey bz MIN COUNT 1
BZMPOP 0.01 1 bz MAX COUNT 10
EXISTS bz
BZMPOP 0.01 1 bz MAX
BZPOPMIN bz -1
BZPOPMIN bz abc
BZMPOP 0 0 bz MIN
BZMPOP 0 1 bz SIDEWAYS
BZMPOP 0 1 bz MIN COUNT 0
BZPOPMIN
SET bzs x
BZPOPMIN bzs 0
BZMPOP 0 1 bzs MIN
MULTI
BZPOPMIN empty 0
ZADD bz2 5 x
BZPOPMAX bz2 0
BZMPOP 0 1 empty MIN
EXEC
"#;

const SCRIPT_MULTI: &str = r#"
ZADD z1 1 a 2 b 3 c 1.5 d -0 e inf f
ZADD z2 10 a 20 b 0.1 x -inf y
ZADD z3 0 a 0 x 0 q
ZADD empty 1 gone
ZREM empty gone
SADD plainset a b 3
SADD intset 1 2 3
ZUNION 2 plainset z1 WITHSCORES
ZINTER 2 plainset z1 WITHSCORES
ZDIFF 2 plainset z1 WITHSCORES
ZUNIONSTORE fromsets 3 intset plainset z2 WEIGHTS 2 3 4
ZRANGE fromsets 0 -1 WITHSCORES
ZINTERCARD 2 plainset z1
ZUNION 2 z1 z2
ZUNION 2 z1 z2 WITHSCORES
ZUNION 3 z1 z2 z3 WITHSCORES
ZUNION 2 z1 nokey WITHSCORES
ZUNION 2 z1 z2 WEIGHTS 1 2 WITHSCORES
ZUNION 2 z1 z2 WEIGHTS 0 0 WITHSCORES
ZUNION 2 z1 z2 WEIGHTS -1 inf WITHSCORES
ZUNION 2 z1 z2 AGGREGATE MIN WITHSCORES
ZUNION 2 z1 z2 AGGREGATE max WITHSCORES
ZUNION 2 z1 z2 AGGREGATE SUM WEIGHTS 2 3 WITHSCORES
ZUNION 2 z1 z2 WEIGHTS 1
ZUNION 2 z1 z2 WEIGHTS 1 a
ZUNION 2 z1 z2 AGGREGATE foo
ZUNION 2 z1 z2 AGGREGATE
ZUNION 2 z1 z2 WITHSCORES WITHSCORES
ZUNION 2 z1 z2 LIMIT 1
ZUNION 0 z1
ZUNION -1 z1
ZUNION 3 z1 z2
ZUNION x z1
ZUNION 99999999999999999999 z1
ZINTER 2 z1 z2 WITHSCORES
ZINTER 3 z1 z2 z3 WITHSCORES
ZINTER 2 z1 z1 WEIGHTS 2 3 WITHSCORES
ZINTER 2 z1 z1 AGGREGATE MIN WITHSCORES
ZINTER 2 z1 nokey WITHSCORES
ZINTER 2 z1 z2 WEIGHTS 0 inf WITHSCORES
ZINTER 1 z1
ZINTER 0 z1
ZINTERCARD 2 z1 z2
ZINTERCARD 3 z1 z2 z3
ZINTERCARD 2 z1 z1 LIMIT 2
ZINTERCARD 2 z1 z1 LIMIT 0
ZINTERCARD 2 z1 z1 LIMIT -1
ZINTERCARD 2 z1 z1 LIMIT a
ZINTERCARD 2 z1 z1 WEIGHTS 1 2
ZINTERCARD 2 z1 z1 WITHSCORES
ZINTERCARD 0 z1
ZINTERCARD 2 z1
ZDIFF 2 z1 z2 WITHSCORES
ZDIFF 3 z1 z2 z3
ZDIFF 1 z1 WITHSCORES
ZDIFF 2 nokey z1
ZDIFF 2 z1 z2 WEIGHTS 1 2
ZDIFF 2 z1 z2 AGGREGATE MIN
ZDIFF 0 z1
ZUNIONSTORE out 2 z1 z2
ZRANGE out 0 -1 WITHSCORES
ZUNIONSTORE out 2 z1 z2 WEIGHTS 2 1 AGGREGATE MAX
ZRANGE out 0 -1 WITHSCORES
ZUNIONSTORE out 2 z1 z2 WITHSCORES
ZINTERSTORE out 2 z1 z2
ZRANGE out 0 -1 WITHSCORES
ZINTERSTORE out 2 z1 z3 AGGREGATE MIN
ZRANGE out 0 -1 WITHSCORES
ZINTERSTORE out 2 nokey z1
EXISTS out
ZINTERSTORE out 2 nokey z1
ZDIFFSTORE out 2 z1 z2
ZRANGE out 0 -1 WITHSCORES
ZDIFFSTORE out 2 z1 z1
EXISTS out
ZDIFFSTORE out 1 z1 WEIGHTS 1
ZUNIONSTORE z1copy 1 z1
ZRANGE z1copy 0 -1 WITHSCORES
ZUNIONSTORE z2 2 z2 z3
ZRANGE z2 0 -1 WITHSCORES
ZUNIONSTORE out 0 z1
ZUNIONSTORE out 3 z1
SET str v
ZUNION 2 z1 str
ZUNION 2 str nokey
ZUNION 2 z1 str WEIGHTS a b
ZINTER 2 nokey str
ZUNIONSTORE out 2 z1 str
ZUNIONSTORE str 1 z1
TYPE str
ZRANGE str 0 -1 WITHSCORES
ZRANGESTORE dst z1 0 -1
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z1 1 2 REV
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z1 (1 +inf BYSCORE LIMIT 1 2
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z1 +inf -inf BYSCORE REV LIMIT 0 2
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z3 [a [x BYLEX
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z1 0 -1 WITHSCORES
ZRANGESTORE dst z1 0 -1 LIMIT 0 1
ZRANGESTORE dst nokey 0 -1
EXISTS dst
ZRANGESTORE dst str 0 -1
ZRANGESTORE str z1 0 1
TYPE str
ZRANGESTORE z1 z1 0 1
ZRANGE z1 0 -1 WITHSCORES
ZADD p1 1 a 2 b 3 c
ZADD p2 5 x 6 y
ZMPOP 2 nokey p1 MIN
ZMPOP 2 nokey p1 MAX COUNT 5
EXISTS p1
ZMPOP 2 p1 p2 MIN COUNT 1
ZMPOP 1 nokey MIN
ZMPOP 0 p2 MIN
ZMPOP -1 p2 MIN
ZMPOP a p2 MIN
ZMPOP 1 p2
ZMPOP 1 p2 foo
ZMPOP 1 p2 MIN COUNT 0
ZMPOP 1 p2 MIN COUNT -1
ZMPOP 1 p2 MIN COUNT a
ZMPOP 1 p2 MIN COUNT 1 COUNT 1
ZMPOP 1 p2 MIN COUNT
ZMPOP 5 p2 MIN
ZMPOP 2 str p2 MIN
ZMPOP 2 p2 str MIN
ZMPOP 2 nokey str MAX
ZMPOP 1 p2 max count 10
EXISTS p2
COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2
COMMAND GETKEYS ZUNION 2 a b
COMMAND GETKEYS ZINTERCARD 1 a LIMIT 1
COMMAND GETKEYS ZMPOP 2 a b MIN
COMMAND GETKEYS ZUNION 5 a b
COMMAND GETKEYS ZUNION 0 a
COMMAND GETKEYS ZUNIONSTORE d x a
COMMAND GETKEYS ZRANGESTORE d s 0 1
COMMAND GETKEYS ZDIFFSTORE d 1 a
"#;

/// Wrong types, randomness, scanning and other odds and ends.
const SCRIPT_MISC: &str = r#"
SET s x
HSET h f v
ZADD s 1 a
ZADD h 1 a
ZINCRBY s 1 a
ZREM s a
ZCARD h
ZSCORE s a
ZMSCORE s a
ZRANK h a
ZREVRANK h a
ZCOUNT s 0 1
ZLEXCOUNT s - +
ZRANGE s 0 -1
ZRANGE s 0 -1 BOGUS
ZRANGEBYSCORE h 0 1
ZRANGEBYSCORE h x 1
ZREVRANGEBYSCORE h 1 0
ZRANGEBYLEX s - +
ZREVRANGEBYLEX s + -
ZREVRANGE s 0 1
ZREMRANGEBYRANK s 0 1
ZREMRANGEBYSCORE s 0 1
ZREMRANGEBYLEX s - +
ZPOPMIN s
ZPOPMAX h 2
ZRANDMEMBER s
ZRANDMEMBER s 2
ZSCAN s 0
ZSCAN h 0 x
ZADD z 1 a 2 b 3 c
ZRANDMEMBER nokey
ZRANDMEMBER nokey 3
ZRANDMEMBER nokey 3 WITHSCORES
ZRANDMEMBER z
ZRANDMEMBER z 0
ZRANDMEMBER z 0 WITHSCORES
ZRANDMEMBER z 2
ZRANDMEMBER z 3 WITHSCORES
ZRANDMEMBER z 100 WITHSCORES
ZRANDMEMBER z -5
ZRANDMEMBER z -5 WITHSCORES
ZRANDMEMBER z 1 WITHSCORES
ZRANDMEMBER z 1 foo
ZRANDMEMBER z 1 WITHSCORES x
ZRANDMEMBER z a
ZRANDMEMBER z -9223372036854775808
ZRANDMEMBER z 9223372036854775807 WITHSCORES
ZRANDMEMBER z -9223372036854775807 WITHSCORES
ZSCAN z 0
ZSCAN z 0 MATCH a*
ZSCAN z 0 MATCH [bc] COUNT 1
ZSCAN z 0 COUNT 0
ZSCAN z 0 COUNT a
ZSCAN z 0 TYPE zset
ZSCAN z 0 MATCH
ZSCAN z x
ZSCAN z -1
ZSCAN nokey 0
ZADD w 1.5 a 1e17 b -0 c 123456789012345678 d inf e -inf f 0.1 g 3 h
ZSCAN w 0
TYPE z
OBJECT ENCODING z
ZADD bin 1 "\x00\xff" 1 "\r\n" 2 ""
ZRANGE bin 0 -1 WITHSCORES
ZSCORE bin ""
ZSCAN bin 0
ZADD
ZADD z
ZADD z 1
ZCARD
ZCARD a b
ZSCORE z
ZRANGE z 0
ZPOPMIN
ZMPOP 1
ZUNION 1
ZUNIONSTORE d 1
ZRANGESTORE d s 0
ZINCRBY z 1
ZREMRANGEBYRANK z 0
ZLEXCOUNT z -
ZSCAN z
ZRANDMEMBER
zadd lower 1 a
ZaDd lower 2 b
zrange lower 0 -1 withscores
"#;

fn run_scripts(io_threads: &str) {
    with_pair("zset scripts", io_threads, &[], |d, _| {
        for script in [
            SCRIPT_BASIC,
            SCRIPT_LEX,
            SCRIPT_MULTI,
            SCRIPT_MISC,
            SCRIPT_BLOCKING,
        ] {
            d.line("FLUSHALL");
            d.script(script);
        }
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
// Encodings
// ---------------------------------------------------------------------------

/// Adds members `m<from>..m<from+n>` with scores equal to their number.
fn zadd_many(d: &mut Diff, key: &str, from: usize, n: usize) {
    let mut line = format!("ZADD {key}");
    for i in from..from + n {
        line.push_str(&format!(" {i} m{i}"));
    }
    d.line(&line);
}

fn run_encodings(io_threads: &str) {
    with_pair("zset encodings", io_threads, &[], |d, _| {
        d.script(
            r#"
            CONFIG GET zset-max-listpack-entries
            CONFIG GET zset-max-ziplist-entries
            CONFIG GET zset-max-listpack-value
            "#,
        );
        // Right at the default entry threshold (128) and one past it.
        zadd_many(d, "big", 0, 128);
        d.line("OBJECT ENCODING big");
        d.line("ZCARD big");
        zadd_many(d, "big", 128, 1);
        d.line("OBJECT ENCODING big");
        d.line("ZRANGE big 0 5 WITHSCORES");
        d.line("ZRANGE big -5 -1 WITHSCORES");
        d.line("ZRANK big m100");
        d.line("ZREVRANK big m100");
        d.line("ZRANGEBYSCORE big (10 20 WITHSCORES LIMIT 2 3");
        d.line("ZREVRANGEBYSCORE big 120 (100 LIMIT 1 4");
        d.line("ZCOUNT big 10 (60");
        // Shrinking never converts back.
        d.line("ZREMRANGEBYRANK big 0 120");
        d.line("OBJECT ENCODING big");
        d.line("ZRANGE big 0 -1 WITHSCORES");
        // The value threshold (64 bytes), exact and one past.
        let m64 = "v".repeat(64);
        let m65 = "v".repeat(65);
        d.line(&format!("ZADD val 1 {m64}"));
        d.line("OBJECT ENCODING val");
        d.line(&format!("ZADD val 2 {m65}"));
        d.line("OBJECT ENCODING val");
        d.line(&format!("ZADD val2 1 {m65}"));
        d.line("OBJECT ENCODING val2");
        // CONFIG SET and the old aliases.
        d.script(
            r#"
            CONFIG SET zset-max-listpack-entries 3
            CONFIG GET zset-max-ziplist-entries
            ZADD k 1 a 2 b 3 c
            OBJECT ENCODING k
            ZADD k 4 d
            OBJECT ENCODING k
            ZRANGE k 0 -1 WITHSCORES
            ZREM k a b c
            OBJECT ENCODING k
            ZUNIONSTORE u 1 k
            OBJECT ENCODING u
            ZRANGESTORE u2 k 0 -1
            OBJECT ENCODING u2
            ZADD k4 1 a 2 b 3 c 4 d 5 e
            ZINTERSTORE i4 2 k4 k4
            OBJECT ENCODING i4
            ZDIFFSTORE d4 1 k4
            OBJECT ENCODING d4
            ZRANGESTORE r4 k4 0 2
            OBJECT ENCODING r4
            ZRANGESTORE r5 k4 0 -1
            OBJECT ENCODING r5
            ZUNIONSTORE u4 2 k4 k
            OBJECT ENCODING u4
            COPY k4 k4copy
            OBJECT ENCODING k4copy
            ZRANGE k4copy 0 -1 WITHSCORES
            CONFIG SET zset-max-ziplist-entries 0
            ZADD zero 1 a
            OBJECT ENCODING zero
            ZADD zero -0 b
            ZSCORE zero b
            ZRANGE zero 0 -1 WITHSCORES
            CONFIG SET zset-max-listpack-entries 128
            ZUNIONSTORE zero2 1 zero
            OBJECT ENCODING zero2
            ZSCORE zero2 b
            CONFIG SET zset-max-ziplist-value 4
            CONFIG GET zset-max-listpack-value
            ZADD v 1 abcd
            OBJECT ENCODING v
            ZADD v 1 abcde
            OBJECT ENCODING v
            ZADD v2 1 abcde
            OBJECT ENCODING v2
            ZUNIONSTORE v3 1 v
            OBJECT ENCODING v3
            ZREM v abcde
            ZUNIONSTORE v4 1 v
            OBJECT ENCODING v4
            CONFIG SET zset-max-listpack-value 64
            "#,
        );
        // Skiplist sets: the same commands as on listpacks.
        d.line("CONFIG SET zset-max-listpack-entries 0");
        d.line("FLUSHALL");
        d.script(SCRIPT_BASIC);
        d.line("FLUSHALL");
        d.script(SCRIPT_LEX);
        d.line("FLUSHALL");
        d.script(SCRIPT_MULTI);
        d.line("CONFIG SET zset-max-listpack-entries 128");
    });
}

#[test]
fn encodings_io1() {
    run_encodings("1");
}

#[test]
fn encodings_io3() {
    run_encodings("3");
}

// ---------------------------------------------------------------------------
// RESP3
// ---------------------------------------------------------------------------

const SCRIPT_RESP3: &str = r#"
HELLO 3
ZADD z 1 a 2 b 3 c 1.5 d -0 e 1e300 f inf g -inf h
ZADD z2 1 a 5 q
ZRANGE z 0 -1
ZRANGE z 0 -1 WITHSCORES
ZREVRANGE z 0 2 WITHSCORES
ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 2
ZREVRANGEBYSCORE z +inf -inf WITHSCORES
ZRANGEBYLEX z - + LIMIT 0 2
ZSCORE z a
ZSCORE z g
ZSCORE z h
ZSCORE z nosuch
ZSCORE nokey a
ZMSCORE z a nosuch f
ZMSCORE nokey a
ZINCRBY z 0.25 a
ZADD z INCR 1 a
ZADD z XX INCR 1 nosuch
ZRANK z nosuch
ZRANK nokey a
ZUNION 2 z z2 WITHSCORES
ZUNION 2 z z2
ZINTER 2 z z2 WITHSCORES
ZDIFF 2 z z2 WITHSCORES
ZINTERCARD 2 z z2
ZRANDMEMBER z 3 WITHSCORES
ZRANDMEMBER z -3 WITHSCORES
ZRANDMEMBER z 100 WITHSCORES
ZRANDMEMBER nokey
ZRANDMEMBER nokey 2
ZPOPMIN z
ZPOPMIN z 2
ZPOPMAX z 1
ZPOPMAX z 0
ZPOPMIN nokey
ZPOPMIN nokey 2
ZMPOP 2 nokey z MIN COUNT 2
ZMPOP 1 nokey MAX
ZSCAN z 0
ZRANGESTORE dst z 0 -1
ZUNIONSTORE dst 2 z z2
HELLO 2
ZRANGE dst 0 -1 WITHSCORES
"#;

fn run_resp3(io_threads: &str) {
    with_pair("zset resp3", io_threads, &[], |d, _| {
        d.line("FLUSHALL");
        d.script(SCRIPT_RESP3);
        d.line("CONFIG SET zset-max-listpack-entries 0");
        d.line("FLUSHALL");
        d.script(SCRIPT_RESP3);
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
// ZSCAN of skiplist sets
// ---------------------------------------------------------------------------

/// (member, score) pairs as a ZSCAN returns them.
type ScanPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A full ZSCAN iteration: the (member, score) pairs returned, and the number of calls.
fn zscan_all(c: &mut RawConn, key: &str, extra: &[&str]) -> (ScanPairs, usize) {
    let mut cursor = b"0".to_vec();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args: Vec<&[u8]> = vec![b"ZSCAN", key.as_bytes(), &cursor];
        args.extend(extra.iter().map(|s| s.as_bytes()));
        let r = c.cmd(&args);
        calls += 1;
        let v = r.as_array();
        let items = v[1].as_array();
        for p in items.chunks(2) {
            out.push((p[0].as_bytes().to_vec(), p[1].as_bytes().to_vec()));
        }
        cursor = v[0].as_bytes().to_vec();
        if cursor == b"0" || calls > 10_000 {
            break;
        }
    }
    (out, calls)
}

fn run_zscan(io_threads: &str) {
    with_pair("zset zscan", io_threads, &[], |d, _| {
        for i in 0..300 {
            let score = match i % 5 {
                0 => format!("{i}"),
                1 => format!("{i}.5"),
                2 => "1e300".to_string(),
                3 => "-0".to_string(),
                _ => format!("0.{i}"),
            };
            d.line(&format!("ZADD big {score} member:{i}"));
        }
        d.line("OBJECT ENCODING big");
        for extra in [
            &[][..],
            &["COUNT", "7"][..],
            &["MATCH", "member:1*", "COUNT", "20"][..],
        ] {
            let (a, _) = zscan_all(&mut d.redis, "big", extra);
            let (b, calls) = zscan_all(&mut d.lib, "big", extra);
            let sa: BTreeSet<_> = a.iter().cloned().collect();
            let sb: BTreeSet<_> = b.iter().cloned().collect();
            assert_eq!(sa.len(), a.len(), "redis returned duplicates");
            assert_eq!(b.len(), sb.len(), "libellule returned a member twice");
            assert_eq!(sa, sb, "ZSCAN {extra:?} returned different pairs");
            assert!(calls > 1, "a 300-member skiplist should take several calls");
        }
    });
}

#[test]
fn zscan_io1() {
    run_zscan("1");
}

#[test]
fn zscan_io3() {
    run_zscan("3");
}

// ---------------------------------------------------------------------------
// Random
// ---------------------------------------------------------------------------

/// Scores the generator uses: integers, halves, the special values and sums that do
/// not round-trip in decimal.
const SCORES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "1.5",
    "-2.5",
    "-0",
    "0.1",
    "0.30000000000000004",
    "1e300",
    "-1e300",
    "inf",
    "-inf",
    "+inf",
    "10",
    "100",
    "7",
    "1e-5",
    "3.14159",
];
/// Bad numbers.
const BAD: &[&str] = &["abc", "nan", "", "1x", "--1"];
const MEMBERS: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "aa", "ab", "", "m1", "m2",
];
const LEX: &[&str] = &[
    "-", "+", "[a", "(a", "[b", "(c", "[d", "(e", "[g", "[", "(", "[aa",
];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.rng.gen_range(0..v.len())]
    }
    /// A sorted-set key (some keys share a hash tag so cross- and same-shard paths mix).
    fn zkey(&mut self) -> String {
        let k = ["z1", "z2", "z3", "{t}z4", "{t}z5", "big"];
        if self.chance(0.04) {
            return self.pick(&["str", "hash", "nokey"]).to_string();
        }
        self.pick(&k).to_string()
    }
    /// A key of the lex family (all scores 0).
    fn lkey(&mut self) -> String {
        self.pick(&["l1", "l2", "{t}l3"]).to_string()
    }
    fn score(&mut self) -> String {
        if self.chance(0.02) {
            return self.pick(BAD).to_string();
        }
        self.pick(SCORES).to_string()
    }
    fn bound(&mut self) -> String {
        let s = self.pick(SCORES);
        if self.chance(0.3) {
            format!("({s}")
        } else if self.chance(0.02) {
            "x".to_string()
        } else {
            s.to_string()
        }
    }
    fn member(&mut self) -> String {
        if self.chance(0.05) {
            return format!("long{}", "x".repeat(70));
        }
        self.pick(MEMBERS).to_string()
    }
    fn int(&mut self) -> String {
        self.rng.gen_range(-6..8).to_string()
    }
    fn keys(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.zkey()).collect()
    }

    fn command(&mut self) -> Vec<String> {
        let s = |x: &str| x.to_string();
        match self.rng.gen_range(0..100) {
            0..=17 => {
                let mut c = vec![s("ZADD"), self.zkey()];
                for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                    if self.chance(0.08) {
                        c.push(s(opt));
                    }
                }
                for _ in 0..self.rng.gen_range(1..4) {
                    c.push(self.score());
                    c.push(self.member());
                }
                c
            }
            18..=21 => vec![s("ZINCRBY"), self.zkey(), self.score(), self.member()],
            22..=26 => {
                let mut c = vec![s("ZREM"), self.zkey()];
                for _ in 0..self.rng.gen_range(1..3) {
                    c.push(self.member());
                }
                c
            }
            27..=29 => vec![s("ZCARD"), self.zkey()],
            30..=32 => vec![s("ZSCORE"), self.zkey(), self.member()],
            33 => vec![s("ZMSCORE"), self.zkey(), self.member(), self.member()],
            34..=35 => vec![
                s(self.pick(&["ZRANK", "ZREVRANK"])),
                self.zkey(),
                self.member(),
            ],
            36..=37 => vec![s("ZCOUNT"), self.zkey(), self.bound(), self.bound()],
            38..=45 => {
                let by = self.rng.gen_range(0..3);
                // Lex ranges only make sense (and are only specified) on equal scores.
                let key = if by == 2 { self.lkey() } else { self.zkey() };
                let mut c = vec![s("ZRANGE"), key];
                match by {
                    0 => {
                        c.push(self.int());
                        c.push(self.int());
                    }
                    1 => {
                        c.push(self.bound());
                        c.push(self.bound());
                        c.push(s("BYSCORE"));
                    }
                    _ => {
                        c.push(s(self.pick(LEX)));
                        c.push(s(self.pick(LEX)));
                        c.push(s("BYLEX"));
                    }
                }
                if self.chance(0.4) {
                    c.push(s("REV"));
                }
                if by != 2 && self.chance(0.5) {
                    c.push(s("WITHSCORES"));
                }
                if by != 0 && self.chance(0.4) {
                    c.push(s("LIMIT"));
                    c.push(self.int());
                    c.push(self.int());
                }
                c
            }
            46..=48 => {
                let mut c = vec![
                    s(self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"])),
                    self.zkey(),
                    self.bound(),
                    self.bound(),
                ];
                if self.chance(0.5) {
                    c.push(s("WITHSCORES"));
                }
                if self.chance(0.3) {
                    c.extend([s("LIMIT"), self.int(), self.int()]);
                }
                c
            }
            49..=50 => {
                let mut c = vec![s("ZREVRANGE"), self.zkey(), self.int(), self.int()];
                if self.chance(0.5) {
                    c.push(s("WITHSCORES"));
                }
                c
            }
            51..=56 => {
                // The lex family: equal scores.
                let k = self.lkey();
                match self.rng.gen_range(0..6) {
                    0 | 1 => vec![s("ZADD"), k, s("0"), self.member(), s("0"), self.member()],
                    2 => {
                        let mut c = vec![
                            s(self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"])),
                            k,
                            s(self.pick(LEX)),
                            s(self.pick(LEX)),
                        ];
                        if self.chance(0.3) {
                            c.extend([s("LIMIT"), self.int(), self.int()]);
                        }
                        c
                    }
                    3 => vec![s("ZLEXCOUNT"), k, s(self.pick(LEX)), s(self.pick(LEX))],
                    4 => vec![s("ZREMRANGEBYLEX"), k, s(self.pick(LEX)), s(self.pick(LEX))],
                    _ => vec![s("ZRANGE"), k, s("0"), s("-1")],
                }
            }
            57..=59 => vec![s("ZREMRANGEBYRANK"), self.zkey(), self.int(), self.int()],
            60..=61 => vec![
                s("ZREMRANGEBYSCORE"),
                self.zkey(),
                self.bound(),
                self.bound(),
            ],
            62..=65 => {
                let mut c = vec![s(self.pick(&["ZPOPMIN", "ZPOPMAX"])), self.zkey()];
                if self.chance(0.5) {
                    c.push(self.int());
                }
                c
            }
            66..=68 => {
                let n = self.rng.gen_range(1..4);
                let mut c = vec![s("ZMPOP"), n.to_string()];
                c.extend(self.keys(n));
                c.push(s(self.pick(&["MIN", "MAX"])));
                if self.chance(0.5) {
                    c.extend([s("COUNT"), self.rng.gen_range(1..4).to_string()]);
                }
                c
            }
            69..=70 => {
                let mut c = vec![s("ZRANDMEMBER"), self.zkey()];
                if self.chance(0.7) {
                    c.push(self.int());
                    if self.chance(0.5) {
                        c.push(s("WITHSCORES"));
                    }
                }
                c
            }
            71..=84 => {
                let (name, store, scored) = match self.rng.gen_range(0..7) {
                    0 => ("ZUNION", false, true),
                    1 => ("ZINTER", false, true),
                    2 => ("ZDIFF", false, false),
                    3 => ("ZINTERCARD", false, false),
                    4 => ("ZUNIONSTORE", true, true),
                    5 => ("ZINTERSTORE", true, true),
                    _ => ("ZDIFFSTORE", true, false),
                };
                let n = self.rng.gen_range(1..4);
                let mut c = vec![s(name)];
                if store {
                    c.push(self.zkey());
                }
                c.push(n.to_string());
                c.extend(self.keys(n));
                if scored && self.chance(0.4) {
                    c.push(s("WEIGHTS"));
                    for _ in 0..n {
                        c.push(s(self.pick(&["1", "2", "-1", "0", "0.5", "inf"])));
                    }
                }
                if scored && self.chance(0.4) {
                    c.extend([s("AGGREGATE"), s(self.pick(&["SUM", "MIN", "MAX"]))]);
                }
                if name == "ZINTERCARD" && self.chance(0.4) {
                    c.extend([s("LIMIT"), self.rng.gen_range(0..3).to_string()]);
                }
                if !store && name != "ZINTERCARD" && self.chance(0.6) {
                    c.push(s("WITHSCORES"));
                }
                c
            }
            85..=88 => {
                let mut c = vec![s("ZRANGESTORE"), self.zkey(), self.zkey()];
                if self.chance(0.5) {
                    c.extend([self.int(), self.int()]);
                } else {
                    c.extend([self.bound(), self.bound(), s("BYSCORE")]);
                    if self.chance(0.4) {
                        c.extend([s("LIMIT"), self.int(), self.int()]);
                    }
                }
                if self.chance(0.3) {
                    c.push(s("REV"));
                }
                c
            }
            89..=90 => vec![s("ZSCAN"), self.zkey(), s("0"), s("COUNT"), s("1000")],
            91 => vec![s("OBJECT"), s("ENCODING"), self.zkey()],
            92 => vec![s("TYPE"), self.zkey()],
            93 => vec![s("DEL"), self.zkey()],
            94 => vec![s("COPY"), self.zkey(), self.zkey(), s("REPLACE")],
            95 => vec![s("RENAME"), self.zkey(), self.zkey()],
            _ => {
                // Grow "big" past the listpack threshold now and then.
                let mut c = vec![s("ZADD"), s("big")];
                let base = self.rng.gen_range(0..400);
                for i in base..base + 40 {
                    c.push(format!("{}", i % 37));
                    c.push(format!("m{i}"));
                }
                c
            }
        }
    }
}

/// Every sorted set, whole, on both servers.
fn checkpoint(d: &mut Diff) {
    for k in [
        "z1", "z2", "z3", "{t}z4", "{t}z5", "big", "l1", "l2", "{t}l3",
    ] {
        d.line(&format!("ZRANGE {k} 0 -1 WITHSCORES"));
        d.line(&format!("OBJECT ENCODING {k}"));
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
        .unwrap_or(6000);
    eprintln!(
        "zset random differential io_threads={io_threads}: DIFF_SEED={seed} DIFF_COMMANDS={n}"
    );
    with_pair("zset random", io_threads, &[], |d, _| {
        d.seed = Some(seed);
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(seed),
        };
        d.line("FLUSHALL");
        d.line("SET str x");
        d.line("HSET hash f v");
        let mut errors = 0;
        // DIFF_CHECK=<k>: compare every set whole after every k commands (default 300).
        let every: usize = std::env::var("DIFF_CHECK")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300)
            .max(1);
        for i in 0..n {
            let cmd: Vec<Vec<u8>> = g.command().into_iter().map(String::into_bytes).collect();
            let (r, _) = d.exec(&cmd);
            errors += r.is_error() as usize;
            if i % every == every - 1 {
                checkpoint(d);
            }
            if i % 1000 == 999 {
                // Change the thresholds under the running stream.
                let e = ["128", "4", "0", "16"][(i / 1000) % 4];
                d.line(&format!("CONFIG SET zset-max-listpack-entries {e}"));
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
