//! Conversions between Redis replies and Lua values, as Redis 7.0's `script_lua.c`
//! defines them.
//!
//! **Reply -> Lua** (what `redis.call` returns): the command writes its reply in RESP2
//! (or RESP3 after `redis.setresp(3)`), and [`reply_to_lua`] reads it back: integer ->
//! number, bulk -> string, null bulk/array -> `false` (RESP3 null -> `nil`), array ->
//! table, status -> `{ok=...}`, error -> `{err=...}`; RESP3 map -> `{map={...}}`, set ->
//! `{set={...}}`, double -> `{double=n}`, boolean -> boolean, big number ->
//! `{big_number=s}`, verbatim -> `{verbatim_string={format=, string=}}`.
//!
//! **Lua -> reply** (what the script returns): number -> integer (truncated), string ->
//! bulk, `true` -> 1 (RESP3: true), `false`/`nil` -> null (RESP3 false for false),
//! `{err=...}` -> error, `{ok=...}` -> status, RESP3 `{double=}`, `{map=}`, `{set=}`,
//! `{big_number=}`; other tables -> arrays stopping at the first nil.

use crate::protocol::reply::ReplyWriter;
use mlua::{Lua, Table, Value as LuaValue};

/// Deepest reply nesting read into Lua by [`reply_to_lua`] (what `redis.call` returns).
/// Redis 7.0 checks the Lua stack there too but panics when it is exhausted
/// (`serverPanic`); no command reply nests anywhere near this deep, so the bound only
/// matters for malformed input (the fuzz target), which gets an error instead.
const MAX_DEPTH: usize = 1000;

/// Reads one RESP reply from `buf[*pos..]` into a Lua value.
pub fn reply_to_lua(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<LuaValue> {
    read_value(lua, buf, pos, 0)
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> mlua::Result<&'a [u8]> {
    let start = *pos;
    let rel = buf[start..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *pos = start + rel + 2;
    Ok(&buf[start..start + rel])
}

fn num(s: &[u8]) -> mlua::Result<i64> {
    crate::protocol::reply::parse_i64(s)
        .ok_or_else(|| mlua::Error::RuntimeError("bad length in reply".into()))
}

fn err_table(lua: &Lua, field: &str, text: &[u8]) -> mlua::Result<LuaValue> {
    let t = lua.create_table()?;
    t.raw_set(field, lua.create_string(text)?)?;
    Ok(LuaValue::Table(t))
}

fn read_items(
    lua: &Lua,
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    depth: usize,
) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(n.min(1024), 0)?;
    for i in 1..=n {
        let v = read_value(lua, buf, pos, depth + 1)?;
        t.raw_set(i, v)?;
    }
    Ok(t)
}

fn read_value(lua: &Lua, buf: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<LuaValue> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError("reached lua stack limit".into()));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Err(mlua::Error::RuntimeError("truncated reply".into()));
    };
    *pos += 1;
    let l = line(buf, pos)?;
    Ok(match kind {
        b':' => LuaValue::Number(num(l)? as f64),
        b'$' | b'=' => {
            let n = num(l)?;
            if n < 0 {
                return Ok(LuaValue::Boolean(false));
            }
            // The payload and its CRLF must be there (a malformed reply is an error,
            // never an out-of-bounds read: found by the `lua_convert` fuzz target).
            let end = (*pos)
                .checked_add(n as usize)
                .filter(|&e| e.checked_add(2).is_some_and(|t| t <= buf.len()))
                .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
            let n = n as usize;
            let data = &buf[*pos..end];
            *pos = end + 2;
            if kind == b'=' {
                // Verbatim: "txt:" prefix.
                let t = lua.create_table()?;
                let inner = lua.create_table()?;
                inner.raw_set("format", lua.create_string(&data[..3.min(n)])?)?;
                inner.raw_set("string", lua.create_string(&data[4.min(n)..])?)?;
                t.raw_set("verbatim_string", inner)?;
                LuaValue::Table(t)
            } else {
                LuaValue::String(lua.create_string(data)?)
            }
        }
        b'+' => err_table(lua, "ok", l)?,
        b'-' => err_table(lua, "err", l)?,
        b'*' | b'>' => {
            let n = num(l)?;
            if n < 0 {
                return Ok(LuaValue::Boolean(false));
            }
            LuaValue::Table(read_items(lua, buf, pos, n as usize, depth)?)
        }
        b'~' => {
            let n = num(l)? as usize;
            let set = lua.create_table()?;
            for _ in 0..n {
                let v = read_value(lua, buf, pos, depth + 1)?;
                set.raw_set(v, true)?;
            }
            let t = lua.create_table()?;
            t.raw_set("set", set)?;
            LuaValue::Table(t)
        }
        b'%' => {
            let n = num(l)? as usize;
            let map = lua.create_table()?;
            for _ in 0..n {
                let k = read_value(lua, buf, pos, depth + 1)?;
                let v = read_value(lua, buf, pos, depth + 1)?;
                map.raw_set(k, v)?;
            }
            let t = lua.create_table()?;
            t.raw_set("map", map)?;
            LuaValue::Table(t)
        }
        b'_' => LuaValue::Nil,
        b'#' => LuaValue::Boolean(l == b"t"),
        b',' => {
            let v = crate::protocol::reply::parse_double(l).unwrap_or(f64::NAN);
            let t = lua.create_table()?;
            t.raw_set("double", v)?;
            LuaValue::Table(t)
        }
        b'(' => err_table(lua, "big_number", l)?,
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

/// Lua 5.1's `LUAI_MAXCSTACK`: `lua_checkstack` fails past this many slots.
const LUA_MAX_CSTACK: usize = 8000;
/// Stack slots in use when Redis 7.0 converts a script's return value (measured: with
/// 2, the limits below give exactly the depths redis-server 7.0.15 reaches).
const REPLY_BASE_SLOTS: usize = 2;
/// Slots `luaReplyToRedisReply` asks `lua_checkstack` for before converting a value.
const REPLY_CHECK_SLOTS: usize = 4;

/// Writes a script's return value as the reply, as Redis's `luaReplyToRedisReply`
/// does: `out` writes in the caller's protocol; booleans follow the script's own
/// protocol (`script_resp3`, set by `redis.setresp(3)`): RESP2 scripts return `true` as
/// 1 and `false` as a null. `depth` is the nesting level of `v` (0 for the script's
/// return value).
///
/// Nesting is bounded as in Redis 7.0, which converts recursively on the Lua stack and
/// checks `lua_checkstack(lua, 4)` before each value: an array element takes one more
/// stack slot than its array, a map key or value and a set member three more (the map
/// table, the key and its copy). A value that would need more than Lua 5.1's 8000 slots
/// is written as `-ERR reached lua stack limit` in its place, and its siblings are still
/// written: arrays nest 7995 deep, maps and sets 2665 (checked against redis-server
/// 7.0.15). The walk is iterative (an explicit stack), so deep replies cost heap, not
/// the executor thread's stack; the values waiting to be written are kept in a Lua
/// table, not as references held from Rust: mlua keeps each such reference in a slot
/// of an auxiliary Lua stack, which has the same 8000-slot limit (holding them cut
/// every reply at about 7990 elements).
pub fn lua_to_reply(
    lua: &Lua,
    out: &mut ReplyWriter,
    v: &LuaValue,
    script_resp3: bool,
    depth: usize,
) {
    let Ok(pending) = lua.create_table() else {
        out.error(b"ERR reached lua stack limit");
        return;
    };
    let mut w = Walk {
        pending,
        next: 0,
        work: Vec::new(),
    };
    w.value(out, v.clone(), REPLY_BASE_SLOTS + depth, script_resp3);
    while let Some((idx, slots)) = w.work.pop() {
        let v = w.pending.raw_get::<LuaValue>(idx).unwrap_or(LuaValue::Nil);
        let _ = w.pending.raw_set(idx, LuaValue::Nil);
        w.value(out, v, slots, script_resp3);
    }
}

/// The state of [`lua_to_reply`]: values waiting to be written, by index in `pending`
/// (a Lua table), with the stack slots Redis would use for them; last to write first.
struct Walk {
    pending: Table,
    next: i64,
    work: Vec<(i64, usize)>,
}

impl Walk {
    /// Stores `v` in the pending table; returns its index, `None` if Lua refused.
    fn stash(&mut self, v: LuaValue) -> Option<i64> {
        self.next += 1;
        self.pending.raw_set(self.next, v).ok().map(|_| self.next)
    }

    /// Schedules the stashed `items` (in order) at `slots`.
    fn schedule(&mut self, items: &[i64], slots: usize) {
        self.work.extend(items.iter().rev().map(|&i| (i, slots)));
    }

    fn value(&mut self, out: &mut ReplyWriter, v: LuaValue, slots: usize, script_resp3: bool) {
        if slots + REPLY_CHECK_SLOTS > LUA_MAX_CSTACK {
            out.error(b"ERR reached lua stack limit");
            return;
        }
        match v {
            LuaValue::Nil => out.null(),
            LuaValue::Boolean(b) => {
                if script_resp3 {
                    out.boolean(b);
                } else if b {
                    out.int(1);
                } else {
                    out.null();
                }
            }
            LuaValue::Integer(i) => out.int(i),
            LuaValue::Number(n) => out.int(n as i64),
            LuaValue::String(s) => out.bulk(&s.as_bytes()),
            LuaValue::Table(t) => self.table(out, &t, slots),
            _ => out.null(),
        }
    }

    /// Writes a table's own reply (error, status, double, big number, verbatim) or the
    /// header of its map, set or array, and schedules its elements.
    fn table(&mut self, out: &mut ReplyWriter, t: &Table, slots: usize) {
        if let Ok(LuaValue::String(e)) = t.raw_get::<LuaValue>("err") {
            let bytes = e.as_bytes().to_vec();
            let msg = bytes.strip_prefix(b"-").unwrap_or(&bytes);
            out.error(msg);
            return;
        }
        if let Ok(LuaValue::String(s)) = t.raw_get::<LuaValue>("ok") {
            let bytes = s.as_bytes().to_vec();
            out.simple(&bytes);
            return;
        }
        // The RESP3 forms; in RESP2 the writer turns them into bulk strings and arrays.
        match t.raw_get::<LuaValue>("double") {
            Ok(LuaValue::Number(d)) => return out.double(d),
            Ok(LuaValue::Integer(d)) => return out.double(d as f64),
            _ => {}
        }
        if let Ok(LuaValue::String(s)) = t.raw_get::<LuaValue>("big_number") {
            out.big_number(&s.as_bytes());
            return;
        }
        if let Ok(LuaValue::Table(v)) = t.raw_get::<LuaValue>("verbatim_string") {
            if let (Ok(LuaValue::String(f)), Ok(LuaValue::String(s))) = (
                v.raw_get::<LuaValue>("format"),
                v.raw_get::<LuaValue>("string"),
            ) {
                out.verbatim_with(&f.as_bytes(), &s.as_bytes());
                return;
            }
        }
        if let Ok(LuaValue::Table(m)) = t.raw_get::<LuaValue>("map") {
            let mut items = Vec::new();
            for (k, v) in m.pairs::<LuaValue, LuaValue>().flatten() {
                if let (Some(k), Some(v)) = (self.stash(k), self.stash(v)) {
                    items.extend([k, v]);
                }
            }
            out.map(items.len() / 2);
            self.schedule(&items, slots + 3);
            return;
        }
        if let Ok(LuaValue::Table(s)) = t.raw_get::<LuaValue>("set") {
            let mut items = Vec::new();
            for (k, _) in s.pairs::<LuaValue, LuaValue>().flatten() {
                items.extend(self.stash(k));
            }
            out.set(items.len());
            self.schedule(&items, slots + 3);
            return;
        }
        let mut items = Vec::new();
        let mut i = 1;
        loop {
            match t.raw_get::<LuaValue>(i) {
                Ok(LuaValue::Nil) | Err(_) => break,
                Ok(v) => items.extend(self.stash(v)),
            }
            i += 1;
        }
        out.array(items.len());
        self.schedule(&items, slots + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regressions from the `lua_convert` fuzz target (docs/reliability.md): a bulk or
    /// verbatim reply whose payload or CRLF is missing is an error, and the read
    /// position never passes the end of the reply.
    #[test]
    fn truncated_bulks_are_errors() {
        let lua = Lua::new();
        for input in [
            &b"=15\r\ntxt:helo world\r\n"[..], // minimised crash: one byte short
            b"$5\r\nabc\r\n",
            b"$9223372036854775807\r\nab\r\n",
            b"*2\r\n$1\r\na\r\n$3\r\nab",
            b"=3\r\ntx",
        ] {
            let mut pos = 0;
            assert!(reply_to_lua(&lua, input, &mut pos).is_err(), "{input:?}");
            assert!(pos <= input.len());
        }
        let mut pos = 0;
        let v = reply_to_lua(&lua, b"=15\r\ntxt:hello world\r\n", &mut pos).unwrap();
        assert_eq!(pos, 22);
        assert!(matches!(v, LuaValue::Table(_)));
    }
}
