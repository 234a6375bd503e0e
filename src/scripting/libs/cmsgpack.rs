//! `cmsgpack`: lua-cmsgpack 0.4.0 as bundled with Redis, MessagePack for Lua values.
//!
//! Encoding rules (as the C code):
//! - a number that is an exact 64-bit integer packs as the smallest integer format
//!   (positive/negative fixint, uint/int 8-64); any other number packs as float 32 when
//!   converting it to float loses nothing, else as float 64;
//! - a string packs as fixstr, str 8, str 16 or str 32 by length;
//! - a table whose keys are exactly the integers 1..n packs as an array, any other table
//!   as a map; tables nested 16 deep pack as nil (which also stops cycles);
//! - booleans pack as true/false, and everything else (nil, functions, userdata) as nil.
//!
//! Decoding accepts the formats above plus bin-less raw strings; extension types and
//! 0xc1 are a "Bad data format". Maps decode to tables, arrays to sequences.

use std::ffi::c_int;

use mlua::ffi;

use super::{
    c_f64_to_i32, c_f64_to_i64, check_bytes, check_integer, check_stack, lua_fn, opt_integer,
    push_bytes, LResult, Raise,
};

/// Tables nested this deep are encoded as nil.
const MAX_NESTING: u32 = 16;

/// Appends a string header and the bytes.
#[inline(never)]
fn encode_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

/// Appends a float 32 if `d` survives the round trip through `f32`, else a float 64.
#[inline(never)]
fn encode_double(buf: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if d == f as f64 {
        buf.push(0xca);
        buf.extend_from_slice(&f.to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

/// Appends the smallest integer encoding of `n`.
#[inline(never)]
fn encode_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an array (`fix`, 16, 32) or map header.
#[inline(never)]
fn encode_header(buf: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Whether the table on the top of the stack has exactly the keys 1..n (n may be 0).
#[inline(never)]
unsafe fn is_array(l: *mut ffi::lua_State) -> LResult<bool> {
    check_stack(l, 2, "in function table_is_an_array")?;
    let top = ffi::lua_gettop(l);
    let (mut count, mut max) = (0i32, 0i32);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        ffi::lua_settop(l, -2);
        let n = ffi::lua_tonumber(l, -1);
        if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER || n <= 0.0 || c_f64_to_i32(n) as f64 != n {
            ffi::lua_settop(l, top);
            return Ok(false);
        }
        if n > max as f64 {
            max = n as i32;
        }
        count += 1;
    }
    ffi::lua_settop(l, top);
    Ok(max == count)
}

/// Encodes the value on the top of the stack and pops it.
unsafe fn encode_value(l: *mut ffi::lua_State, buf: &mut Vec<u8>, level: u32) -> LResult<()> {
    let mut t = ffi::lua_type(l, -1);
    if t == ffi::LUA_TTABLE && level == MAX_NESTING {
        t = ffi::LUA_TNIL;
    }
    match t {
        ffi::LUA_TSTRING => {
            let mut len = 0;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            encode_bytes(buf, std::slice::from_raw_parts(p.cast(), len));
        }
        ffi::LUA_TBOOLEAN => buf.push(if ffi::lua_toboolean(l, -1) != 0 {
            0xc3
        } else {
            0xc2
        }),
        ffi::LUA_TNUMBER => {
            let n = ffi::lua_tonumber(l, -1);
            if !n.is_infinite() && c_f64_to_i64(n) as f64 == n {
                encode_int(buf, c_f64_to_i64(n));
            } else {
                encode_double(buf, n);
            }
        }
        ffi::LUA_TTABLE => {
            if is_array(l)? {
                let len = ffi::lua_objlen(l, -1);
                encode_header(buf, len, 0x90, 0xdc, 0xdd);
                check_stack(l, 1, "in function mp_encode_lua_table_as_array")?;
                for j in 1..=len {
                    // Every key 1..len is present, so a raw read is what `gettable` sees.
                    ffi::lua_rawgeti_(l, -1, j as c_int);
                    encode_value(l, buf, level + 1)?;
                }
            } else {
                check_stack(l, 3, "in function mp_encode_lua_table_as_map")?;
                let mut len = 0usize;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_settop(l, -2);
                    len += 1;
                }
                encode_header(buf, len, 0x80, 0xde, 0xdf);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pushvalue(l, -2);
                    encode_value(l, buf, level + 1)?;
                    encode_value(l, buf, level + 1)?;
                }
            }
        }
        _ => buf.push(0xc0),
    }
    ffi::lua_settop(l, -2);
    Ok(())
}

/// `cmsgpack.pack(v1, v2, ...)`: the encodings of all arguments, concatenated.
unsafe fn pack(l: *mut ffi::lua_State) -> LResult {
    let nargs = ffi::lua_gettop(l);
    if nargs == 0 {
        return Err(Raise::arg(0, "MessagePack pack needs input."));
    }
    if ffi::lua_checkstack(l, nargs) == 0 {
        return Err(Raise::arg(0, "Too many arguments for MessagePack pack."));
    }
    let mut buf = Vec::new();
    for i in 1..=nargs {
        check_stack(l, 1, "in function mp_check")?;
        ffi::lua_pushvalue(l, i);
        encode_value(l, &mut buf, 0)?;
    }
    push_bytes(l, &buf);
    Ok(1)
}

/// Why decoding stopped.
enum DecodeError {
    /// The input ended inside a value.
    Eof,
    /// A byte that starts no known value.
    BadFormat,
    /// A Lua error to raise as is.
    Raise(Raise),
}

impl From<Raise> for DecodeError {
    fn from(r: Raise) -> Self {
        DecodeError::Raise(r)
    }
}

/// A read position in the input.
struct Cursor<'a> {
    s: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.s.len() - self.p
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.left() < n {
            return Err(DecodeError::Eof);
        }
        let r = &self.s[self.p..self.p + n];
        self.p += n;
        Ok(r)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }
}

/// Decodes `n` values into a new sequence on the stack.
unsafe fn decode_array(l: *mut ffi::lua_State, c: &mut Cursor, n: u64) -> Result<(), DecodeError> {
    ffi::lua_createtable(l, 0, 0);
    check_stack(l, 1, "in function mp_decode_to_lua_array")?;
    for i in 1..=n {
        ffi::lua_pushnumber(l, i as f64);
        decode_value(l, c)?;
        ffi::lua_rawset(l, -3);
    }
    Ok(())
}

/// Decodes `n` key/value pairs into a new table on the stack.
unsafe fn decode_map(l: *mut ffi::lua_State, c: &mut Cursor, n: u64) -> Result<(), DecodeError> {
    ffi::lua_createtable(l, 0, 0);
    for _ in 0..n {
        decode_value(l, c)?;
        decode_value(l, c)?;
        match ffi::lua_type(l, -2) {
            ffi::LUA_TNIL => return Err(Raise::Plain(b"table index is nil".to_vec()).into()),
            ffi::LUA_TNUMBER if ffi::lua_tonumber(l, -2).is_nan() => {
                return Err(Raise::Plain(b"table index is NaN".to_vec()).into())
            }
            _ => {}
        }
        ffi::lua_rawset(l, -3);
    }
    Ok(())
}

/// Decodes one value and pushes it.
unsafe fn decode_value(l: *mut ffi::lua_State, c: &mut Cursor) -> Result<(), DecodeError> {
    if c.left() < 1 {
        return Err(DecodeError::Eof);
    }
    check_stack(
        l,
        1,
        "too many return values at once; use unpack_one or unpack_limit instead.",
    )?;
    let tag = c.s[c.p];
    let start = c.p;
    c.p += 1;
    let r = decode_tagged(l, c, tag);
    if matches!(r, Err(DecodeError::Eof)) {
        c.p = start;
    }
    r
}

unsafe fn decode_tagged(
    l: *mut ffi::lua_State,
    c: &mut Cursor,
    tag: u8,
) -> Result<(), DecodeError> {
    let push_int = |v: i64| ffi::lua_pushnumber(l, v as f64);
    match tag {
        0xcc => push_int(c.be(1)? as i64),
        0xd0 => push_int(c.be(1)? as u8 as i8 as i64),
        0xcd => push_int(c.be(2)? as i64),
        0xd1 => push_int(c.be(2)? as u16 as i16 as i64),
        0xce => push_int(c.be(4)? as i64),
        0xd2 => push_int(c.be(4)? as u32 as i32 as i64),
        0xcf | 0xd3 => push_int(c.be(8)? as i64),
        0xc0 => ffi::lua_pushnil(l),
        0xc3 => ffi::lua_pushboolean(l, 1),
        0xc2 => ffi::lua_pushboolean(l, 0),
        0xca => ffi::lua_pushnumber(l, f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => ffi::lua_pushnumber(l, f64::from_bits(c.be(8)?)),
        0xd9..=0xdb => {
            let n = c.be(1 << (tag - 0xd9))? as usize;
            push_bytes(l, c.take(n)?);
        }
        0xdc => {
            let n = c.be(2)?;
            decode_array(l, c, n)?;
        }
        0xdd => {
            let n = c.be(4)?;
            decode_array(l, c, n)?;
        }
        0xde => {
            let n = c.be(2)?;
            decode_map(l, c, n)?;
        }
        0xdf => {
            let n = c.be(4)?;
            decode_map(l, c, n)?;
        }
        _ if tag & 0x80 == 0 => push_int(tag as i64),
        _ if tag & 0xe0 == 0xe0 => push_int(tag as i8 as i64),
        _ if tag & 0xe0 == 0xa0 => push_bytes(l, c.take((tag & 0x1f) as usize)?),
        _ if tag & 0xf0 == 0x90 => decode_array(l, c, (tag & 0xf) as u64)?,
        _ if tag & 0xf0 == 0x80 => decode_map(l, c, (tag & 0xf) as u64)?,
        _ => return Err(DecodeError::BadFormat),
    }
    Ok(())
}

/// Decodes up to `limit` values (all of them when both `limit` and `offset` are 0)
/// from argument 1, starting at byte `offset`. Unless decoding everything, the values
/// are preceded by the offset of the next value, or -1 at the end of the input.
unsafe fn unpack_full(l: *mut ffi::lua_State, limit: i64, offset: i64) -> LResult {
    let s = check_bytes(l, 1)?;
    let len = s.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The C code prints the input length where it says "limit".
        return Err(Raise::msg(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset as u64 > len as u64 {
        return Err(Raise::msg(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cursor {
        s,
        p: offset as usize,
    };
    let mut cnt: c_int = 0;
    while c.left() > 0 && (cnt as i64) < limit {
        match decode_value(l, &mut c) {
            Ok(()) => {}
            Err(DecodeError::Eof) => return Err(Raise::msg("Missing bytes in input.")),
            Err(DecodeError::BadFormat) => return Err(Raise::msg("Bad data format in input.")),
            Err(DecodeError::Raise(r)) => return Err(r),
        }
        cnt += 1;
    }
    if !decode_all {
        check_stack(l, 1, "in function mp_unpack_full")?;
        let next = if c.left() == 0 { -1 } else { c.p as i64 };
        ffi::lua_pushinteger(l, next as ffi::lua_Integer);
        ffi::lua_insert(l, 2);
        cnt += 1;
    }
    Ok(cnt)
}

/// `cmsgpack.unpack(s)`: every value in `s`.
unsafe fn unpack(l: *mut ffi::lua_State) -> LResult {
    unpack_full(l, 0, 0)
}

/// `cmsgpack.unpack_one(s [, offset])`: the next offset and one value.
unsafe fn unpack_one(l: *mut ffi::lua_State) -> LResult {
    let offset = opt_integer(l, 2, 0)?;
    ffi::lua_settop(l, 1);
    unpack_full(l, 1, offset)
}

/// `cmsgpack.unpack_limit(s, limit [, offset])`: the next offset and up to `limit` values.
unsafe fn unpack_limit(l: *mut ffi::lua_State) -> LResult {
    let limit = check_integer(l, 2)?;
    let offset = opt_integer(l, 3, 0)?;
    ffi::lua_settop(l, 1);
    unpack_full(l, limit, offset)
}

lua_fn!(f_pack => pack);
lua_fn!(f_unpack => unpack);
lua_fn!(f_unpack_one => unpack_one);
lua_fn!(f_unpack_limit => unpack_limit);

/// Opens the library: builds the `cmsgpack` table (functions and `_NAME`, `_VERSION`,
/// `_COPYRIGHT`, `_DESCRIPTION`), sets it as the global `cmsgpack` and returns it.
///
/// # Safety
/// A `lua_CFunction`: call it through Lua.
pub unsafe extern "C-unwind" fn luaopen_cmsgpack(l: *mut ffi::lua_State) -> c_int {
    ffi::lua_createtable(l, 0, 0);
    let funcs: [(&std::ffi::CStr, ffi::lua_CFunction); 4] = [
        (c"pack", f_pack),
        (c"unpack", f_unpack),
        (c"unpack_one", f_unpack_one),
        (c"unpack_limit", f_unpack_limit),
    ];
    for (name, f) in funcs {
        ffi::lua_pushcclosure(l, f, 0);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
    let meta: [(&std::ffi::CStr, &[u8]); 4] = [
        (c"_NAME", b"cmsgpack"),
        (c"_VERSION", b"lua-cmsgpack 0.4.0"),
        (c"_COPYRIGHT", b"Copyright (C) 2012, Salvatore Sanfilippo"),
        (c"_DESCRIPTION", b"MessagePack C implementation for Lua"),
    ];
    for (name, v) in meta {
        push_bytes(l, v);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
    ffi::lua_pushvalue(l, -1);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"cmsgpack".as_ptr());
    1
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check_cases, eval, eval_in, lua, random_value, Gen, DEQ};
    use rand::{Rng, SeedableRng};

    #[test]
    fn basics_as_redis() {
        // Expected values observed on Redis 7.0.15.
        assert_eq!(eval("return hx(cmsgpack.pack({1,2,3}))"), "93010203");
        assert_eq!(eval("return hx(cmsgpack.pack({a=1}))"), "81a16101");
        assert_eq!(
            eval("return hx(cmsgpack.pack(0.5, 0.1))"),
            "ca3f000000cb3fb999999999999a"
        );
        assert_eq!(
            eval("return {cmsgpack.unpack_limit('\\1\\2\\3', 2)}"),
            "{2,1,2}"
        );
        assert_eq!(
            eval("return cmsgpack.pack()"),
            "ERR user_script:3: bad argument #0 to 'pack' (MessagePack pack needs input.)"
        );
        assert_eq!(
            eval("return cmsgpack.unpack('\\205\\1')"),
            "ERR user_script:3: Missing bytes in input."
        );
    }

    #[test]
    fn random_round_trips() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x3590);
        let lua = lua();
        let g = Gen {
            any_float: true,
            any_keys: true,
            null: false,
        };
        for _ in 0..300 {
            let n = rng.gen_range(1..4);
            let vals: Vec<String> = (0..n).map(|_| random_value(&mut rng, &g, 4)).collect();
            let vals = vals.join(",");
            let code = format!(
                "{DEQ} local v = {{{vals}}} local s = cmsgpack.pack(unpack(v)) \
                 local one = {{cmsgpack.unpack_one(s)}} \
                 return tostring(deq({{cmsgpack.unpack(s)}}, v) and deq(one[2], v[1]) \
                 and one[1] == (#v == 1 and -1 or #cmsgpack.pack(v[1])))"
            );
            assert_eq!(eval_in(&lua, &code), "true", "{code}");
        }
    }

    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the
    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).
    const REDIS_CASES: &[(&str, &[u8])] = &[
        (r#"return hx(cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32-1, 2^32, 2^53, -1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31-1, -2^53))"#, b"00017fcc80ccffcd0100cdffffce00010000ceffffffffcf0000000100000000cf0020000000000000ffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffffd3ffe0000000000000"),
        (r#"return hx(cmsgpack.pack(0.5, 0.1, 1e300, 1/0, -1/0, 2^63, -2^63, 2^64, 3.25, -0.0, 1e-40))"#, b"ca3f000000cb3fb999999999999acb7e37e43c8800759cca7f800000caff800000ca5f000000d38000000000000000ca5f800000ca4050000000cb37a16c262777579c"),
        (r#"return hx(cmsgpack.pack(0/0))"#, b"cbfff8000000000000"),
        (r#"return hx(cmsgpack.pack('', 'a', string.rep('x', 31), string.rep('y', 32)))"#, b"a0a161bf78787878787878787878787878787878787878787878787878787878787878d9207979797979797979797979797979797979797979797979797979797979797979"),
        (r#"return hx(string.sub(cmsgpack.pack(string.rep('z', 255)), 1, 4)) .. ' ' .. hx(string.sub(cmsgpack.pack(string.rep('z', 256)), 1, 4)) .. ' ' .. hx(string.sub(cmsgpack.pack(string.rep('z', 65536)), 1, 6))"#, b"d9ff7a7a da01007a db000100007a"),
        (r#"return hx(cmsgpack.pack({1,2,nil,4}))"#, b"83010102020404"),
        (r#"return hx(cmsgpack.pack({[1]=1, [2]=2, [4]=4}))"#, b"83010102020404"),
        (r#"local t = {} for i=1,20 do t[i]=i end return hx(cmsgpack.pack(t))"#, b"dc00140102030405060708090a0b0c0d0e0f1011121314"),
        (r#"local t = {} for i=1,70000 do t[i]=0 end return hx(string.sub(cmsgpack.pack(t), 1, 8))"#, b"dd00011170000000"),
        (r#"local t = {} for i=1,20 do t['k'..i]=i end return #cmsgpack.pack(t) .. hx(string.sub(cmsgpack.pack(t), 1, 3))"#, b"94de0014"),
        (r#"local t = {} t.self = t return hx(cmsgpack.pack(t))"#, b"81a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c6681a473656c66c0"),
        (r#"local t = {} local c = t for i=1,20 do c[1] = {} c = c[1] end return hx(cmsgpack.pack(t))"#, b"91919191919191919191919191919191c0"),
        (r#"return hx(cmsgpack.pack({[2^31]=1}))"#, b"81ce8000000001"),
        (r#"return hx(cmsgpack.pack({[-1]=1}))"#, b"81ff01"),
        (r#"return hx(cmsgpack.pack({[2^40]=1}))"#, b"81cf000001000000000001"),
        (r#"return cmsgpack.pack()"#, b"ERR user_script:3: bad argument #0 to 'pack' (MessagePack pack needs input.)"),
        (r#"return cmsgpack.unpack()"#, b"ERR user_script:3: bad argument #1 to 'unpack' (string expected, got no value)"),
        (r#"return cmsgpack.unpack({})"#, b"ERR user_script:3: bad argument #1 to 'unpack' (string expected, got table)"),
        (r#"return {cmsgpack.unpack(cmsgpack.pack(1, 'a', 2.5, true, false))}"#, b"{1,a,2.5,true,false}"),
        (r#"return {cmsgpack.unpack('')}"#, b"{}"),
        (r#"return select('#', cmsgpack.unpack(''))"#, b"0"),
        (r#"return cmsgpack.unpack('\129\192\1')"#, b"ERR table index is nil"),
        (r#"return cmsgpack.unpack('\129\203\255\255\255\255\255\255\255\255\1')"#, b"ERR table index is NaN"),
        (r#"return cmsgpack.unpack_one('\1\2', -1)"#, b"ERR user_script:3: Invalid request to unpack with offset of -1 and limit of 2."),
        (r#"return cmsgpack.unpack_one('\1\2', 5)"#, b"ERR user_script:3: Start offset 5 greater than input length 2."),
        (r#"return {cmsgpack.unpack_limit('\1\2\3', 0, 1)}"#, b"{1}"),
        (r#"return {cmsgpack.unpack_limit('\1\2\3', 0)}"#, b"{1,2,3}"),
        (r#"return {cmsgpack.unpack_limit('\1\2\3', 2)}"#, b"{2,1,2}"),
        (r#"return {cmsgpack.unpack_limit('\1\2\3', 2, 2)}"#, b"{-1,3}"),
        (r#"return {cmsgpack.unpack_one('\1\2\3')}"#, b"{1,1}"),
        (r#"return {cmsgpack.unpack_one('\1\2\3', 2)}"#, b"{-1,3}"),
        (r#"return {cmsgpack.unpack_one('\1\2\3', 3)}"#, b"{-1}"),
        (r#"return {cmsgpack.unpack_one('')}"#, b"{-1}"),
        (r#"return {cmsgpack.unpack_one('\1', 'x')}"#, b"ERR user_script:3: bad argument #2 to 'unpack_one' (number expected, got string)"),
        (r#"return {cmsgpack.unpack_limit('\1')}"#, b"ERR user_script:3: bad argument #2 to 'unpack_limit' (number expected, got no value)"),
        (r#"return {cmsgpack.unpack_limit('\1', -1)}"#, b"ERR user_script:3: Invalid request to unpack with offset of 0 and limit of 1."),
        (r#"return {cmsgpack.unpack('\193')}"#, b"ERR user_script:3: Bad data format in input."),
        (r#"return {cmsgpack.unpack('\212\1\1')}"#, b"ERR user_script:3: Bad data format in input."),
        (r#"return {cmsgpack.unpack('\205\1')}"#, b"ERR user_script:3: Missing bytes in input."),
        (r#"return {cmsgpack.unpack('\219\0\0\0\9abc')}"#, b"ERR user_script:3: Missing bytes in input."),
        (r#"return {cmsgpack.unpack('\147\1\2')}"#, b"ERR user_script:3: Missing bytes in input."),
        (r#"return {cmsgpack.unpack('\207\255\255\255\255\255\255\255\255', '\211\255\255\255\255\255\255\255\254', '\209\255\0', '\208\128', '\210\128\0\0\0', '\206\255\255\255\255')}"#, b"{-1}"),
        (r#"return {cmsgpack.unpack('\207\255\255\255\255\255\255\255\255\211\255\255\255\255\255\255\255\254\209\255\1\208\128\210\128\0\0\0\206\255\255\255\255\240\202\63\192\0\0')}"#, b"{-1,-2,-255,-128,-2147483648,4294967295,-16,1.5}"),
        (r#"local t = cmsgpack.unpack('\130\161a\1\161b\146\1\2') return t.a .. ',' .. t.b[1] .. ',' .. t.b[2]"#, b"1,1,2"),
        (r#"local t = cmsgpack.unpack('\220\0\3\1\2\3') return #t"#, b"3"),
        (r#"local t = cmsgpack.unpack('\222\0\1\1\2') return t[1]"#, b"2"),
        (r#"return {cmsgpack.unpack(string.rep('\1', 9000))}"#, b"ERR user_script:3: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"),
        (r#"return select('#', cmsgpack.unpack(string.rep('\1', 7990)))"#, b"7990"),
        (r#"return {cmsgpack.unpack(cmsgpack.pack(1,2,3,4,5))}"#, b"{1,2,3,4,5}"),
        (r#"return cmsgpack.unpack(12)"#, b"49"),
        (r#"return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}"#, b"{cmsgpack,lua-cmsgpack 0.4.0,Copyright (C) 2012, Salvatore Sanfilippo,MessagePack C implementation for Lua}"),
        (r#"return {cmsgpack.unpack('\145')}"#, b"ERR user_script:3: Missing bytes in input."),
        (r#"return {cmsgpack.unpack('\1\145')}"#, b"ERR user_script:3: Missing bytes in input."),
        (r#"return hx(cmsgpack.pack({}, {1,2,3}, {a=1}, {[1]=1,[3]=3}, {[2]=2}, {[0]=1}, {[1.5]=1}, true, false, nil, function() end))"#, b"909301020381a16101820101030381020281000181ca3fc0000001c3c2c0c0"),
        (r#"local n = 0 for k in pairs(cmsgpack) do n = n + 1 end return n"#, b"8"),
        (r#"local t = {} for k in pairs(cmsgpack) do t[#t+1] = k end table.sort(t) return t"#, b"{_COPYRIGHT,_DESCRIPTION,_NAME,_VERSION,pack,unpack,unpack_limit,unpack_one}"),
        (r#"return hx(cmsgpack.pack(setmetatable({1, 2}, {__index = function() return 1 end})))"#, b"920102"),
        (r#"return cmsgpack.unpack_limit('\1', 'x')"#, b"ERR user_script:3: bad argument #2 to 'unpack_limit' (number expected, got string)"),
        (r#"return {cmsgpack.unpack_limit('\1\2', 1.9)}"#, b"{1,1}"),
        (r#"return {cmsgpack.unpack_one('\1\2', 1.9)}"#, b"{-1,2}"),
    ];

    #[test]
    fn matches_redis() {
        check_cases(REDIS_CASES);
    }
}
