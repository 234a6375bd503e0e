//! Differential tests of MULTI/EXEC/WATCH and of pub/sub on one connection: the same
//! scripts against redis-server and Libellule (1 and 3 shards), reply by reply.

mod common;

use common::diff::*;

const SCRIPT_MULTI: &str = r#"
EXEC
DISCARD
MULTI
MULTI
SET a 1
INCR a
INCRBY a 10
PTTL a
GET a
MGET a b c d e
MSET b 1 c 2 d 3
DEL a b c d
EXEC
MULTI
EXEC
MULTI
SET s str
INCR s
HSET s f v
GET s
EXEC
MULTI
GET
SET x 1
EXEC
GET x
MULTI
FOOBAR
EXEC
MULTI
SET x 1
EXEC foo
GET x
MULTI
SET x 1
DISCARD
GET x
MULTI
SELECT 1
SET indb1 1
SELECT 0
EXISTS indb1
SELECT 1
EXEC
EXISTS indb1
SELECT 0
EXISTS indb1
MULTI
PING
ECHO hi
DBSIZE
FLUSHDB
DBSIZE
EXEC
MULTI
SET k1 v
RENAME k1 k2
MSETNX k3 1 k4 2
COPY k2 k5
EXISTS k1 k2 k3 k4 k5
EXEC
MULTI
WATCH x
EXEC
MULTI
BLPOP nolist 0
RPUSH blist a b
BLPOP blist 0
BRPOPLPUSH blist dst 0
LRANGE dst 0 -1
BLMOVE nolist dst LEFT RIGHT 0
EXEC
MULTI
LPUSH s2 x
SET s2 str
LPUSH s2 y
GET s2
EXEC
"#;

const SCRIPT_WATCH: &str = r#"
SET w 1
WATCH w
SET w 2
MULTI
GET w
EXEC
WATCH w
MULTI
GET w
EXEC
WATCH w other
GET w
MULTI
SET w 3
EXEC
GET w
WATCH w
UNWATCH
SET w 4
MULTI
GET w
EXEC
WATCH nokey
FLUSHALL
MULTI
PING
EXEC
SET w 1
WATCH w
FLUSHDB
MULTI
PING
EXEC
SET w 1
WATCH w
SETNX w 5
MULTI
PING
EXEC
WATCH w
DEL nothere
MULTI
PING
EXEC
WATCH w
DEL w
MULTI
PING
EXEC
WATCH w
MULTI
DISCARD
SET w 1
MULTI
EXEC
HSET h f v
WATCH h
HSET h f v2
MULTI
HGET h f
EXEC
WATCH h
HDEL h f
MULTI
EXISTS h
EXEC
SET e 1
WATCH e
EXPIRE e 100
MULTI
TTL e
EXEC
WATCH e
PERSIST e
MULTI
TTL e
EXEC
SET r 1
WATCH r2
RENAME r r2
MULTI
GET r2
EXEC
"#;

const SCRIPT_PUBSUB: &str = r#"
PUBLISH ch hello
PUBSUB NUMSUB ch other
PUBSUB NUMPAT
PUBSUB CHANNELS
PUBSUB CHANNELS *
PUBSUB SHARDCHANNELS
PUBSUB SHARDNUMSUB ch
PUBSUB HELP
PUBSUB FOO
PUBSUB NUMPAT x
PUBSUB CHANNELS a b
PUBLISH
SPUBLISH ch x
UNSUBSCRIBE
PUNSUBSCRIBE
SUNSUBSCRIBE
SUBSCRIBE ch
PING
PING hi
GET a
SET a 1
MULTI
PSUBSCRIBE p*
UNSUBSCRIBE ch
PUNSUBSCRIBE p*
PUNSUBSCRIBE
SSUBSCRIBE sc
SUNSUBSCRIBE sc
SUNSUBSCRIBE
RESET
GET a
SUBSCRIBE c1
QUIT
"#;

const SCRIPT_RESP3_MULTI: &str = r#"
HELLO 3
SUBSCRIBE c
GET missing
SET w 1
WATCH w
SET w 2
MULTI
GET w
EXEC
UNSUBSCRIBE c
MULTI
HSET h a 1
HGETALL h
EXEC
"#;

fn run_all(io_threads: &str) {
    for (name, text) in [
        ("multi", SCRIPT_MULTI),
        ("watch", SCRIPT_WATCH),
        ("pubsub", SCRIPT_PUBSUB),
        ("resp3-multi", SCRIPT_RESP3_MULTI),
    ] {
        with_pair(name, io_threads, &[], |d, _| {
            d.line("FLUSHALL");
            d.script(text);
        });
    }
}

#[test]
fn transactions_io1() {
    run_all("1");
}

#[test]
fn transactions_io3() {
    run_all("3");
}

/// Keyspace notifications with every class on, `n` (new key) included: the same
/// commands give the same events, in the same order, as redis-server. One shard, so the
/// order of events of different keys is defined.
#[test]
fn keyspace_events_with_new_key_class_match_redis() {
    use common::{RawConn, Reply};
    with_pair("keyspace events", "1", &[], |d, _| {
        let mut subs = Vec::new();
        for port in [d.redis.port, d.lib.port] {
            let mut c = RawConn::connect(port);
            c.cmd_str("CONFIG SET notify-keyspace-events KEAnm");
            let mut sub = RawConn::connect(port);
            sub.cmd_str("PSUBSCRIBE __key*__:*");
            subs.push(sub);
        }
        d.script(
            r#"
SET a 1
SET a 2
APPEND b x
INCR c
LPUSH l x y
RPOP l
RPOP l
HSET h f v
SADD s m
ZADD z 1 m
RENAME a a2
COPY a2 a3
EXPIRE a3 100
PERSIST a3
MOVE a3 1
DEL a2 a3
SET e 1 PX 1
"#,
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        d.line("GET e");
        d.line("PING");
        let mut streams = Vec::new();
        for sub in subs.iter_mut() {
            sub.set_read_timeout(std::time::Duration::from_millis(500));
            let mut got = Vec::new();
            while let Ok(r) = sub.try_read_reply() {
                got.push(r);
            }
            streams.push(got);
        }
        let show = |v: &[Reply]| {
            v.iter()
                .map(|r| match r {
                    Reply::Array(Some(items)) if items.len() == 4 => format!(
                        "{} {}",
                        String::from_utf8_lossy(items[2].as_bytes()),
                        String::from_utf8_lossy(items[3].as_bytes())
                    ),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        let (redis, lib) = (show(&streams[0]), show(&streams[1]));
        assert!(redis.iter().any(|e| e.ends_with(":new a")), "{redis:#?}");
        assert_eq!(
            redis, lib,
            "keyspace events differ (left redis, right libellule)"
        );
    });
}
