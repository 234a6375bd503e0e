//! Shared drivers of the fuzz targets (see `docs/reliability.md`, "Fuzzing").
//!
//! Every driver checks properties as well as "no panic": the request parser gives the
//! same requests whole and fed in pieces, and a value that decodes re-encodes to a
//! payload that decodes to the same value.

use libellule::protocol::parse::{Limits, Parser};
use libellule::storage::rdb::{self, LoadLimits};
use libellule::storage::{hash, zset, Value};

/// One parse outcome: the requests, then the error text that stopped parsing, if any.
pub type Outcome = (Vec<Vec<Vec<u8>>>, Option<String>);

/// Parses `input` whole, as the connection loop does when it all arrived at once.
pub fn parse_whole(input: &[u8], limits: &Limits) -> Outcome {
    let mut p = Parser::new(limits.clone());
    let mut off = 0;
    let mut out = Vec::new();
    loop {
        match p.parse(&input[off..]) {
            Ok(Some(n)) => {
                assert!(n > 0, "a request consumed no byte");
                out.push(p.args(&input[off..off + n]).to_vecs());
                off += n;
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.message().to_string())),
        }
    }
}

/// Parses `input` fed in pieces ending at `cuts` (ascending), dropping consumed bytes
/// from the front of the buffer like the connection loop.
pub fn parse_chunked(input: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut p = Parser::new(limits.clone());
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        let end = end.clamp(fed, input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match p.parse(&buf) {
                Ok(Some(n)) => {
                    out.push(p.args(&buf[..n]).to_vecs());
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e.message().to_string())),
            }
        }
    }
    (out, None)
}

/// The request parser on `data`: whole and split at cut points derived from the data
/// must agree. `small` selects tight limits (so that the "too big" paths are reached).
pub fn check_parser(data: &[u8], small: bool) {
    let limits = if small {
        Limits {
            proto_max_bulk_len: 64,
            max_multibulk_len: 16,
            inline_max: 48,
        }
    } else {
        Limits::default()
    };
    let whole = parse_whole(data, &limits);
    let agree = |got: Outcome, how: &str| {
        // The "too big" errors depend on what has arrived (Redis raises them only while
        // no terminator is in the buffer), so with one on either side only the requests
        // before it must agree.
        let arrival = |o: &Outcome| o.1.as_deref().is_some_and(|e| e.contains("too big"));
        if arrival(&got) || arrival(&whole) {
            let n = got.0.len().min(whole.0.len());
            assert_eq!(got.0[..n], whole.0[..n], "{how}");
        } else {
            assert_eq!(got, whole, "{how}");
        }
    };
    // Cut points from the data itself: deterministic per input.
    let mut cuts = Vec::new();
    let mut at = 0usize;
    for &b in data.iter().take(64) {
        at += 1 + (b as usize % 7);
        if at >= data.len() {
            break;
        }
        cuts.push(at);
    }
    agree(
        parse_chunked(data, &cuts, &limits),
        "split at the cut points",
    );
    let every: Vec<usize> = (1..data.len().min(256)).collect();
    agree(parse_chunked(data, &every, &limits), "byte by byte");
}

/// Loader limits picked by one byte: the defaults, or tiny thresholds that make the
/// loader convert encodings.
pub fn limits_from(b: u8) -> LoadLimits {
    if b & 1 == 0 {
        LoadLimits::default()
    } else {
        LoadLimits {
            hash: hash::Limits {
                max_entries: ((b >> 1) & 7) as usize,
                max_value: (b >> 4) as usize,
            },
            zset: zset::Limits {
                max_entries: ((b >> 1) & 7) as usize,
                max_value: (b >> 4) as usize,
            },
            max_intset: (b >> 2) as usize,
            list_fill: -((b >> 5) as i64 % 5 + 1),
        }
    }
}

/// A decoded value must re-encode (with and without compression) to a payload that
/// decodes to an equal value of the same encoding.
pub fn check_round_trip(v: &Value, lim: &LoadLimits) {
    for compress in [false, true] {
        let p = rdb::dump_payload(v, compress);
        let body = rdb::verify_payload(&p, false).expect("own payload verifies");
        let back = rdb::load_payload(body, lim).expect("own payload loads");
        assert!(back == *v, "round trip changed the value");
        assert_eq!(
            back.encoding(),
            v.encoding(),
            "round trip changed the encoding"
        );
    }
}

/// One loaded key: database, key, value, expiry (Unix ms, 0 = none), idle, LFU counter.
pub type Loaded = (usize, Vec<u8>, Value, u64, Option<u64>, Option<u8>);

/// Databases of the server the loader is checked against (`--databases` default).
const DATABASES: u64 = 16;

/// Loads a snapshot file held in memory the way `persistence::loader::load` streams one:
/// the unparsed part of the file is a window of at least `chunk` bytes, grown (by at
/// least what it holds) whenever the header or an item does not parse from it, and a
/// parse error is final only once the window reaches the end of the file. Returns the
/// keys, or the file offset of the failing item and the error.
pub fn load_snapshot(
    file: &[u8],
    lim: &LoadLimits,
    chunk: usize,
) -> Result<Vec<Loaded>, (usize, String)> {
    use libellule::persistence::file::{self, Item};
    use libellule::storage::rdb::crc64::crc64;
    let chunk = chunk.max(1);
    // The window is file[pos..end]; bytes before pos are consumed (in the checksum).
    let (mut pos, mut end) = (0usize, chunk.min(file.len()));
    let grow = |pos: usize, end: usize| (end + chunk.max(end - pos)).min(file.len());
    let version = loop {
        let mut r = rdb::Reader::new(&file[pos..end]);
        match file::parse_header(&mut r) {
            Ok(v) => {
                pos += r.pos();
                break v;
            }
            Err(e) if end == file.len() || end - pos >= file::HEADER_LEN => {
                return Err((0, e.to_string()))
            }
            Err(_) => end = grow(pos, end),
        }
    };
    let mut db = 0usize;
    let mut keys = Vec::new();
    loop {
        let (item, n) = loop {
            let mut r = rdb::Reader::new(&file[pos..end]);
            match file::parse_item(&mut r, lim) {
                Ok(item) => {
                    let n = r.pos();
                    assert!(n > 0 && n <= end - pos, "an item consumed {n} bytes");
                    break (item, n);
                }
                Err(e) if end == file.len() => return Err((pos, e.to_string())),
                Err(_) => end = grow(pos, end),
            }
        };
        let at = pos;
        pos += n;
        match item {
            Item::Aux(..) | Item::ResizeDb(..) => {}
            Item::SelectDb(i) => {
                if i >= DATABASES {
                    return Err((at, format!("database {i}")));
                }
                db = i as usize;
            }
            Item::Key {
                key,
                value,
                expire_at,
                idle,
                freq,
            } => keys.push((db, key, value, expire_at, idle, freq)),
            Item::Eof => break,
        }
    }
    if version >= 5 {
        if file.len() - pos < 8 {
            return Err((pos, "the CRC64 checksum is missing".into()));
        }
        let expect = crc64(0, &file[..pos]);
        let got = u64::from_le_bytes(file[pos..pos + 8].try_into().expect("8 bytes"));
        if got != 0 && got != expect {
            return Err((pos, "wrong checksum".into()));
        }
    }
    Ok(keys)
}

/// Writes keys with the snapshot writer's framing (header, SELECTDB when the database
/// changes, entries, EOF, CRC64).
pub fn write_snapshot(keys: &[Loaded], compress: bool) -> Vec<u8> {
    use libellule::persistence::file::{self, AuxInfo, Recency};
    use libellule::storage::rdb::crc64::crc64;
    use libellule::storage::entry::Node;
    let mut out = file::header(&AuxInfo {
        ctime: 1_700_000_000,
        used_mem: 1,
    });
    let mut cur = usize::MAX;
    for (db, key, value, expire_at, _, _) in keys {
        if *db != cur {
            file::select_db(&mut out, *db);
            cur = *db;
        }
        let node = Node::new(key, value.clone(), *expire_at, 0, 0);
        assert!(file::write_entry(
            &mut out,
            key,
            node.entry(),
            compress,
            Recency::None
        ));
    }
    out.extend_from_slice(&file::trailer());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The snapshot loader on `file`: streamed through a window picked by `b` and parsed
/// whole must agree; a file that loads must write and reload to the same keys.
pub fn check_snapshot(file: &[u8], b: u8) {
    let lim = limits_from(b);
    let whole = load_snapshot(file, &lim, usize::MAX);
    let chunk = 1 + (b as usize >> 1) % 64;
    let streamed = load_snapshot(file, &lim, chunk);
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert!(a == b, "streamed and whole loads differ"),
        (Err(a), Err(b)) => assert_eq!(a, b, "streamed and whole loads fail differently"),
        _ => panic!(
            "streamed: {:?}, whole: {:?}",
            streamed.is_ok(),
            whole.is_ok()
        ),
    }
    if let Ok(keys) = whole {
        for compress in [false, true] {
            let again = write_snapshot(&keys, compress);
            let back = load_snapshot(&again, &lim, usize::MAX).expect("own snapshot loads");
            assert_eq!(back.len(), keys.len());
            for (x, y) in back.iter().zip(&keys) {
                assert!(
                    x.0 == y.0 && x.1 == y.1 && x.2 == y.2 && x.3 == y.3,
                    "a key changed through write and reload"
                );
                assert_eq!(x.2.encoding(), y.2.encoding(), "encoding changed");
            }
        }
    }
}
