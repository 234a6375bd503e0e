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
