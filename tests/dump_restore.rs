//! DUMP/RESTORE interoperability with redis-server 7.0: for every type and encoding,
//! a payload DUMPed by redis-server RESTOREs into Libellule with the same value and
//! OBJECT ENCODING, and a payload DUMPed by Libellule RESTOREs into redis-server with
//! the same value and encoding. Where the bytes are deterministic (no hash table order,
//! no compression) the payloads must be identical. Corrupt payloads (flipped bytes with
//! a recomputed checksum, truncations, wrong versions, huge lengths) give errors and
//! never bring the server down. RESTORE's options and errors are compared with Redis.

mod common;

use common::diff::*;
use common::*;

/// CRC-64/Jones, bitwise (independent of the server's table-driven version).
fn crc64(data: &[u8]) -> u64 {
    let mut c = 0u64;
    for &b in data {
        c ^= b as u64;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                c >> 1
            };
        }
    }
    c
}

/// A payload with the given body, version and a correct checksum.
fn payload(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let c = crc64(&p);
    p.extend_from_slice(&c.to_le_bytes());
    p
}

/// The value of `key` in a comparable form: (type, sorted-where-unordered contents).
fn value_of(c: &mut RawConn, key: &str) -> (String, Vec<Reply>) {
    let t = c.cmd(&[b"TYPE", key.as_bytes()]);
    let t = match &t {
        Reply::Simple(s) => s.clone(),
        other => panic!("TYPE gave {other:?}"),
    };
    let k = key.as_bytes();
    let r = match t.as_str() {
        "string" => vec![c.cmd(&[b"GET", k])],
        "list" => c.cmd(&[b"LRANGE", k, b"0", b"-1"]).as_array().to_vec(),
        "set" => {
            let mut v = c.cmd(&[b"SMEMBERS", k]).as_array().to_vec();
            v.sort();
            v
        }
        "zset" => c
            .cmd(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])
            .as_array()
            .to_vec(),
        "hash" => {
            let flat = c.cmd(&[b"HGETALL", k]).as_array().to_vec();
            let mut pairs: Vec<Reply> = flat.chunks(2).map(|p| Reply::array(p.to_vec())).collect();
            pairs.sort();
            pairs
        }
        "none" => vec![],
        other => panic!("unexpected type {other}"),
    };
    (t, r)
}

fn encoding(c: &mut RawConn, key: &str) -> Reply {
    c.cmd(&[b"OBJECT", b"ENCODING", key.as_bytes()])
}

/// Runs `setup` (lines) on both servers against key `k`.
fn build(r: &mut RawConn, l: &mut RawConn, lines: &[Vec<Vec<u8>>]) {
    for args in lines {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let a = r.cmd(&refs);
        let b = l.cmd(&refs);
        assert!(!a.is_error(), "redis: {} -> {a:?}", show_command(args));
        assert!(!b.is_error(), "libellule: {} -> {b:?}", show_command(args));
    }
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn big_cmd(head: &[&[u8]], items: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = head.iter().map(|p| p.to_vec()).collect();
    v.extend(items);
    v
}

/// A pseudo-random incompressible byte string.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The cases: (name, commands building key "k", payload bytes must equal Redis's).
/// One case: name, the commands building key "k", payload bytes must equal Redis's.
type Case = (&'static str, Vec<Vec<Vec<u8>>>, bool);

fn cases() -> Vec<Case> {
    let s = |v: &str| v.as_bytes().to_vec();
    vec![
        ("string int8", vec![cmd(&[b"SET", b"k", b"-5"])], true),
        ("string int16", vec![cmd(&[b"SET", b"k", b"12345"])], true),
        (
            "string int32",
            vec![cmd(&[b"SET", b"k", b"-2147483648"])],
            true,
        ),
        (
            "string int64",
            vec![cmd(&[b"SET", b"k", b"9223372036854775807"])],
            true,
        ),
        (
            "string leading zero",
            vec![cmd(&[b"SET", b"k", b"007"])],
            true,
        ),
        (
            "string short",
            vec![cmd(&[b"SET", b"k", b"hello world"])],
            true,
        ),
        ("string empty", vec![cmd(&[b"SET", b"k", b""])], true),
        (
            "string raw 30",
            vec![vec![s("SET"), s("k"), noise(30, 1)]],
            true,
        ),
        (
            "string appended",
            vec![cmd(&[b"SET", b"k", b"12"]), cmd(&[b"APPEND", b"k", b"34"])],
            true,
        ),
        (
            "string compressible",
            vec![vec![s("SET"), s("k"), vec![b'a'; 5000]]],
            false,
        ),
        (
            "string compressible text",
            vec![vec![
                s("SET"),
                s("k"),
                "hello world, ".repeat(100).into_bytes(),
            ]],
            false,
        ),
        (
            "string long noise",
            vec![vec![s("SET"), s("k"), noise(100_000, 7)]],
            true,
        ),
        (
            "list short",
            vec![cmd(&[
                b"RPUSH",
                b"k",
                b"a",
                b"1",
                b"-300",
                b"70000",
                b"5000000000",
                b"",
                b"007",
            ])],
            true,
        ),
        (
            "list long",
            vec![big_cmd(
                &[b"RPUSH", b"k"],
                (0..3000).map(|i| format!("element-{i}-{}", "x".repeat(i % 90)).into_bytes()),
            )],
            false,
        ),
        (
            "list big elements",
            vec![vec![
                s("RPUSH"),
                s("k"),
                noise(20_000, 3),
                s("small"),
                noise(9000, 4),
            ]],
            false,
        ),
        (
            "list ints",
            vec![big_cmd(
                &[b"RPUSH", b"k"],
                (0..1000).map(|i| format!("{}", i * 7919 - 3_000_000).into_bytes()),
            )],
            false,
        ),
        (
            "set intset",
            vec![cmd(&[b"SADD", b"k", b"3", b"1", b"2", b"-7"])],
            true,
        ),
        (
            "set intset 64",
            vec![cmd(&[
                b"SADD",
                b"k",
                b"1",
                b"9223372036854775807",
                b"-9223372036854775808",
            ])],
            false, // compressed: our LZF output may differ from liblzf's
        ),
        (
            "set intset 32",
            vec![cmd(&[b"SADD", b"k", b"1", b"100000"])],
            true,
        ),
        (
            "set hashtable",
            vec![cmd(&[b"SADD", b"k", b"a", b"b", b"1", b"longer member"])],
            false,
        ),
        (
            "set big intset",
            vec![big_cmd(
                &[b"SADD", b"k"],
                (0..600).map(|i| format!("{i}").into_bytes()),
            )],
            false,
        ),
        (
            "zset listpack",
            vec![cmd(&[
                b"ZADD",
                b"k",
                b"1.5",
                b"a",
                b"inf",
                b"b",
                b"-inf",
                b"c",
                b"-0.25",
                b"d",
                b"3",
                b"e",
                b"100000000000",
                b"f",
                b"0.1",
                b"g",
                b"1e-300",
                b"h",
            ])],
            true,
        ),
        (
            "zset skiplist",
            vec![
                big_cmd(
                    &[b"ZADD", b"k"],
                    (0..300).flat_map(|i| {
                        [
                            format!("{}", (i as f64) * 0.37 - 20.0).into_bytes(),
                            format!("m{i}").into_bytes(),
                        ]
                    }),
                ),
                cmd(&[b"ZADD", b"k", b"inf", b"top", b"-inf", b"bottom"]),
            ],
            false,
        ),
        (
            "zset long member",
            vec![vec![
                s("ZADD"),
                s("k"),
                s("1"),
                vec![b'm'; 100],
                s("2"),
                s("x"),
            ]],
            false,
        ),
        (
            "hash listpack",
            vec![cmd(&[
                b"HSET", b"k", b"f", b"v", b"n", b"12", b"neg", b"-1", b"e", b"",
            ])],
            true,
        ),
        (
            "hash hashtable long value",
            vec![vec![
                s("HSET"),
                s("k"),
                s("f"),
                vec![b'v'; 200],
                s("g"),
                s("1"),
            ]],
            false,
        ),
        (
            "hash hashtable many",
            vec![big_cmd(
                &[b"HSET", b"k"],
                (0..700).flat_map(|i| {
                    [
                        format!("field{i}").into_bytes(),
                        format!("{i}").into_bytes(),
                    ]
                }),
            )],
            false,
        ),
    ]
}

fn interop(io_threads: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let lib = Server::start(&["--io_threads", io_threads]);
    let mut r = RawConn::connect(redis.port);
    let mut l = RawConn::connect(lib.port);
    for (name, setup, same_bytes) in cases() {
        r.cmd(&[b"FLUSHALL"]);
        l.cmd(&[b"FLUSHALL"]);
        build(&mut r, &mut l, &setup);
        let want = value_of(&mut r, "k");
        assert_eq!(value_of(&mut l, "k"), want, "{name}: setup differs");
        let want_enc = encoding(&mut r, "k");
        assert_eq!(
            encoding(&mut l, "k"),
            want_enc,
            "{name}: encoding differs before DUMP"
        );

        // Redis -> Libellule.
        let rp = r.cmd(&[b"DUMP", b"k"]).as_bytes().to_vec();
        let res = l.cmd(&[b"RESTORE", b"from_redis", b"0", &rp]);
        assert_eq!(res, Reply::ok(), "{name}: RESTORE of Redis's payload");
        assert_eq!(
            value_of(&mut l, "from_redis"),
            want,
            "{name}: value after RESTORE"
        );
        // The encoding Redis itself gives the restored value.
        assert_eq!(r.cmd(&[b"RESTORE", b"from_redis", b"0", &rp]), Reply::ok());
        let restored_enc = encoding(&mut r, "from_redis");
        assert_eq!(
            encoding(&mut l, "from_redis"),
            restored_enc,
            "{name}: encoding after RESTORE"
        );

        // Libellule -> Redis.
        let lp = l.cmd(&[b"DUMP", b"k"]).as_bytes().to_vec();
        if same_bytes {
            assert_eq!(
                escape_bytes(&lp),
                escape_bytes(&rp),
                "{name}: payload bytes differ"
            );
        }
        let res = r.cmd(&[b"RESTORE", b"from_lib", b"0", &lp]);
        assert_eq!(res, Reply::ok(), "{name}: redis-server refused our payload");
        assert_eq!(value_of(&mut r, "from_lib"), want, "{name}: value in Redis");
        assert_eq!(
            encoding(&mut r, "from_lib"),
            restored_enc,
            "{name}: encoding in Redis"
        );
        // Libellule -> Libellule.
        let res = l.cmd(&[b"RESTORE", b"self", b"0", &lp]);
        assert_eq!(res, Reply::ok(), "{name}");
        assert_eq!(value_of(&mut l, "self"), want, "{name}");
        assert_eq!(encoding(&mut l, "self"), restored_enc, "{name}");
    }
}

#[test]
fn interop_io_threads_1() {
    interop("1");
}

#[test]
fn interop_io_threads_3() {
    interop("3");
}

/// RESTORE converts to the small encodings under this server's thresholds, like Redis's
/// loader, after CONFIG SET on both sides.
#[test]
fn restore_follows_thresholds() {
    with_pair("thresholds", "1", &[], |d, _| {
        d.script(
            "
            CONFIG SET zset-max-listpack-entries 1000
            CONFIG SET hash-max-listpack-entries 1000
            CONFIG SET set-max-intset-entries 1000
            ",
        );
        let mut setup = String::from("ZADD z");
        for i in 0..300 {
            setup.push_str(&format!(" {i} m{i}"));
        }
        d.line(&setup);
        let mut setup = String::from("HSET h");
        for i in 0..600 {
            setup.push_str(&format!(" f{i} {i}"));
        }
        d.line(&setup);
        let mut setup = String::from("SADD s");
        for i in 0..600 {
            setup.push_str(&format!(" {i}"));
        }
        d.line(&setup);
        d.script(
            "
            OBJECT ENCODING z
            OBJECT ENCODING h
            OBJECT ENCODING s
            ZADD big 1 a
            ZADD big 2 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
            OBJECT ENCODING big
            ",
        );
        // Payloads made under the large limits, restored under the defaults.
        let dumps: Vec<(String, Vec<u8>)> = ["z", "h", "s", "big"]
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    d.redis.cmd(&[b"DUMP", k.as_bytes()]).as_bytes().to_vec(),
                )
            })
            .collect();
        d.script(
            "
            CONFIG SET zset-max-listpack-entries 128
            CONFIG SET hash-max-listpack-entries 512
            CONFIG SET set-max-intset-entries 512
            ",
        );
        for (k, p) in &dumps {
            let nk = format!("{k}2");
            d.exec(&[
                b"RESTORE".to_vec(),
                nk.clone().into_bytes(),
                b"0".to_vec(),
                p.clone(),
            ]);
            d.line(&format!("OBJECT ENCODING {nk}"));
            d.line(&format!("ZCARD {nk}"));
        }
        // And the other way: a skiplist restored under large limits becomes a listpack.
        d.script(
            "
            CONFIG SET zset-max-listpack-entries 1000
            CONFIG SET zset-max-listpack-value 1000
            ",
        );
        for (k, p) in &dumps {
            let nk = format!("{k}3");
            d.exec(&[
                b"RESTORE".to_vec(),
                nk.clone().into_bytes(),
                b"0".to_vec(),
                p.clone(),
            ]);
            d.line(&format!("OBJECT ENCODING {nk}"));
        }
        // A restored skiplist (payload type 5) under large limits.
        d.script("CONFIG SET zset-max-listpack-entries 128");
        let z2 = d.redis.cmd(&[b"DUMP", b"z2"]).as_bytes().to_vec();
        d.script("CONFIG SET zset-max-listpack-entries 1000");
        d.exec(&[b"RESTORE".to_vec(), b"z4".to_vec(), b"0".to_vec(), z2]);
        d.line("OBJECT ENCODING z4");
    });
}

/// RESTORE's options, errors and TTL handling, compared with Redis.
#[test]
fn restore_options_and_errors() {
    for io in ["1", "3"] {
        with_pair("restore options", io, &[], |d, _| {
            d.script("SET src hello\nRPUSH lst a b c");
            let p = d.redis.cmd(&[b"DUMP", b"src"]).as_bytes().to_vec();
            let lp = d.redis.cmd(&[b"DUMP", b"lst"]).as_bytes().to_vec();
            let run = |d: &mut Diff, parts: &[&[u8]]| {
                let args: Vec<Vec<u8>> = parts.iter().map(|x| x.to_vec()).collect();
                d.exec(&args);
            };
            run(d, &[b"RESTORE", b"k", b"0", &p]);
            run(d, &[b"RESTORE", b"k", b"0", &p]);
            run(d, &[b"RESTORE", b"k", b"0", &p, b"REPLACE"]);
            run(d, &[b"RESTORE", b"k", b"-1", &p, b"REPLACE"]);
            run(d, &[b"RESTORE", b"k", b"abc", &p, b"REPLACE"]);
            run(d, &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"BOGUS"]);
            run(d, &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"IDLETIME"]);
            run(
                d,
                &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"IDLETIME", b"-1"],
            );
            run(
                d,
                &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"IDLETIME", b"x"],
            );
            run(
                d,
                &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"FREQ", b"256"],
            );
            run(
                d,
                &[
                    b"RESTORE",
                    b"k",
                    b"0",
                    &p,
                    b"REPLACE",
                    b"FREQ",
                    b"1",
                    b"IDLETIME",
                    b"5",
                ],
            );
            run(
                d,
                &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"IDLETIME", b"1"],
            );
            // (OBJECT IDLETIME is not compared: Libellule's LRU clock starts at the
            // server's start, so an idle time longer than the uptime is clamped.)
            assert!(d.lib.cmd(&[b"OBJECT", b"IDLETIME", b"k"]).as_int() <= 1);
            run(
                d,
                &[b"RESTORE", b"k", b"0", &p, b"REPLACE", b"FREQ", b"100"],
            );
            run(d, &[b"RESTORE", b"k", b"0", b"garbage"]);
            run(d, &[b"RESTORE", b"k2", b"0", b"short"]);
            run(d, &[b"RESTORE", b"k2", b"100000", &p]);
            d.line("PTTL k2");
            let pt = d.lib.cmd(&[b"PTTL", b"k2"]).as_int();
            assert!(pt > 99_000 && pt <= 100_000, "{pt}");
            run(d, &[b"RESTORE", b"k3", b"1", &p, b"ABSTTL"]);
            d.line("EXISTS k3");
            run(d, &[b"RESTORE", b"k", b"1", &p, b"ABSTTL", b"REPLACE"]);
            d.line("EXISTS k");
            run(d, &[b"RESTORE", b"k4", b"99999999999999", &p, b"ABSTTL"]);
            d.line("PEXPIRETIME k4");
            run(d, &[b"RESTORE", b"l2", b"0", &lp]);
            d.line("LRANGE l2 0 -1");
            d.line("DUMP nosuchkey");
            d.line("RESTORE");
            d.line("RESTORE a b");
            d.line("DUMP");
            // A wrong version, then a version this server cannot read.
            let body = &p[..p.len() - 10];
            run(d, &[b"RESTORE", b"v", b"0", &payload(body, 11)]);
            run(d, &[b"RESTORE", b"v", b"0", &payload(body, 9)]);
            d.line("GET v");
            // A bad checksum.
            let mut bad = p.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            run(d, &[b"RESTORE", b"v2", b"0", &bad]);
            // Type bytes this server does not know or support.
            run(d, &[b"RESTORE", b"v3", b"0", &payload(&[200, 1, b'a'], 10)]);
            run(d, &[b"RESTORE", b"v3", b"0", &payload(&[6, 1, b'a'], 10)]);
        });
    }
}

/// Keyspace event "restore".
#[test]
fn restore_notifies() {
    let lib = Server::start(&["--io_threads", "1"]);
    let mut c = RawConn::connect(lib.port);
    c.cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]);
    c.cmd(&[b"SET", b"src", b"v"]);
    let p = c.cmd(&[b"DUMP", b"src"]).as_bytes().to_vec();
    let mut sub = RawConn::connect(lib.port);
    sub.cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    assert_eq!(c.cmd(&[b"RESTORE", b"dst", b"0", &p]), Reply::ok());
    let ev = sub.read_reply();
    assert_eq!(
        ev,
        Reply::array(vec![
            Reply::bulk("pmessage"),
            Reply::bulk("__keyevent@0__:*"),
            Reply::bulk("__keyevent@0__:restore"),
            Reply::bulk("dst"),
        ])
    );
}

/// Corrupt payloads: every byte flipped (with a fixed checksum), every truncation, huge
/// lengths: an error or a value, never a crash; the server keeps answering.
#[test]
fn corrupt_payloads_never_crash() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let lib = Server::start(&["--io_threads", "1"]);
    let mut r = RawConn::connect(redis.port);
    let mut l = RawConn::connect(lib.port);
    r.cmd(&[b"RPUSH", b"list", b"a", b"1", b"hello", b"-70000"]);
    r.cmd(&[b"HSET", b"hash", b"f", b"v", b"g", b"12"]);
    r.cmd(&[b"ZADD", b"zset", b"1.5", b"a", b"2", b"b"]);
    r.cmd(&[b"SADD", b"intset", b"1", b"2", b"300"]);
    r.cmd(&[b"SADD", b"set", b"a", b"b"]);
    let aaa = vec![b'a'; 300];
    r.cmd(&[b"SET", b"lzf", &aaa]);
    r.cmd(&[b"ZADD", b"skip", b"1", &aaa, b"2", b"b"]);
    let mut tried = 0;
    for k in ["list", "hash", "zset", "intset", "set", "lzf", "skip"] {
        let p = r.cmd(&[b"DUMP", k.as_bytes()]).as_bytes().to_vec();
        let body = &p[..p.len() - 10];
        for i in 0..body.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = body.to_vec();
                b[i] ^= x;
                let res = l.cmd(&[b"RESTORE", b"t", b"0", &payload(&b, 10), b"REPLACE"]);
                assert!(
                    res == Reply::ok() || res == Reply::err("ERR Bad data format"),
                    "{k} byte {i}: {res:?}"
                );
                tried += 1;
            }
        }
        for n in 0..body.len() {
            let res = l.cmd(&[b"RESTORE", b"t", b"0", &payload(&body[..n], 10), b"REPLACE"]);
            assert_eq!(res, Reply::err("ERR Bad data format"), "{k} cut at {n}");
        }
        // Checksum not recomputed: refused before decoding.
        let mut b = p.clone();
        b[0] ^= 0x40;
        let res = l.cmd(&[b"RESTORE", b"t", b"0", &b, b"REPLACE"]);
        assert_eq!(
            res,
            Reply::err("ERR DUMP payload version or checksum are wrong")
        );
    }
    assert!(tried > 100);
    // Huge lengths: a list of 2^64-1 elements, a string of 4 GiB, a quicklist of 2^32
    // nodes, a zset, an LZF string claiming 1 TiB.
    let huge: Vec<Vec<u8>> = vec![
        vec![
            1, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, b'a',
        ],
        vec![0, 0x80, 0xff, 0xff, 0xff, 0xff, b'a'],
        vec![18, 0x80, 0xff, 0xff, 0xff, 0xff, 2, 1, b'a'],
        vec![5, 0x80, 0x10, 0, 0, 0, 1, b'a'],
        vec![0, 0xc3, 2, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, b'a'],
        vec![16, 0x80, 0x10, 0, 0, 0, 0xff],
    ];
    for b in &huge {
        let res = l.cmd(&[b"RESTORE", b"t", b"0", &payload(b, 10), b"REPLACE"]);
        assert_eq!(res, Reply::err("ERR Bad data format"), "{b:?}");
        // Redis agrees these are bad.
        let res = r.cmd(&[b"RESTORE", b"t", b"0", &payload(b, 10), b"REPLACE"]);
        assert!(res.is_error(), "redis accepted {b:?}");
    }
    assert_eq!(l.cmd(&[b"PING"]), Reply::simple("PONG"));
}
