//! SORT and SORT_RO: sort the elements of a list, set or sorted set, numerically or
//! lexicographically, directly or by the values of other keys (`BY pattern`, with `*`
//! replaced by the element and `->field` reading a hash field), returning elements or the
//! values of other keys (`GET pattern`, `GET #`), with LIMIT, ASC/DESC, ALPHA and
//! STORE (SORT only). Behaviour, ordering and errors follow Redis 7.0's `sort.c`,
//! including its quirks: a sorted set is converted to the skiplist encoding by SORT, a
//! `BY` pattern without `*` means "don't sort", `GET` of a pattern without `*` gives nil,
//! and with STORE a set is sorted alphabetically when there is nothing to sort by.
//!
//! Sharding: SORT's keys are the sorted key and the STORE destination (as Redis's
//! `sortGetKeys` finds them), so a destination on another shard goes through a
//! coordinator that sorts on the source shard and stores on the destination shard. The
//! keys that BY and GET patterns form are read on the sorted key's shard; with more than
//! one shard, a pattern is accepted only when it has a hash tag before its first
//! wildcard that puts its keys on that shard (like Redis Cluster, which refuses BY/GET
//! patterns outright), otherwise SORT answers
//! `ERR BY option of SORT denied when keys formed by the pattern may be on another shard`
//! (or `GET option ...`); `GET #` and patterns without `*` form no key and are always
//! accepted. With one shard (`--io_threads 1`) every pattern works.

use crate::commands::keys::lookup_read;
use crate::commands::{
    eq_ic, flags, parse_int, AsyncCtx, CommandSpec, Ctx, Handler, ReplyFuture, NOT_INT, SYNTAX_ERR,
    WRONGTYPE,
};
use crate::protocol::parse::{Args, OwnedArgs};
use crate::shard::{key_shard, now_ms, ShardData};
use crate::storage::list::End;
use crate::storage::{List, Value};
use std::cmp::Ordering;

/// SORT and SORT_RO, as Redis 7.0's COMMAND INFO describes them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "sort",
        -2,
        flags::WRITE | flags::DENYOOM,
        (1, 1, 1),
        "@write @set @sortedset @list @slow @dangerous",
        Handler::Keyed {
            run: sort,
            cross: Some(sort_cross),
        },
    )
    .with_keys_fn(sort_keys),
    CommandSpec::new(
        "sort_ro",
        -2,
        flags::READONLY,
        (1, 1, 1),
        "@read @set @sortedset @list @slow @dangerous",
        Handler::Keyed {
            run: sort_ro,
            cross: None,
        },
    )
    .with_keys_fn(sort_ro_keys),
];

/// SORT_RO's only key is the sorted one (Redis still flags it `movablekeys`).
fn sort_ro_keys<'a>(argc: usize, _arg: &dyn Fn(usize) -> &'a [u8], f: &mut dyn FnMut(usize)) {
    if argc >= 2 {
        f(1);
    }
}

/// Redis's `sortGetKeys`: the sorted key, and the destination of the last STORE.
fn sort_keys<'a>(argc: usize, arg: &dyn Fn(usize) -> &'a [u8], f: &mut dyn FnMut(usize)) {
    if argc < 2 {
        return;
    }
    f(1);
    let mut store = None;
    let mut i = 2;
    while i < argc {
        let a = arg(i);
        if eq_ic(a, "limit") {
            i += 2;
        } else if eq_ic(a, "get") || eq_ic(a, "by") {
            i += 1;
        } else if eq_ic(a, "store") && i + 1 < argc {
            store = Some(i + 1);
        }
        i += 1;
    }
    if let Some(s) = store {
        f(s);
    }
}

/// Parsed options.
#[derive(Clone, Debug, Default)]
struct Opts {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Vec<u8>>,
    by: Option<Vec<u8>>,
    dontsort: bool,
    gets: Vec<Vec<u8>>,
}

/// The shard the keys formed by `pattern` live on, when a hash tag before its first
/// wildcard decides it (Redis's `patternHashSlot`).
fn pattern_shard(pattern: &[u8], nshards: usize) -> Option<usize> {
    let mut open: Option<usize> = None;
    for (i, &c) in pattern.iter().enumerate() {
        match c {
            b'*' | b'?' | b'[' | b'\\' => return None,
            b'{' if open.is_none() => open = Some(i),
            b'}' if open.is_some() => {
                let s = open.unwrap_or(0);
                if i == s + 1 {
                    return None;
                }
                return Some(key_shard(&pattern[..=i], nshards));
            }
            _ => {}
        }
    }
    None
}

/// Parses the options (Redis's order of checks: the first bad option answers).
/// `home` is (shard of the sorted key, shard count).
fn parse(args: &Args, readonly: bool, home: (usize, usize)) -> Result<Opts, Vec<u8>> {
    let mut o = Opts {
        limit_count: -1,
        ..Opts::default()
    };
    let (key_shard_id, nshards) = home;
    let on_home = |p: &[u8]| nshards <= 1 || pattern_shard(p, nshards) == Some(key_shard_id);
    let mut j = 2;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            let (Some(s), Some(c)) = (parse_int(args.get(j + 1)), parse_int(args.get(j + 2)))
            else {
                return Err(NOT_INT.to_vec());
            };
            o.limit_start = s;
            o.limit_count = c;
            j += 2;
        } else if !readonly && eq_ic(a, "store") && left >= 1 {
            o.store = Some(args.get(j + 1).to_vec());
            j += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let p = args.get(j + 1);
            if !p.contains(&b'*') {
                o.dontsort = true;
            } else if !on_home(p) {
                return Err(b"ERR BY option of SORT denied when keys formed by the pattern may be on another shard".to_vec());
            }
            o.by = Some(p.to_vec());
            j += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            let p = args.get(j + 1);
            // A pattern without `*` forms no key (its GET is always nil).
            if p.contains(&b'*') && !on_home(p) {
                return Err(b"ERR GET option of SORT denied when keys formed by the pattern may be on another shard".to_vec());
            }
            o.gets.push(p.to_vec());
            j += 1;
        } else {
            return Err(SYNTAX_ERR.to_vec());
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `lookupKeyByPattern`: the string (or hash field) that `pattern` names for
/// element `subst`; `None` when missing or of another type.
fn lookup_pattern(
    d: &mut ShardData,
    db: usize,
    pattern: &[u8],
    subst: &[u8],
    now: u64,
) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(subst.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let rest = &pattern[star + 1..];
    let field = rest
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < rest.len());
    let (post, field) = match field {
        Some(f) => (&rest[..f], Some(&rest[f + 2..])),
        None => (rest, None),
    };
    let mut key = Vec::with_capacity(star + subst.len() + post.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(post);
    let e = lookup_read(d, db, &key, now)?;
    match field {
        Some(f) => e.as_hash().and_then(|h| h.get(f).map(|v| v.to_vec())),
        None => e.value().with_str(|s| s.to_vec()),
    }
}

/// C `strtod` over a whole C string as SORT uses it: `None` when it does not convert
/// entirely, overflows or underflows (`ERANGE`), or is NaN. An empty string is 0.
fn strtod_full(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    if s.is_empty() {
        return Some(0.0);
    }
    let t = {
        let start = s
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
        &s[start..]
    };
    let text = std::str::from_utf8(t).ok()?;
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let v = if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        let digits = &body[2..];
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut v = 0f64;
        for c in digits.bytes() {
            v = v * 16.0 + (c as char).to_digit(16).unwrap_or(0) as f64;
        }
        v
    } else {
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            f64::INFINITY
        } else if lower.starts_with("nan") || lower.starts_with('i') {
            return None;
        } else {
            if !body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return None;
            }
            let v: f64 = body.parse().ok()?;
            if v.is_infinite() {
                return None;
            }
            let mantissa = body.split(['e', 'E']).next().unwrap_or("");
            if (v == 0.0 && mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')))
                || (v != 0.0 && v.abs() < f64::MIN_POSITIVE)
            {
                return None;
            }
            v
        }
    };
    Some(if neg { -v } else { v })
}

/// One element being sorted.
struct Item {
    elem: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

/// The sort itself on the sorted key's shard: the output elements (with GET patterns,
/// `gets.len()` values per element, `None` for a missing one), or an error reply.
fn compute(
    d: &mut ShardData,
    db: usize,
    key: &[u8],
    o: &Opts,
) -> Result<Vec<Option<Vec<u8>>>, Vec<u8>> {
    let now = now_ms();
    let (mut dontsort, mut alpha, mut by) = (o.dontsort, o.alpha, o.by.as_deref());
    let desc = o.desc;
    // Load the elements.
    enum Kind {
        List,
        Set,
        ZSet,
    }
    let mut kind = Kind::List;
    let mut all: Vec<Vec<u8>> = Vec::new();
    let mut zpairs: Vec<Vec<u8>> = Vec::new();
    if let Some(e) = lookup_read(d, db, key, now) {
        match e.value_mut() {
            Some(Value::List(l)) => all = l.iter().map(|x| x.to_vec()).collect(),
            Some(Value::Set(s)) => {
                kind = Kind::Set;
                all = s.iter().map(|m| m.to_vec()).collect();
            }
            Some(Value::ZSet(z)) => {
                kind = Kind::ZSet;
                z.convert_to_skiplist();
                zpairs = z.iter().map(|(m, _)| m.to_vec()).collect();
            }
            _ => return Err(WRONGTYPE.to_vec()),
        }
    }
    if dontsort && matches!(kind, Kind::Set) && o.store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let vectorlen_full = match kind {
        Kind::ZSet => zpairs.len(),
        _ => all.len(),
    } as i64;
    let mut vectorlen = vectorlen_full;
    let mut start = o.limit_start.max(0).min(vectorlen);
    let limit_count = o.limit_count.max(-1).min(vectorlen);
    let mut end = if limit_count < 0 {
        vectorlen - 1
    } else {
        start + limit_count - 1
    };
    if start >= vectorlen {
        start = vectorlen - 1;
        end = vectorlen - 2;
    }
    if end >= vectorlen {
        end = vectorlen - 1;
    }
    let ordered = matches!(kind, Kind::List | Kind::ZSet);
    if ordered && dontsort && (start != 0 || end != vectorlen - 1) {
        vectorlen = end - start + 1;
    }
    let mut items: Vec<Item> = Vec::new();
    let mk = |elem: Vec<u8>| Item {
        elem,
        score: 0.0,
        cmp: None,
    };
    if ordered && dontsort {
        let src = if matches!(kind, Kind::ZSet) {
            std::mem::take(&mut zpairs)
        } else {
            std::mem::take(&mut all)
        };
        if end >= start || matches!(kind, Kind::ZSet) {
            let take = vectorlen.max(0) as usize;
            if desc {
                let first = (vectorlen_full - start - 1).max(-1);
                let mut i = first;
                while items.len() < take && i >= 0 {
                    items.push(mk(src[i as usize].clone()));
                    i -= 1;
                }
            } else {
                items.extend(
                    src.into_iter()
                        .skip(start.max(0) as usize)
                        .take(take)
                        .map(mk),
                );
            }
            end -= start;
            start = 0;
        }
    } else {
        let src = if matches!(kind, Kind::ZSet) {
            zpairs
        } else {
            all
        };
        items = src.into_iter().map(mk).collect();
    }
    let mut conversion_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval: Option<Vec<u8>> = match by {
                Some(p) => match lookup_pattern(d, db, p, &it.elem, now) {
                    Some(v) => Some(v),
                    None => continue,
                },
                None => None,
            };
            if alpha {
                if by.is_some() {
                    it.cmp = byval;
                }
            } else {
                let s = byval.as_deref().unwrap_or(&it.elem);
                match strtod_full(s) {
                    Some(v) => it.score = v,
                    None => {
                        conversion_error = true;
                        it.score = 0.0;
                    }
                }
            }
        }
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.elem.cmp(&b.elem)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    if conversion_error {
        return Err(b"ERR One or more scores can't be converted into double".to_vec());
    }
    let mut out = Vec::new();
    if end >= start {
        for it in &items[start as usize..=end as usize] {
            if o.gets.is_empty() {
                out.push(Some(it.elem.clone()));
            } else {
                for g in &o.gets {
                    out.push(lookup_pattern(d, db, g, &it.elem, now));
                }
            }
        }
    }
    Ok(out)
}

/// Writes the STORE result: a list of the values (missing ones as empty strings), or
/// deletes the destination when there is none. Returns the count.
fn store(d: &mut ShardData, db: usize, dst: &[u8], values: Vec<Option<Vec<u8>>>) -> i64 {
    let now = now_ms();
    let n = values.len() as i64;
    if values.is_empty() {
        if d.dbs[db].remove(dst, now).is_some() {
            d.modified(db, dst, b'g', "del");
        }
        return 0;
    }
    let fill = crate::commands::lists::fill(d);
    let mut l = List::new();
    for v in &values {
        l.push(End::Right, v.as_deref().unwrap_or(b""), fill);
    }
    d.dbs[db].set(dst, Value::List(Box::new(l)), 0);
    d.signal_key_ready(db, dst);
    d.modified(db, dst, b'l', "sortstore");
    n
}

/// Runs SORT or SORT_RO on the shard owning every key.
fn run(ctx: &mut Ctx, args: Args, readonly: bool) {
    let key = args.get(1);
    let home = (key_shard(key, ctx.shard.nshards), ctx.shard.nshards);
    let o = match parse(&args, readonly, home) {
        Ok(o) => o,
        Err(m) => return ctx.out.error(&m),
    };
    let values = match compute(ctx.shard, ctx.db, key, &o) {
        Ok(v) => v,
        Err(m) => return ctx.out.error(&m),
    };
    if let Some(dst) = &o.store {
        let n = store(ctx.shard, ctx.db, dst, values);
        return ctx.out.int(n);
    }
    ctx.out.array(values.len());
    for v in &values {
        match v {
            Some(b) => ctx.out.bulk(b),
            None => ctx.out.null(),
        }
    }
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]`
fn sort(ctx: &mut Ctx, args: Args) {
    run(ctx, args, false)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`
fn sort_ro(ctx: &mut Ctx, args: Args) {
    run(ctx, args, true)
}

/// SORT ... STORE with the destination on another shard: sorts on the source shard and
/// stores on the destination shard, under the locks of both keys.
fn sort_cross(ctx: AsyncCtx, args: OwnedArgs) -> ReplyFuture {
    Box::pin(async move {
        let a = args.view();
        let db = ctx.client.db;
        let key = a.get(1).to_vec();
        let n = ctx.shards.n;
        let src_shard = ctx.shards.owner(&key);
        let mut buf = Vec::new();
        let o = match parse(&a, false, (key_shard(&key, n), n)) {
            Ok(o) => o,
            Err(m) => {
                ctx.writer(&mut buf).error(&m);
                return buf;
            }
        };
        let Some(dst) = o.store.clone() else {
            // Only a STORE destination can put a second key on another shard.
            ctx.writer(&mut buf).error(SYNTAX_ERR);
            return buf;
        };
        let dst_shard = ctx.shards.owner(&dst);
        let groups = ctx.shards.group_keys(db, [&key[..], &dst[..]]);
        ctx.lock(&groups).await;
        let o2 = o.clone();
        let res = ctx
            .shards
            .run_on(src_shard, move |d| compute(d, db, &key, &o2))
            .await;
        let reply = match res {
            Err(m) => {
                ctx.writer(&mut buf).error(&m);
                buf
            }
            Ok(values) => {
                let n = ctx
                    .shards
                    .run_on(dst_shard, move |d| store(d, db, &dst, values))
                    .await;
                ctx.writer(&mut buf).int(n);
                buf
            }
        };
        ctx.unlock(&groups).await;
        reply
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_c() {
        assert_eq!(strtod_full(b"1.5"), Some(1.5));
        assert_eq!(strtod_full(b"  -3"), Some(-3.0));
        assert_eq!(strtod_full(b""), Some(0.0));
        assert_eq!(strtod_full(b"0x10"), Some(16.0));
        assert_eq!(strtod_full(b"inf"), Some(f64::INFINITY));
        assert_eq!(strtod_full(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod_full(b"nan"), None);
        assert_eq!(strtod_full(b"1e400"), None);
        assert_eq!(strtod_full(b"1e-400"), None);
        assert_eq!(strtod_full(b"abc"), None);
        assert_eq!(strtod_full(b"1 "), None);
        assert_eq!(strtod_full(b" "), None);
        assert_eq!(strtod_full(b"5\0junk"), Some(5.0));
    }

    #[test]
    fn keys_of_sort() {
        let args: Vec<&[u8]> = vec![
            b"sort", b"k", b"limit", b"0", b"1", b"by", b"store", b"STORE", b"d",
        ];
        let mut got = Vec::new();
        sort_keys(args.len(), &|i| args[i], &mut |i| got.push(i));
        assert_eq!(got, vec![1, 8]);
    }
}
