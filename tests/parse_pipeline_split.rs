//! Property test of the request parser (`protocol::parse::Parser`): a valid pipeline of
//! random commands, multibulk and inline mixed, with random argument counts and binary
//! arguments, parses to exactly the commands it was built from, whether it arrives whole,
//! byte by byte, split at any single byte boundary, or in random chunks.
//!
//! The randomness is real: each run draws a fresh seed (printed on failure; set
//! `PIPELINE_SEED=<n>` to replay one) and checks `PIPELINE_CASES` pipelines (default
//! 400).

use libellule::protocol::parse::{Limits, Parser};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

type Cmd = Vec<Vec<u8>>;

/// A random argument: mostly short, sometimes binary with the bytes that matter to the
/// parser (CR, LF, NUL, quotes, backslash, `*`, `$`, spaces), sometimes long.
fn arg(rng: &mut SmallRng, inline: bool) -> Vec<u8> {
    let len = match rng.gen_range(0..20) {
        0 => 0,
        1 if !inline => rng.gen_range(1000..70_000),
        2 => rng.gen_range(60..300),
        _ => rng.gen_range(1..12),
    };
    let special = b"\r\n\0\"'\\*$ \t\x7f\xff";
    let mode = rng.gen_range(0..3);
    (0..len)
        .map(|_| match mode {
            0 => rng.gen_range(b'a'..=b'z'),
            1 => special[rng.gen_range(0..special.len())],
            _ => rng.gen(),
        })
        .collect()
}

/// The multibulk form of `cmd`.
fn multibulk(cmd: &Cmd, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
    for a in cmd {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The inline form of `cmd` (`sdssplitargs` syntax): plain words when they are safe,
/// otherwise double-quoted with `\xHH` escapes; ends with `\n` or `\r\n`.
fn inline(cmd: &Cmd, rng: &mut SmallRng, out: &mut Vec<u8>) {
    for (i, a) in cmd.iter().enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(b' ', rng.gen_range(1..3)));
        }
        let plain =
            !a.is_empty() && a.iter().all(|b| b.is_ascii_alphanumeric()) && rng.gen_bool(0.7);
        if plain {
            out.extend_from_slice(a);
            continue;
        }
        out.push(b'"');
        for &b in a {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' if rng.gen_bool(0.5) => out.extend_from_slice(b"\\n"),
                b'\r' if rng.gen_bool(0.5) => out.extend_from_slice(b"\\r"),
                b'\t' if rng.gen_bool(0.5) => out.extend_from_slice(b"\\t"),
                0x20..=0x7e => out.push(b),
                _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        out.push(b'"');
    }
    if rng.gen_bool(0.5) {
        out.push(b'\r');
    }
    out.push(b'\n');
}

/// A pipeline and the commands it holds (empty requests are not commands).
fn pipeline(rng: &mut SmallRng) -> (Vec<u8>, Vec<Cmd>) {
    let mut bytes = Vec::new();
    let mut cmds = Vec::new();
    for _ in 0..rng.gen_range(1..25) {
        match rng.gen_range(0..12) {
            // Empty requests the parser skips.
            0 => bytes.extend_from_slice(
                [&b"\r\n"[..], b"*0\r\n", b"*-1\r\n", b"  \n"][rng.gen_range(0..4)],
            ),
            1..=4 => {
                // Inline: the first argument must not start the line with `*`.
                let n = rng.gen_range(1..6);
                let mut cmd: Cmd = (0..n).map(|_| arg(rng, true)).collect();
                if cmd[0].first() == Some(&b'*') || cmd[0].is_empty() {
                    cmd[0] = b"PING".to_vec();
                }
                inline(&cmd, rng, &mut bytes);
                cmds.push(cmd);
            }
            _ => {
                let n = rng.gen_range(1..10);
                let cmd: Cmd = (0..n).map(|_| arg(rng, false)).collect();
                multibulk(&cmd, &mut bytes);
                cmds.push(cmd);
            }
        }
    }
    (bytes, cmds)
}

/// Feeds `input` in chunks ending at `cuts` the way the connection loop does (the
/// buffer grows, consumed bytes leave its front) and returns the non-empty commands.
fn parse_fed(input: &[u8], cuts: &[usize]) -> Vec<Cmd> {
    let mut p = Parser::new(Limits::default());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        while !buf.is_empty() {
            match p.parse(&buf) {
                Ok(Some(n)) => {
                    let args = p.args(&buf[..n]).to_vecs();
                    if !args.is_empty() {
                        out.push(args);
                    }
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => panic!("protocol error on a valid pipeline: {e}"),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left unparsed", buf.len());
    out
}

#[test]
fn any_split_of_a_valid_pipeline_parses_the_same() {
    let seed = std::env::var("PIPELINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().next_u64());
    let cases: usize = std::env::var("PIPELINE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut every_split_checked = 0;
    for case in 0..cases {
        let (bytes, cmds) = pipeline(&mut rng);
        let ctx = format!("PIPELINE_SEED={seed}, case {case}, {} bytes", bytes.len());
        assert_eq!(parse_fed(&bytes, &[]), cmds, "whole: {ctx}");
        // Byte by byte.
        let all: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(parse_fed(&bytes, &all), cmds, "byte by byte: {ctx}");
        // Random chunkings.
        for _ in 0..4 {
            let mut cuts = Vec::new();
            let mut at = 0;
            loop {
                at += rng.gen_range(1..64);
                if at >= bytes.len() {
                    break;
                }
                cuts.push(at);
            }
            assert_eq!(parse_fed(&bytes, &cuts), cmds, "cuts {cuts:?}: {ctx}");
        }
        // Every single split point, on the smaller pipelines.
        if bytes.len() <= 2000 {
            for k in 0..=bytes.len() {
                assert_eq!(parse_fed(&bytes, &[k]), cmds, "split at {k}: {ctx}");
            }
            every_split_checked += 1;
        }
    }
    assert!(every_split_checked > cases / 10, "{every_split_checked}");
}
