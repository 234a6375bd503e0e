//! Differential tests of the set commands: the same commands go to the reference
//! `redis-server` (7.0) and to Libellule, and the replies must be identical, byte for
//! byte, except where Redis itself is non-deterministic:
//!
//! * a "hashtable" set lists its members in the server's own order: such replies
//!   (script lines starting with `~`) are compared with their elements sorted, and the
//!   reply type (array or RESP3 set) and length must still match;
//! * SPOP and SRANDMEMBER pick members at random: their replies are checked for shape
//!   (type, length, distinctness) and for membership, and after an SPOP that leaves
//!   members behind the key is rebuilt identically on both servers;
//! * SSCAN of a hashtable is compared as the set of members a full iteration returns.
//!
//! Every suite runs with `--io_threads 1` and `--io_threads 3` (cross-shard paths for
//! SINTER, SUNION, SDIFF, SINTERCARD, the *STORE forms and SMOVE). The random suite
//! prints its seed; reproduce with `DIFF_SEED=<seed>`, change its length with
//! `DIFF_COMMANDS=<n>`.

mod common;

use common::diff::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Comparison helpers
// ---------------------------------------------------------------------------

/// The elements of an array or RESP3 set reply, sorted, with the reply's kind; other
/// replies as themselves.
fn normalized(r: &Reply) -> (&'static str, Vec<Reply>) {
    match r {
        Reply::Array(Some(v)) | Reply::Set(v) => {
            let mut v = v.clone();
            v.sort();
            (r.kind(), v)
        }
        other => (other.kind(), vec![other.clone()]),
    }
}

/// Sends `args` to both servers and compares the replies with array elements sorted.
fn sorted_args(d: &mut Diff, args: &[Vec<u8>]) -> (Reply, Reply) {
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let a = d.redis.cmd(&refs);
    let b = d.lib.cmd(&refs);
    d.history.push(format!(
        "{}  -> {:?} (compared sorted)",
        show_command(args),
        a
    ));
    let same = if a.is_error() || b.is_error() {
        a == b
    } else {
        normalized(&a) == normalized(&b)
    };
    if !same {
        d.fail(&format!(
            "MISMATCH (sorted) on: {}\n  redis-server: {a:?}\n  libellule:    {b:?}",
            show_command(args)
        ));
    }
    (a, b)
}

/// [`sorted_args`] for a redis-cli style line.
fn sorted(d: &mut Diff, line: &str) -> (Reply, Reply) {
    sorted_args(d, &split_args(line))
}

/// Runs a script: one command per line; a line starting with `~` is compared sorted;
/// `#` comments and blank lines are skipped.
fn script(d: &mut Diff, text: &str) {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.strip_prefix('~') {
            Some(rest) => {
                sorted(d, rest.trim());
            }
            None => {
                d.line(l);
            }
        }
    }
}

/// The members of `key` on one connection (empty when missing or not a set).
fn members_of(c: &mut RawConn, key: &[u8]) -> Vec<Vec<u8>> {
    match c.cmd(&[b"SMEMBERS", key]) {
        Reply::Array(Some(v)) | Reply::Set(v) => v.iter().map(|m| m.as_bytes().to_vec()).collect(),
        _ => Vec::new(),
    }
}

/// Sends a random command (SPOP or SRANDMEMBER) and checks its replies: same type and
/// length on both servers, members of the set as it was, distinct when they must be.
/// For SPOP, also that the popped members are gone and the rest stayed; then rebuilds
/// the key on both servers from the reference's content, so the servers agree again.
fn random_cmd(d: &mut Diff, args: &[Vec<u8>]) -> Reply {
    let key = args[1].clone();
    let before: BTreeSet<Vec<u8>> = members_of(&mut d.redis, &key).into_iter().collect();
    let before_lib: BTreeSet<Vec<u8>> = members_of(&mut d.lib, &key).into_iter().collect();
    if before != before_lib {
        d.fail(&format!(
            "sets differ before {}: {before:?} vs {before_lib:?}",
            show_command(args)
        ));
    }
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let a = d.redis.cmd(&refs);
    let b = d.lib.cmd(&refs);
    d.history.push(format!(
        "{}  -> {:?} (random: shape checked)",
        show_command(args),
        a
    ));
    if a.is_error() || b.is_error() || a.kind() != b.kind() {
        if a != b {
            d.fail(&format!(
                "MISMATCH on: {}\n  redis-server: {a:?}\n  libellule:    {b:?}",
                show_command(args)
            ));
        }
        return a;
    }
    let is_pop = upper(&args[0]) == "SPOP";
    let count: Option<i64> = args
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok());
    let elems = |r: &Reply| -> Vec<Vec<u8>> {
        match r {
            Reply::Array(Some(v)) | Reply::Set(v) => {
                v.iter().map(|m| m.as_bytes().to_vec()).collect()
            }
            Reply::Bulk(Some(m)) => vec![m.clone()],
            _ => Vec::new(),
        }
    };
    let (ea, eb) = (elems(&a), elems(&b));
    if ea.len() != eb.len() {
        d.fail(&format!(
            "{}: counts differ\n  redis-server: {a:?}\n  libellule:    {b:?}",
            show_command(args)
        ));
    }
    let distinct = is_pop || count.is_some_and(|c| c > 0);
    for e in &eb {
        if !before.contains(e) {
            d.fail(&format!(
                "{}: libellule returned a non-member {}",
                show_command(args),
                escape_bytes(e)
            ));
        }
    }
    if distinct && eb.iter().collect::<BTreeSet<_>>().len() != eb.len() {
        d.fail(&format!(
            "{}: libellule repeated a member: {b:?}",
            show_command(args)
        ));
    }
    if is_pop {
        let after_lib: BTreeSet<Vec<u8>> = members_of(&mut d.lib, &key).into_iter().collect();
        let popped: BTreeSet<Vec<u8>> = eb.iter().cloned().collect();
        let expect: BTreeSet<Vec<u8>> = before.difference(&popped).cloned().collect();
        if after_lib != expect {
            d.fail(&format!(
                "{}: libellule's set after the pop is wrong: {after_lib:?}, expected {expect:?}",
                show_command(args)
            ));
        }
        // Rebuild identically on both servers.
        let rest = members_of(&mut d.redis, &key);
        d.exec(&[b"DEL".to_vec(), key.clone()]);
        if !rest.is_empty() {
            let mut cmd = vec![b"SADD".to_vec(), key.clone()];
            cmd.extend(rest);
            d.exec(&cmd);
        }
    }
    a
}

/// Sends `line` to both servers without comparing the replies (a random outcome whose
/// effect is compared afterwards); both must still succeed.
fn unchecked(d: &mut Diff, line: &str) {
    let args = split_args(line);
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let a = d.redis.cmd(&refs);
    let b = d.lib.cmd(&refs);
    d.history
        .push(format!("{line}  -> {} (not compared)", a.kind()));
    if a.is_error() || b.is_error() || a.kind() != b.kind() {
        d.fail(&format!("{line}: redis {a:?}, libellule {b:?}"));
    }
}

/// A full SSCAN iteration: the members returned and the number of calls.
fn sscan_all(c: &mut RawConn, key: &[u8], extra: &[&str]) -> (BTreeSet<Vec<u8>>, usize) {
    let mut cursor = b"0".to_vec();
    let mut found = BTreeSet::new();
    for calls in 1..1_000_000 {
        let mut args: Vec<&[u8]> = vec![b"SSCAN", key, &cursor];
        args.extend(extra.iter().map(|s| s.as_bytes()));
        let r = c.cmd(&args);
        let parts = r.as_array();
        assert_eq!(parts.len(), 2, "SSCAN reply: {r:?}");
        for m in parts[1].as_array() {
            found.insert(m.as_bytes().to_vec());
        }
        cursor = parts[0].as_bytes().to_vec();
        if cursor == b"0" {
            return (found, calls);
        }
    }
    panic!("SSCAN did not finish");
}

/// SSCAN on both servers: a hashtable is compared as full iterations, an intset (or a
/// missing key, or an error) exactly.
fn sscan_both(d: &mut Diff, key: &str, extra: &[&str]) {
    let enc = d.redis.cmd(&[b"OBJECT", b"ENCODING", key.as_bytes()]);
    if enc == Reply::bulk("hashtable") {
        let (a, _) = sscan_all(&mut d.redis, key.as_bytes(), extra);
        let (b, _) = sscan_all(&mut d.lib, key.as_bytes(), extra);
        d.history
            .push(format!("(full SSCAN {key} {extra:?}: {} members)", a.len()));
        if a != b {
            d.fail(&format!(
                "full SSCAN {key} {extra:?} differs:\n  redis: {a:?}\n  libellule: {b:?}"
            ));
        }
    } else {
        let mut line = format!("SSCAN {key} 0");
        for e in extra {
            line.push(' ');
            line.push_str(e);
        }
        d.line(&line);
    }
}

/// `SADD key <prefix><from>..` for `n` members, in batches, on both servers.
fn sadd_many(d: &mut Diff, key: &str, prefix: &str, from: i64, n: i64) {
    let mut i = from;
    while i < from + n {
        let end = (i + 200).min(from + n);
        let mut cmd = vec![b"SADD".to_vec(), key.as_bytes().to_vec()];
        for j in i..end {
            cmd.push(format!("{prefix}{j}").into_bytes());
        }
        d.exec(&cmd);
        i = end;
    }
}

// ---------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------

/// Basic commands on intsets (ordered, so compared exactly) and small hashtables.
const SCRIPT_BASIC: &str = r#"
SADD s 3 1 2
SADD s 2 3 4
SCARD s
SMEMBERS s
OBJECT ENCODING s
TYPE s
SISMEMBER s 1
SISMEMBER s 01
SISMEMBER s x
SISMEMBER nosuch 1
SMISMEMBER s 1 5 4 x 4
SMISMEMBER nosuch a b
SCARD nosuch
SMEMBERS nosuch
SREM s 1 1 9
SREM s x
SREM nosuch a
SMEMBERS s
SADD s -5 -70000 70000 9223372036854775807 -9223372036854775808
SMEMBERS s
SISMEMBER s -70000
SISMEMBER s 9223372036854775807
SISMEMBER s 9223372036854775808
OBJECT ENCODING s
SREM s 2 3 4 -5 -70000 70000 9223372036854775807
SREM s -9223372036854775808
EXISTS s
TYPE s
SADD n 007
OBJECT ENCODING n
SADD n2 1
SADD n2 +1 " 1" 1.0 -0
OBJECT ENCODING n2
~SMEMBERS n2
SCARD n2
SADD h a b c
OBJECT ENCODING h
~SMEMBERS h
SADD h a
SREM h a b c
EXISTS h
SADD e ""
SMEMBERS e
SISMEMBER e ""
SADD bin "a\x00b" "\r\n"
~SMEMBERS bin
SISMEMBER bin "a\x00b"
SADD big 18446744073709551616 99999999999999999999
OBJECT ENCODING big
"#;

/// Set algebra and the *STORE forms (the keys spread over shards with --io_threads 3).
const SCRIPT_ALGEBRA: &str = r#"
SADD a 1 2 3 4 5
SADD b 4 5 6 7
SADD c 5 7 9
SADD x a b c 5
SINTER a b
SINTER a b c
SINTER a nosuch
SINTER nosuch a
SINTER a a
SINTER a
~SINTER x a
~SINTER a x c
SINTERCARD 2 a b
SINTERCARD 3 a b c
SINTERCARD 2 a b LIMIT 1
SINTERCARD 2 a b LIMIT 0
SINTERCARD 2 a b limit 100
SINTERCARD 1 a
SINTERCARD 2 a nosuch
SINTERCARD 1 a LIMIT 2 LIMIT 3
SUNION a b
SUNION a b c nosuch
SUNION nosuch
~SUNION a x
SDIFF a b
SDIFF a b c
SDIFF a nosuch
SDIFF nosuch a
SDIFF a a
SDIFF a b a
~SDIFF x a
SDIFF a x
SINTERSTORE d a b
SMEMBERS d
OBJECT ENCODING d
SINTERSTORE d a nosuch
EXISTS d
SINTERSTORE d a b
SINTERSTORE d d c
SMEMBERS d
SUNIONSTORE u a b c
SMEMBERS u
OBJECT ENCODING u
SUNIONSTORE u a x
~SMEMBERS u
OBJECT ENCODING u
SDIFFSTORE df a b
SMEMBERS df
SDIFFSTORE df a a
EXISTS df
SDIFFSTORE df x a
~SMEMBERS df
OBJECT ENCODING df
SET str hello
SINTERSTORE str a b
TYPE str
SMEMBERS str
SET str2 hello EX 100
SUNIONSTORE str2 a
TTL str2
SDIFFSTORE str2 nosuch a
EXISTS str2
SUNIONSTORE empty nosuch1 nosuch2
EXISTS empty
SINTERSTORE {t}d {t}a {t}b
SADD {t}a 1 2
SADD {t}b 2 3
SINTERSTORE {t}d {t}a {t}b
SUNIONSTORE {t}u {t}a {t}b
SDIFFSTORE {t}f {t}a {t}b
SMEMBERS {t}d
SMEMBERS {t}u
SMEMBERS {t}f
SINTER {t}a b
SUNION {t}a b x2
SDIFF b {t}a
"#;

/// SMOVE, including its type-check order and keyspace effects.
const SCRIPT_SMOVE: &str = r#"
SADD src 1 2 3
SMOVE src dst 1
SMEMBERS src
SMEMBERS dst
OBJECT ENCODING dst
SMOVE src dst 1
SMOVE src dst 9
SMOVE src src 2
SMOVE src src 9
SMOVE nosuch dst 1
SET str x
SMOVE nosuch str 1
SMOVE str dst 1
SMOVE src str 2
SMOVE src str 9
SMOVE src dst a
SMOVE src dst 2
SMOVE src dst 3
EXISTS src
SMEMBERS dst
SADD src2 a b
SMOVE src2 newdst a
OBJECT ENCODING newdst
SMOVE src2 dst b
OBJECT ENCODING dst
~SMEMBERS dst
EXISTS src2
SADD {m}a 1 2
SMOVE {m}a {m}b 1
SMEMBERS {m}a
SMEMBERS {m}b
"#;

/// Errors: arity, WRONGTYPE against strings and hashes, bad numbers, options.
const SCRIPT_ERRORS: &str = r#"
SET str hello
HSET hash f v
SADD s 1 2 3
SADD str a
SADD hash a
SREM str a
SREM hash a
SCARD str
SISMEMBER hash a
SMISMEMBER str a
SMEMBERS str
SMEMBERS hash
SRANDMEMBER str
SRANDMEMBER str 3
SRANDMEMBER hash -3
SPOP str
SPOP hash 2
SPOP str 0
SSCAN str 0
SSCAN hash 0 COUNT 0
SINTER s str
SINTER str s
SINTER nosuch str
SINTER str nosuch
SUNION s hash
SUNION nosuch hash
SDIFF s str
SDIFF str s
SDIFF nosuch str
SINTERCARD 2 s str
SINTERCARD 2 nosuch str
SINTERSTORE d s str
SUNIONSTORE d hash
SDIFFSTORE d s hash
SINTERSTORE str nosuch
TYPE str
SADD
SADD s
SREM s
SCARD
SCARD a b
SISMEMBER s
SISMEMBER s a b
SMISMEMBER s
SMEMBERS
SMEMBERS a b
SRANDMEMBER
SPOP
SMOVE a b
SMOVE a b c d
SINTER
SINTERSTORE d
SUNION
SUNIONSTORE d
SDIFF
SDIFFSTORE d
SINTERCARD 1
SSCAN s
SPOP s 1 2
SPOP s -1
SPOP s abc
SPOP s 1.5
SPOP nosuch -1
SRANDMEMBER s 1 2
SRANDMEMBER s abc
SRANDMEMBER s -9223372036854775808
SRANDMEMBER s 9223372036854775808
SRANDMEMBER nosuch abc
SINTERCARD 0 s
SINTERCARD -1 s
SINTERCARD abc s
SINTERCARD 3 s
SINTERCARD 2 s
SINTERCARD 1 s LIMIT
SINTERCARD 1 s LIMIT -1
SINTERCARD 1 s LIMIT x
SINTERCARD 1 s FOO 1
SINTERCARD 1 s LIMIT 1 LIMIT
SINTERCARD 1 str LIMIT -1
SINTERCARD 9223372036854775807 s
SSCAN s abc
SSCAN s -1
SSCAN s 0 COUNT 0
SSCAN s 0 COUNT -1
SSCAN s 0 COUNT x
SSCAN s 0 MATCH
SSCAN s 0 TYPE set
SSCAN s 0 FOO bar
SSCAN nosuch 0 FOO bar
SSCAN nosuch x
SSCAN s 0 MATCH * COUNT 5
SSCAN s 0 match 1*
SSCAN nosuch 0
"#;

/// SPOP and SRANDMEMBER cases whose outcome is deterministic.
const SCRIPT_RANDOM_DETERMINISTIC: &str = r#"
SADD s 1 2 3
SRANDMEMBER nosuch
SRANDMEMBER nosuch 5
SRANDMEMBER nosuch -5
SRANDMEMBER nosuch 0
SRANDMEMBER s 0
SRANDMEMBER s 3
SRANDMEMBER s 10
SPOP nosuch
SPOP nosuch 3
SPOP nosuch 0
SPOP s 0
SCARD s
SPOP s 3
EXISTS s
SADD s 5 4 3
SPOP s 100
EXISTS s
SADD one x
SPOP one
EXISTS one
SADD one y
SRANDMEMBER one
SRANDMEMBER one -3
SRANDMEMBER one 1
SPOP one 1
EXISTS one
SADD h b a c
~SRANDMEMBER h 3
~SRANDMEMBER h 5
~SPOP h 3
EXISTS h
"#;

/// RESP3 forms: sets as `~`, SRANDMEMBER with a count still an array, nulls.
const SCRIPT_RESP3: &str = r#"
HELLO 3
SADD s 1 2 3
SMEMBERS s
SMEMBERS nosuch
SINTER s nosuch
SUNION s
SDIFF s nosuch
SINTERCARD 1 s
SMISMEMBER s 1 9
SRANDMEMBER nosuch
SRANDMEMBER nosuch 3
SRANDMEMBER s 5
SRANDMEMBER s 0
SPOP nosuch
SPOP nosuch 2
SPOP s 0
SSCAN s 0
SSCAN nosuch 0
SADD h a b
~SMEMBERS h
~SUNION h s
~SPOP h 5
SPOP s 3
SADD s 7
SPOP s
SISMEMBER s 1
SCARD s
HELLO 2
"#;

/// TYPE, OBJECT, COPY, RENAME, SCAN TYPE, DEL with sets.
const SCRIPT_KEYSPACE: &str = r#"
SADD s 1 2 3
SADD h a b
SET str x
TYPE s
TYPE h
OBJECT ENCODING s
OBJECT ENCODING h
COPY s s2
SMEMBERS s2
OBJECT ENCODING s2
COPY h h2
OBJECT ENCODING h2
~SMEMBERS h2
SADD s2 4
SMEMBERS s
SMEMBERS s2
COPY s str
COPY s str REPLACE
TYPE str
RENAME s2 s3
SMEMBERS s3
RENAME h2 {x}h
~SMEMBERS {x}h
SCAN 0 TYPE set COUNT 1000
DEL s s3 h
EXISTS s s3 h
EXPIRE str 100
SADD str 1
"#;

fn run_scripts(io_threads: &str) {
    let scripts: &[(&str, &str)] = &[
        ("basic", SCRIPT_BASIC),
        ("algebra", SCRIPT_ALGEBRA),
        ("smove", SCRIPT_SMOVE),
        ("errors", SCRIPT_ERRORS),
        ("random-deterministic", SCRIPT_RANDOM_DETERMINISTIC),
        ("resp3", SCRIPT_RESP3),
        ("keyspace", SCRIPT_KEYSPACE),
    ];
    let Some((redis, target)) = start_pair(io_threads, &[]) else {
        return;
    };
    let mut failures = Vec::new();
    for (name, text) in scripts {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut d = Diff::new(
                &format!("sets script {name} io_threads={io_threads}"),
                redis.port,
                target.port(),
            );
            d.line("FLUSHALL");
            script(&mut d, text);
        }));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("=== script {name} ===\n{msg}"));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} set scripts failed (io_threads={io_threads}):\n{}",
            failures.len(),
            scripts.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn sets_scripted_io1() {
    run_scripts("1");
}

#[test]
fn sets_scripted_io3() {
    run_scripts("3");
}

// ---------------------------------------------------------------------------
// Encodings and big sets
// ---------------------------------------------------------------------------

fn run_encodings(io_threads: &str) {
    with_pair("set-encodings", io_threads, &[], |d, _| {
        d.line("FLUSHALL");
        d.line("CONFIG GET set-max-intset-entries");
        // 512 integers: intset; 513: hashtable.
        sadd_many(d, "i512", "", 0, 512);
        d.line("OBJECT ENCODING i512");
        d.line("SCARD i512");
        d.line("SMEMBERS i512");
        d.line("SSCAN i512 0");
        d.line("SSCAN i512 0 MATCH 1*");
        sadd_many(d, "i513", "", 0, 513);
        d.line("OBJECT ENCODING i513");
        sorted(d, "SMEMBERS i513");
        // Adding one more to a full intset converts it.
        d.line("SADD i512 100000");
        d.line("OBJECT ENCODING i512");
        // Widths: 16, 32, 64 bits, in ascending order.
        d.line("SADD w 1 -1 32767 -32768");
        d.line("SADD w 32768 -32769");
        d.line("SADD w 2147483648 -2147483649");
        d.line("SMEMBERS w");
        d.line("OBJECT ENCODING w");
        d.line("SISMEMBER w -2147483649");
        d.line("SISMEMBER w 2147483647");
        // CONFIG SET lowers the threshold.
        d.line("CONFIG SET set-max-intset-entries 4");
        d.line("SADD c4 1 2 3 4");
        d.line("OBJECT ENCODING c4");
        d.line("SADD c4 5");
        d.line("OBJECT ENCODING c4");
        sorted(d, "SMEMBERS c4");
        d.line("SADD c5 1 2 3 4 5");
        d.line("OBJECT ENCODING c5");
        // Results start as intsets too.
        d.line("SADD p 1 2 3 4 5 6");
        d.line("SADD q 1 2 3");
        d.line("SINTERSTORE r1 p q");
        d.line("OBJECT ENCODING r1");
        d.line("SMEMBERS r1");
        d.line("SUNIONSTORE r2 q");
        d.line("OBJECT ENCODING r2");
        d.line("SUNIONSTORE r3 p");
        d.line("OBJECT ENCODING r3");
        // SDIFF's second algorithm (first set much larger) leaves a hashtable.
        d.line("SDIFFSTORE r4 p q");
        d.line("OBJECT ENCODING r4");
        d.line("SMEMBERS r4");
        d.line("SADD big1 1 2 3 4 5 6 7 8 9 10");
        d.line("SADD small1 1");
        d.line("SDIFFSTORE r5 big1 small1 small1 small1");
        d.line("OBJECT ENCODING r5");
        sorted(d, "SMEMBERS r5");
        d.line("SDIFFSTORE r6 small1 big1");
        d.line("EXISTS r6");
        d.line("CONFIG SET set-max-intset-entries 0");
        d.line("SADD z 1");
        d.line("OBJECT ENCODING z");
        d.line("CONFIG SET set-max-intset-entries 512");
        // SPOP leaving few members: Redis moves them into a new set, an intset when
        // they are all integers.
        sadd_many(d, "sp", "", 0, 600);
        d.line("OBJECT ENCODING sp");
        let a = random_cmd(d, &split_args("SPOP sp 590"));
        assert_eq!(a.as_array().len(), 590);
        d.line("SCARD sp");
        sadd_many(d, "sp2", "", 0, 600);
        unchecked(d, "SPOP sp2 590");
        d.line("OBJECT ENCODING sp2");
        d.line("SCARD sp2");
        sadd_many(d, "sp3", "m", 0, 600);
        d.line("SADD sp3 1");
        unchecked(d, "SPOP sp3 100");
        d.line("OBJECT ENCODING sp3");
        unchecked(d, "SPOP sp3 495");
        d.line("OBJECT ENCODING sp3");
        d.line("SCARD sp3");
        // Big hashtables: membership, algebra, scans.
        sadd_many(d, "t1", "m", 0, 2000);
        sadd_many(d, "t2", "m", 1000, 2000);
        d.line("SCARD t1");
        d.line("SISMEMBER t1 m1999");
        d.line("SMISMEMBER t1 m0 m2000 m-1");
        d.line("SINTERCARD 2 t1 t2");
        d.line("SINTERCARD 2 t1 t2 LIMIT 10");
        d.line("SINTERSTORE ti t1 t2");
        d.line("SUNIONSTORE tu t1 t2");
        d.line("SDIFFSTORE td t1 t2");
        d.line("OBJECT ENCODING ti");
        sorted(d, "SINTER t1 t2");
        sorted(d, "SUNION t1 t2");
        sorted(d, "SDIFF t1 t2");
        sorted(d, "SDIFF t2 t1 ti");
        sscan_both(d, "t1", &[]);
        sscan_both(d, "t1", &["COUNT", "100"]);
        sscan_both(d, "t1", &["MATCH", "m1*"]);
        sscan_both(d, "t1", &["MATCH", "nomatch*", "COUNT", "7"]);
        for _ in 0..20 {
            random_cmd(d, &split_args("SRANDMEMBER t1 10"));
            random_cmd(d, &split_args("SRANDMEMBER t1 1500"));
            random_cmd(d, &split_args("SRANDMEMBER t1 -30"));
            random_cmd(d, &split_args("SRANDMEMBER t1"));
            random_cmd(d, &split_args("SRANDMEMBER i512 100"));
            random_cmd(d, &split_args("SRANDMEMBER i512 400"));
        }
        random_cmd(d, &split_args("SPOP t2 5"));
        random_cmd(d, &split_args("SPOP t2 1900"));
        random_cmd(d, &split_args("SPOP t2"));
        d.line("SCARD t2");
        d.line("OBJECT ENCODING t2");
    });
}

#[test]
fn sets_encodings_io1() {
    run_encodings("1");
}

#[test]
fn sets_encodings_io3() {
    run_encodings("3");
}

// ---------------------------------------------------------------------------
// SSCAN while the set changes
// ---------------------------------------------------------------------------

/// A member present for a whole SSCAN is returned, whatever is added between calls.
fn run_sscan_growing(io_threads: &str) {
    with_pair("sscan-growing", io_threads, &[], |d, _| {
        d.line("FLUSHALL");
        sadd_many(d, "g", "m", 0, 1000);
        let mut cursor = b"0".to_vec();
        let mut seen = BTreeSet::new();
        let mut next = 1000;
        for _ in 0..100_000 {
            let r = d.lib.cmd(&[b"SSCAN", b"g", &cursor, b"COUNT", b"20"]);
            let parts = r.as_array();
            for m in parts[1].as_array() {
                seen.insert(m.as_bytes().to_vec());
            }
            cursor = parts[0].as_bytes().to_vec();
            if cursor == b"0" {
                break;
            }
            // Grow the set by 100 members (several table resizes over the scan).
            let mut cmd: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"g".to_vec()];
            for j in next..next + 100 {
                cmd.push(format!("m{j}").into_bytes());
            }
            next += 100;
            let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
            d.lib.cmd(&refs);
        }
        assert_eq!(cursor, b"0", "SSCAN did not finish");
        for i in 0..1000 {
            assert!(
                seen.contains(format!("m{i}").as_bytes()),
                "m{i} was present for the whole scan but not returned"
            );
        }
        assert!(next > 2000, "the set grew during the scan ({next})");
    });
}

#[test]
fn sets_sscan_growing_io1() {
    run_sscan_growing("1");
}

#[test]
fn sets_sscan_growing_io3() {
    run_sscan_growing("3");
}

// ---------------------------------------------------------------------------
// Seeded random commands
// ---------------------------------------------------------------------------

/// Keys that the generator uses as sets (some share a hash tag, the rest spread over
/// the shards), and two keys of other types for the WRONGTYPE paths.
const SET_KEYS: &[&str] = &["s1", "s2", "s3", "s4", "{t}a", "{t}b", "{t}c"];
const OTHER_KEYS: &[&str] = &["str", "hash"];

/// Members: mostly integers of every width (intsets), some strings (hashtables).
const INT_MEMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "-1",
    "-2",
    "100",
    "-100",
    "32767",
    "-32768",
    "70000",
    "-70000",
    "5000000000",
    "-5000000000",
    "9223372036854775807",
    "-9223372036854775808",
];
const STR_MEMBERS: &[&str] = &[
    "a",
    "b",
    "c",
    "hello",
    "\"\"",
    "007",
    "+1",
    "1.5",
    "\" 2\"",
    "\"x y\"",
    "\"bin\\x00\"",
    "9223372036854775808",
];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn pick(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.rng.gen_range(0..xs.len())]
    }
    fn key(&mut self) -> &'static str {
        if self.rng.gen_bool(0.08) {
            self.pick(OTHER_KEYS)
        } else {
            self.pick(SET_KEYS)
        }
    }
    fn member(&mut self) -> &'static str {
        if self.rng.gen_bool(0.85) {
            self.pick(INT_MEMBERS)
        } else {
            self.pick(STR_MEMBERS)
        }
    }
    fn members(&mut self, max: usize) -> String {
        let n = self.rng.gen_range(1..=max);
        (0..n).map(|_| self.member()).collect::<Vec<_>>().join(" ")
    }
    fn keys(&mut self, max: usize) -> String {
        let n = self.rng.gen_range(1..=max);
        (0..n).map(|_| self.key()).collect::<Vec<_>>().join(" ")
    }
}

/// What to do with a generated line.
enum Step {
    /// Compare exactly.
    Exact(String),
    /// Compare with elements sorted.
    Sorted(String),
    /// SPOP / SRANDMEMBER.
    Random(String),
    /// Full SSCAN of a key with options.
    Scan(&'static str, Vec<&'static str>),
}

fn step(g: &mut Gen) -> Step {
    let r = g.rng.gen_range(0..100);
    let k = g.key();
    match r {
        0..=19 => Step::Exact(format!("SADD {k} {}", g.members(5))),
        20..=27 => Step::Exact(format!("SREM {k} {}", g.members(4))),
        28..=30 => Step::Exact(format!("SCARD {k}")),
        31..=33 => Step::Exact(format!("SISMEMBER {k} {}", g.member())),
        34..=36 => Step::Exact(format!("SMISMEMBER {k} {}", g.members(4))),
        37..=41 => Step::Sorted(format!("SMEMBERS {k}")),
        42..=45 => Step::Sorted(format!("SINTER {}", g.keys(4))),
        46..=49 => Step::Sorted(format!("SUNION {}", g.keys(4))),
        50..=53 => Step::Sorted(format!("SDIFF {}", g.keys(4))),
        54..=56 => {
            let n = g.rng.gen_range(1..=3);
            let keys: Vec<&str> = (0..n).map(|_| g.key()).collect();
            let limit = match g.rng.gen_range(0..3) {
                0 => String::new(),
                _ => format!(" LIMIT {}", g.rng.gen_range(0..4)),
            };
            Step::Exact(format!("SINTERCARD {n} {}{limit}", keys.join(" ")))
        }
        57..=66 => {
            let cmd = g.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
            Step::Exact(format!("{cmd} {k} {}", g.keys(3)))
        }
        67..=72 => Step::Exact(format!("SMOVE {k} {} {}", g.key(), g.member())),
        73..=76 => {
            let count = match g.rng.gen_range(0..3) {
                0 => String::new(),
                _ => format!(" {}", g.rng.gen_range(0..8)),
            };
            Step::Random(format!("SPOP {k}{count}"))
        }
        77..=80 => {
            let count = match g.rng.gen_range(0..3) {
                0 => String::new(),
                _ => format!(" {}", g.rng.gen_range(-6..8)),
            };
            Step::Random(format!("SRANDMEMBER {k}{count}"))
        }
        81..=82 => {
            let opts = match g.rng.gen_range(0..3) {
                0 => vec![],
                1 => vec!["COUNT", "2"],
                _ => vec!["MATCH", "*1*"],
            };
            Step::Scan(k, opts)
        }
        83..=88 => Step::Exact(format!("OBJECT ENCODING {k}")),
        89..=90 => Step::Exact(format!("TYPE {k}")),
        91..=92 => Step::Exact(format!("DEL {k}")),
        93 => Step::Exact(format!("SET {} x", g.pick(&["str", "s4"]))),
        94 => Step::Exact(format!("HSET {} f v", g.pick(&["hash", "{t}c"]))),
        95 => Step::Exact(format!(
            "CONFIG SET set-max-intset-entries {}",
            g.pick(&["3", "5", "16", "512"])
        )),
        _ => Step::Exact(format!("EXISTS {k} {}", g.key())),
    }
}

/// Every key's type, content and encoding agree.
fn checkpoint(d: &mut Diff) {
    for k in SET_KEYS.iter().chain(OTHER_KEYS) {
        d.line(&format!("TYPE {k}"));
        d.line(&format!("OBJECT ENCODING {k}"));
        sorted(d, &format!("SMEMBERS {k}"));
    }
    d.history.push("(checkpoint)".into());
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
        "random set differential io_threads={io_threads}: DIFF_SEED={seed} DIFF_COMMANDS={n}"
    );
    // With 3 shards the generator's keys must span shards, or the cross-shard
    // coordinators would go untested.
    let shards: BTreeSet<usize> = SET_KEYS
        .iter()
        .map(|k| libellule::shard::key_shard(k.as_bytes(), 3))
        .collect();
    assert!(shards.len() >= 2, "the set keys all live on one shard");
    with_pair("sets-random", io_threads, &[], |d, _| {
        d.seed = Some(seed);
        let mut g = Gen {
            rng: SmallRng::seed_from_u64(seed),
        };
        d.line("FLUSHALL");
        let mut errors = 0;
        for i in 0..n {
            let r = match step(&mut g) {
                Step::Exact(l) => d.line(&l).0,
                Step::Sorted(l) => sorted(d, &l).0,
                Step::Random(l) => random_cmd(d, &split_args(&l)),
                Step::Scan(k, opts) => {
                    sscan_both(d, k, &opts);
                    Reply::Null
                }
            };
            errors += r.is_error() as usize;
            if i % 250 == 249 {
                checkpoint(d);
            }
        }
        checkpoint(d);
        eprintln!("random set differential io_threads={io_threads}: {n} commands, {errors} errors");
        assert!(errors < n / 2, "mostly errors: the generator is broken");
    });
}

#[test]
fn sets_random_io1() {
    run_random("1");
}

#[test]
fn sets_random_io3() {
    run_random("3");
}
