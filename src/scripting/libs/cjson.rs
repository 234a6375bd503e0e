//! `cjson`: lua-cjson 2.1.0 as bundled with Redis, JSON for Lua values.
//!
//! Encoding: numbers with `%.14g` (settable down to 1 digit), strings with `"`, `\`,
//! `/`, control characters and DEL escaped (other bytes are copied, valid UTF-8 or not),
//! `nil` and `cjson.null` as `null`. A table is an array when all its keys are positive
//! integers, unless it is "excessively sparse" (its largest key is more than twice its
//! number of keys and more than 10), which is an error by default; every other table,
//! the empty one included, is an object whose number keys are written as strings.
//! Nesting is limited to 1000 tables.
//!
//! Decoding: the JSON grammar plus, by default, what `strtod` reads after a `-` or a
//! digit or as `inf`/`nan`/`0x..` (Redis builds with invalid numbers allowed), `\u`
//! escapes to UTF-8 (surrogate pairs joined), `null` to `cjson.null` (a NULL light
//! userdata). Input stops at the first zero byte, as a C string would.
//!
//! Each `cjson` table carries its own settings (the C code keeps them in a userdata
//! shared by its functions as an upvalue); `cjson.new()` makes a fresh table.

use std::ffi::{c_int, CStr};

use mlua::ffi;

use super::{
    c_f64_to_i32, check_bytes, check_integer, lua_fn, push_bytes, type_name, LResult, Raise,
};

/// A `cjson` instance's settings.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Config {
    encode_sparse_convert: i32,
    encode_sparse_ratio: i32,
    encode_sparse_safe: i32,
    encode_max_depth: i32,
    /// 0 = error, 1 = write `inf`/`nan`, 2 = write `null`.
    encode_invalid_numbers: i32,
    encode_number_precision: i32,
    encode_keep_buffer: i32,
    decode_invalid_numbers: i32,
    decode_max_depth: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            decode_invalid_numbers: 1,
            decode_max_depth: 1000,
        }
    }
}

/// The settings of the running function's `cjson` instance (its upvalue 1).
unsafe fn config<'a>(l: *mut ffi::lua_State) -> LResult<&'a mut Config> {
    let p = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut Config;
    if p.is_null() {
        return Err(Raise::msg("BUG: Unable to fetch CJSON configuration"));
    }
    Ok(&mut *p)
}

/// Checks a setter's argument count and pads the missing ones with nil.
unsafe fn arg_init<'a>(l: *mut ffi::lua_State, args: c_int) -> LResult<&'a mut Config> {
    if ffi::lua_gettop(l) > args {
        return Err(Raise::arg(args + 1, "found too many arguments"));
    }
    while ffi::lua_gettop(l) < args {
        ffi::lua_pushnil(l);
    }
    config(l)
}

/// Sets `*setting` from argument `idx` if it is not nil (checking `min..=max`), and
/// pushes the (new) value.
unsafe fn integer_option(
    l: *mut ffi::lua_State,
    idx: c_int,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> LResult<()> {
    if ffi::lua_isnil(l, idx) == 0 {
        let value = check_integer(l, idx)? as i32;
        if !(min <= value && value <= max) {
            // The C code always names argument 1 here.
            return Err(Raise::arg(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
    Ok(())
}

/// Sets `*setting` from argument `idx` if it is not nil: a boolean, or one of `options`
/// by name (index into `options`). Pushes the (new) value, as a boolean when it is 0 or
/// 1, else by name.
unsafe fn enum_option(
    l: *mut ffi::lua_State,
    idx: c_int,
    setting: &mut i32,
    options: &[&str],
) -> LResult<()> {
    if ffi::lua_isnil(l, idx) == 0 {
        if ffi::lua_isboolean(l, idx) != 0 {
            *setting = ffi::lua_toboolean(l, idx);
        } else {
            let name = check_bytes(l, idx)?;
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(i) => *setting = i as i32,
                None => {
                    let mut m = b"invalid option '".to_vec();
                    m.extend_from_slice(name);
                    m.push(b'\'');
                    return Err(Raise::arg(idx, m));
                }
            }
        }
    }
    if *setting == 0 || *setting == 1 {
        ffi::lua_pushboolean(l, *setting);
    } else {
        push_bytes(l, options[*setting as usize].as_bytes());
    }
    Ok(())
}

const ON_OFF: &[&str] = &["off", "on"];

unsafe fn cfg_encode_sparse_array(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 3)?;
    enum_option(l, 1, &mut cfg.encode_sparse_convert, ON_OFF)?;
    integer_option(l, 2, &mut cfg.encode_sparse_ratio, 0, i32::MAX)?;
    integer_option(l, 3, &mut cfg.encode_sparse_safe, 0, i32::MAX)?;
    Ok(3)
}

unsafe fn cfg_encode_max_depth(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.encode_max_depth, 1, i32::MAX)?;
    Ok(1)
}

unsafe fn cfg_decode_max_depth(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.decode_max_depth, 1, i32::MAX)?;
    Ok(1)
}

unsafe fn cfg_encode_number_precision(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.encode_number_precision, 1, 14)?;
    Ok(1)
}

unsafe fn cfg_encode_keep_buffer(l: *mut ffi::lua_State) -> LResult {
    // Only a buffer-reuse optimisation in C; the setting is kept and reported.
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.encode_keep_buffer, ON_OFF)?;
    Ok(1)
}

unsafe fn cfg_encode_invalid_numbers(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 1)?;
    enum_option(
        l,
        1,
        &mut cfg.encode_invalid_numbers,
        &["off", "on", "null"],
    )?;
    Ok(1)
}

unsafe fn cfg_decode_invalid_numbers(l: *mut ffi::lua_State) -> LResult {
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.decode_invalid_numbers, ON_OFF)?;
    Ok(1)
}

// ---------------------------------------------------------------------------------
// Number formatting
// ---------------------------------------------------------------------------------

/// Formats `x` as C's `printf("%.<prec>g", x)` does with glibc.
#[inline(never)]
pub fn format_g(x: f64, prec: usize) -> String {
    let p = prec.max(1);
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    // The exponent the %e conversion would print, after rounding to p digits.
    let e_form = format!("{:.*e}", p - 1, x);
    let (mant, exp) = e_form.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent");
    if exp < -4 || exp >= p as i32 {
        let mut m = mant.to_string();
        strip_zeros(&mut m);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let mut s = format!("{:.*}", (p as i32 - 1 - exp) as usize, x);
        strip_zeros(&mut s);
        s
    }
}

/// Removes trailing zeros after a decimal point, and the point if nothing follows it.
fn strip_zeros(s: &mut String) {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
}

// ---------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------

/// Appends `s` as a JSON string: `"`, `\\`, `/` and control characters (DEL included)
/// are escaped, every other byte is copied.
#[inline(never)]
fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'/' => b"\\/",
            8 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            12 => b"\\f",
            b'\r' => b"\\r",
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
                continue;
            }
            _ => {
                out.push(c);
                continue;
            }
        };
        out.extend_from_slice(esc);
    }
    out.push(b'"');
}

/// `Cannot serialise <type of idx>: <reason>`.
#[inline(never)]
unsafe fn encode_error(l: *mut ffi::lua_State, idx: c_int, reason: &str) -> Raise {
    Raise::msg(format!("Cannot serialise {}: {reason}", type_name(l, idx)))
}

#[inline(never)]
unsafe fn append_number(
    l: *mut ffi::lua_State,
    cfg: &Config,
    out: &mut Vec<u8>,
    idx: c_int,
) -> LResult<()> {
    let num = ffi::lua_tonumber(l, idx);
    match cfg.encode_invalid_numbers {
        0 if !num.is_finite() => return Err(encode_error(l, idx, "must not be NaN or Inf")),
        1 if num.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        2.. if !num.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(format_g(num, cfg.encode_number_precision as usize).as_bytes());
    Ok(())
}

/// For the table on the top of the stack: its length if it is an array, -1 (or a
/// non-positive number) if it is to be encoded as an object.
#[inline(never)]
unsafe fn array_length(l: *mut ffi::lua_State, cfg: &Config) -> LResult<i32> {
    let mut max: i32 = 0;
    let mut items: i32 = 0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
            let k = ffi::lua_tonumber(l, -2);
            if k != 0.0 && k.floor() == k && k >= 1.0 {
                if k > max as f64 {
                    max = c_f64_to_i32(k);
                }
                items += 1;
                ffi::lua_settop(l, -2);
                continue;
            }
        }
        ffi::lua_settop(l, -3);
        return Ok(-1);
    }
    if cfg.encode_sparse_ratio > 0
        && max > items.wrapping_mul(cfg.encode_sparse_ratio)
        && max > cfg.encode_sparse_safe
    {
        if cfg.encode_sparse_convert == 0 {
            return Err(encode_error(l, -1, "excessively sparse array"));
        }
        return Ok(-1);
    }
    Ok(max)
}

/// Appends the value on the top of the stack (leaving it there).
unsafe fn append_data(
    l: *mut ffi::lua_State,
    cfg: &Config,
    depth: i32,
    out: &mut Vec<u8>,
) -> LResult<()> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => {
            let mut len = 0;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            append_string(out, std::slice::from_raw_parts(p.cast(), len));
        }
        ffi::LUA_TNUMBER => append_number(l, cfg, out, -1)?,
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, -1) != 0 {
            b"true"
        } else {
            b"false"
        }),
        ffi::LUA_TTABLE => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth || ffi::lua_checkstack(l, 3) == 0 {
                return Err(Raise::msg(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            let len = array_length(l, cfg)?;
            if len > 0 {
                out.push(b'[');
                for i in 1..=len {
                    if i > 1 {
                        out.push(b',');
                    }
                    ffi::lua_rawgeti_(l, -1, i);
                    append_data(l, cfg, depth, out)?;
                    ffi::lua_settop(l, -2);
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match ffi::lua_type(l, -2) {
                        ffi::LUA_TNUMBER => {
                            out.push(b'"');
                            append_number(l, cfg, out, -2)?;
                            out.extend_from_slice(b"\":");
                        }
                        ffi::LUA_TSTRING => {
                            let mut len = 0;
                            let p = ffi::lua_tolstring(l, -2, &mut len);
                            append_string(out, std::slice::from_raw_parts(p.cast(), len));
                            out.push(b':');
                        }
                        _ => {
                            return Err(encode_error(l, -2, "table key must be a number or string"))
                        }
                    }
                    append_data(l, cfg, depth, out)?;
                    ffi::lua_settop(l, -2);
                }
                out.push(b'}');
            }
        }
        ffi::LUA_TNIL => out.extend_from_slice(b"null"),
        ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => {
            out.extend_from_slice(b"null")
        }
        _ => return Err(encode_error(l, -1, "type not supported")),
    }
    Ok(())
}

/// `cjson.encode(value)`.
unsafe fn encode(l: *mut ffi::lua_State) -> LResult {
    let cfg = *config(l)?;
    if ffi::lua_gettop(l) != 1 {
        return Err(Raise::arg(1, "expected 1 argument"));
    }
    let mut out = Vec::new();
    append_data(l, &cfg, 0, &mut out)?;
    push_bytes(l, &out);
    Ok(1)
}

// ---------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------

/// A JSON token's kind; the names are what error messages print.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number => "T_NUMBER",
            Tok::Boolean => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error => "T_ERROR",
        }
    }
}

/// A token: its kind, where it starts (0-based), and its value (a string token's
/// value is in [`Parser::tmp`], as the C code keeps it in a shared buffer; this keeps
/// the token, which every nesting level holds, small).
struct Token {
    kind: Tok,
    index: usize,
    number: f64,
    boolean: bool,
    /// For `Tok::Error`: what was wrong.
    error: &'static str,
}

impl Token {
    fn new() -> Self {
        Token {
            kind: Tok::End,
            index: 0,
            number: 0.0,
            boolean: false,
            error: "",
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    ptr: usize,
    cfg: Config,
    depth: i32,
    /// The value of the last string token.
    tmp: Vec<u8>,
}

fn hex_digit(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        _ => match c | 0x20 {
            c @ b'a'..=b'f' => Some((c - b'a' + 10) as u32),
            _ => None,
        },
    }
}

impl Parser<'_> {
    /// The byte at `i`, or 0 past the end (the C code reads a NUL-terminated string).
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |a, k| Some((a << 4) | hex_digit(self.at(i + k))?))
    }

    fn set_error(&self, t: &mut Token, what: &'static str) {
        t.kind = Tok::Error;
        t.index = self.ptr;
        t.error = what;
    }

    /// Appends the UTF-8 of the `\u` escape at `ptr` (two for a surrogate pair) and
    /// moves past it.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let mut cp = self.hex4(self.ptr + 2)?;
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return None;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return None;
            }
            let low = self.hex4(self.ptr + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        // Every code point here is at most 0x10FFFF and none is a lone surrogate.
        let ch = char::from_u32(cp)?;
        let mut b = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        self.ptr += len;
        Some(())
    }

    #[inline(never)]
    fn string_token(&mut self, t: &mut Token) {
        self.ptr += 1;
        let mut s = std::mem::take(&mut self.tmp);
        s.clear();
        let ok = self.string_body(t, &mut s);
        self.tmp = s;
        if ok {
            t.kind = Tok::Str;
        }
    }

    /// Reads the rest of a string into `s`; false (with `t` the error) if it is bad.
    fn string_body(&mut self, t: &mut Token, s: &mut Vec<u8>) -> bool {
        loop {
            let mut ch = self.at(self.ptr);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                self.set_error(t, "unexpected end of string");
                return false;
            }
            if ch == b'\\' {
                ch = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(s).is_some() {
                            continue;
                        }
                        self.set_error(t, "invalid unicode escape code");
                        return false;
                    }
                    _ => {
                        self.set_error(t, "invalid escape code");
                        return false;
                    }
                };
                self.ptr += 1;
            }
            s.push(ch);
            self.ptr += 1;
        }
        self.ptr += 1;
        true
    }

    /// Whether the number at `ptr` is one JSON forbids (`+`, `0x`, leading zeros,
    /// `inf`, `nan`).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest = &self.data[p.min(self.data.len())..];
        let starts = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        starts(b"inf") || starts(b"nan")
    }

    #[inline(never)]
    fn number_token(&mut self, t: &mut Token) {
        t.kind = Tok::Number;
        let end = self.data[self.ptr..]
            .iter()
            .position(|&c| c == 0)
            .map_or(self.data.len(), |e| self.ptr + e);
        let (v, n) = strtod(&self.data[self.ptr..end]);
        if n == 0 {
            self.set_error(t, "invalid number");
        } else {
            t.number = v;
            self.ptr += n;
        }
    }

    #[inline(never)]
    fn next_token(&mut self, t: &mut Token) {
        let mut ch = self.at(self.ptr);
        while matches!(ch, b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
            ch = self.at(self.ptr);
        }
        t.index = self.ptr;
        let single = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => {
                t.kind = Tok::End;
                return;
            }
            _ => None,
        };
        if let Some(k) = single {
            t.kind = k;
            self.ptr += 1;
            return;
        }
        let rest = &self.data[self.ptr..];
        if ch == b'"' {
            self.string_token(t);
        } else if ch == b'-' || ch.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                self.set_error(t, "invalid number");
            } else {
                self.number_token(t);
            }
        } else if !matches!(ch, b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+') {
            self.set_error(t, "invalid token");
        } else if rest.starts_with(b"true") {
            t.kind = Tok::Boolean;
            t.boolean = true;
            self.ptr += 4;
        } else if rest.starts_with(b"false") {
            t.kind = Tok::Boolean;
            t.boolean = false;
            self.ptr += 5;
        } else if rest.starts_with(b"null") {
            t.kind = Tok::Null;
            self.ptr += 4;
        } else if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            self.number_token(t);
        } else {
            self.set_error(t, "invalid token");
        }
    }

    #[inline(never)]
    fn parse_error(&self, expected: &str, t: &Token) -> Raise {
        let found = if t.kind == Tok::Error {
            t.error
        } else {
            t.kind.name()
        };
        Raise::msg(format!(
            "Expected {expected} but found {found} at character {}",
            t.index + 1
        ))
    }

    #[inline(never)]
    unsafe fn descend(&mut self, l: *mut ffi::lua_State, slots: c_int) -> LResult<()> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && ffi::lua_checkstack(l, slots) != 0 {
            return Ok(());
        }
        Err(Raise::msg(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr
        )))
    }

    unsafe fn object(&mut self, l: *mut ffi::lua_State) -> LResult<()> {
        self.descend(l, 3)?;
        ffi::lua_createtable(l, 0, 0);
        let mut t = Token::new();
        self.next_token(&mut t);
        if t.kind == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if t.kind != Tok::Str {
                return Err(self.parse_error("object key string", &t));
            }
            push_bytes(l, &self.tmp);
            self.next_token(&mut t);
            if t.kind != Tok::Colon {
                return Err(self.parse_error("colon", &t));
            }
            self.next_token(&mut t);
            self.value(l, &t)?;
            ffi::lua_rawset(l, -3);
            self.next_token(&mut t);
            if t.kind == Tok::ObjEnd {
                self.depth -= 1;
                return Ok(());
            }
            if t.kind != Tok::Comma {
                return Err(self.parse_error("comma or object end", &t));
            }
            self.next_token(&mut t);
        }
    }

    unsafe fn array(&mut self, l: *mut ffi::lua_State) -> LResult<()> {
        self.descend(l, 2)?;
        ffi::lua_createtable(l, 0, 0);
        let mut t = Token::new();
        self.next_token(&mut t);
        if t.kind == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(());
        }
        let mut i: c_int = 1;
        loop {
            self.value(l, &t)?;
            ffi::lua_rawseti_(l, -2, i);
            i = i.wrapping_add(1);
            self.next_token(&mut t);
            if t.kind == Tok::ArrEnd {
                self.depth -= 1;
                return Ok(());
            }
            if t.kind != Tok::Comma {
                return Err(self.parse_error("comma or array end", &t));
            }
            self.next_token(&mut t);
        }
    }

    /// Pushes the value starting with token `t`.
    unsafe fn value(&mut self, l: *mut ffi::lua_State, t: &Token) -> LResult<()> {
        match t.kind {
            Tok::Str => push_bytes(l, &self.tmp),
            Tok::Number => ffi::lua_pushnumber(l, t.number),
            Tok::Boolean => ffi::lua_pushboolean(l, t.boolean as c_int),
            Tok::ObjBegin => self.object(l)?,
            Tok::ArrBegin => self.array(l)?,
            Tok::Null => ffi::lua_pushlightuserdata(l, std::ptr::null_mut()),
            _ => return Err(self.parse_error("value", t)),
        }
        Ok(())
    }
}

/// What C's `strtod` reads at the start of `s` (no leading blanks here): the value and
/// the number of bytes used, 0 when `s` does not start with a number. Reads decimal and
/// hexadecimal floats, `inf`, `infinity` and `nan[(...)]` in any case.
#[inline(never)]
pub fn strtod(s: &[u8]) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let neg = match at(0) {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let word =
        |i: usize, w: &[u8]| s.len() >= i + w.len() && s[i..i + w.len()].eq_ignore_ascii_case(w);
    if word(i, b"inf") {
        let n = if word(i, b"infinity") { i + 8 } else { i + 3 };
        return (sign(f64::INFINITY), n);
    }
    if word(i, b"nan") {
        let mut n = i + 3;
        if at(n) == b'(' {
            let mut j = n + 1;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                n = j + 1;
            }
        }
        return (sign(f64::NAN), n);
    }
    if at(i) == b'0'
        && at(i + 1) | 0x20 == b'x'
        && (at(i + 2).is_ascii_hexdigit() || (at(i + 2) == b'.' && at(i + 3).is_ascii_hexdigit()))
    {
        let (v, n) = hex_float(&s[i + 2..]);
        return (sign(v), i + 2 + n);
    }
    let int_start = i;
    while at(i).is_ascii_digit() {
        i += 1;
    }
    let int_part = &s[int_start..i];
    let mut frac: &[u8] = b"";
    if at(i) == b'.' {
        let fs = i + 1;
        let mut j = fs;
        while at(j).is_ascii_digit() {
            j += 1;
        }
        if int_part.is_empty() && j == fs {
            return (0.0, 0);
        }
        frac = &s[fs..j];
        i = j;
    } else if int_part.is_empty() {
        return (0.0, 0);
    }
    let mut exp: &[u8] = b"";
    if at(i) | 0x20 == b'e' {
        let mut j = i + 1;
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            exp = &s[i + 1..j];
            i = j;
        }
    }
    let mut text = String::with_capacity(i + 8);
    text.push_str(if int_part.is_empty() {
        "0"
    } else {
        std::str::from_utf8(int_part).unwrap_or("0")
    });
    text.push('.');
    text.push_str(if frac.is_empty() {
        "0"
    } else {
        std::str::from_utf8(frac).unwrap_or("0")
    });
    if !exp.is_empty() {
        text.push('e');
        text.push_str(std::str::from_utf8(exp).unwrap_or("0"));
    }
    (sign(text.parse::<f64>().unwrap_or(0.0)), i)
}

/// The value of hexadecimal float digits (after `0x`) and the number of bytes used.
fn hex_float(s: &[u8]) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    // Mantissa kept in 60 bits; further digits only count toward the exponent and a
    // sticky bit for rounding.
    let mut mant: u64 = 0;
    let mut exp2: i64 = 0;
    let mut sticky = false;
    let mut seen_point = false;
    loop {
        let c = at(i);
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = hex_digit(c).filter(|_| c.is_ascii_hexdigit()) {
            if mant >> 56 == 0 {
                mant = (mant << 4) | d as u64;
                if seen_point {
                    exp2 -= 4;
                }
            } else {
                sticky |= d != 0;
                if !seen_point {
                    exp2 += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if at(i) | 0x20 == b'p' {
        let mut j = i + 1;
        let neg = match at(j) {
            b'-' => {
                j += 1;
                true
            }
            b'+' => {
                j += 1;
                false
            }
            _ => false,
        };
        if at(j).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(j).is_ascii_digit() {
                e = (e * 10 + (at(j) - b'0') as i64).min(1 << 20);
                j += 1;
            }
            exp2 += if neg { -e } else { e };
            i = j;
        }
    }
    if mant == 0 {
        return (0.0, i);
    }
    let m = (mant | sticky as u64) as f64;
    (m * 2f64.powi(exp2.clamp(-2000, 2000) as i32), i)
}

/// `cjson.decode(json)`.
unsafe fn decode(l: *mut ffi::lua_State) -> LResult {
    if ffi::lua_gettop(l) != 1 {
        return Err(Raise::arg(1, "expected 1 argument"));
    }
    let cfg = *config(l)?;
    let data = check_bytes(l, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(Raise::msg("JSON parser does not support UTF-16 or UTF-32"));
    }
    let mut p = Parser {
        data,
        ptr: 0,
        cfg,
        depth: 0,
        tmp: Vec::new(),
    };
    let mut t = Token::new();
    p.next_token(&mut t);
    p.value(l, &t)?;
    p.next_token(&mut t);
    if t.kind != Tok::End {
        return Err(p.parse_error("the end", &t));
    }
    Ok(1)
}

// ---------------------------------------------------------------------------------
// Module
// ---------------------------------------------------------------------------------

unsafe fn new(l: *mut ffi::lua_State) -> LResult {
    create_module(l);
    Ok(1)
}

lua_fn!(f_encode => encode);
lua_fn!(f_decode => decode);
lua_fn!(f_encode_sparse_array => cfg_encode_sparse_array);
lua_fn!(f_encode_max_depth => cfg_encode_max_depth);
lua_fn!(f_decode_max_depth => cfg_decode_max_depth);
lua_fn!(f_encode_number_precision => cfg_encode_number_precision);
lua_fn!(f_encode_keep_buffer => cfg_encode_keep_buffer);
lua_fn!(f_encode_invalid_numbers => cfg_encode_invalid_numbers);
lua_fn!(f_decode_invalid_numbers => cfg_decode_invalid_numbers);
lua_fn!(f_new => new);

/// Pushes a new `cjson` table with default settings.
unsafe fn create_module(l: *mut ffi::lua_State) {
    ffi::lua_createtable(l, 0, 0);
    let cfg = ffi::lua_newuserdata(l, std::mem::size_of::<Config>()) as *mut Config;
    cfg.write(Config::default());
    let funcs: [(&CStr, ffi::lua_CFunction); 10] = [
        (c"encode", f_encode),
        (c"decode", f_decode),
        (c"encode_sparse_array", f_encode_sparse_array),
        (c"encode_max_depth", f_encode_max_depth),
        (c"decode_max_depth", f_decode_max_depth),
        (c"encode_number_precision", f_encode_number_precision),
        (c"encode_keep_buffer", f_encode_keep_buffer),
        (c"encode_invalid_numbers", f_encode_invalid_numbers),
        (c"decode_invalid_numbers", f_decode_invalid_numbers),
        (c"new", f_new),
    ];
    for (name, f) in funcs {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(l, -3, name.as_ptr());
    }
    ffi::lua_settop(l, -2);
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    ffi::lua_setfield(l, -2, c"null".as_ptr());
    push_bytes(l, b"cjson");
    ffi::lua_setfield(l, -2, c"_NAME".as_ptr());
    push_bytes(l, b"2.1.0");
    ffi::lua_setfield(l, -2, c"_VERSION".as_ptr());
}

/// Opens the library: builds a `cjson` table, sets it as the global `cjson` (Redis
/// builds lua-cjson with `ENABLE_CJSON_GLOBAL`) and returns it.
///
/// # Safety
/// A `lua_CFunction`: call it through Lua.
pub unsafe extern "C-unwind" fn luaopen_cjson(l: *mut ffi::lua_State) -> c_int {
    create_module(l);
    ffi::lua_pushvalue(l, -1);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"cjson".as_ptr());
    1
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check_cases, eval, eval_in, lua, random_value, Gen, DEQ};
    use rand::SeedableRng;

    #[test]
    fn basics_as_redis() {
        // Expected values observed on Redis 7.0.15.
        assert_eq!(eval("return cjson.encode({1,2,3})"), "[1,2,3]");
        assert_eq!(eval("return cjson.encode({a=1})"), "{\"a\":1}");
        assert_eq!(eval("return cjson.encode({})"), "{}");
        assert_eq!(eval("return cjson.encode('a/b')"), "\"a\\/b\"");
        assert_eq!(
            eval("return cjson.encode(123456789012345678)"),
            "1.2345678901235e+17"
        );
        assert_eq!(
            eval("return cjson.encode({[1]=1, [100]=2})"),
            "ERR user_script:3: Cannot serialise table: excessively sparse array"
        );
        assert_eq!(
            eval("return cjson.decode('x')"),
            "ERR user_script:3: Expected value but found invalid token at character 1"
        );
        assert_eq!(
            eval("return cjson.decode('[null]')[1] == cjson.null"),
            "true"
        );
    }

    #[test]
    fn format_g_like_printf() {
        use super::format_g;
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(1e-5, 14), "1e-05");
        assert_eq!(format_g(1e15, 14), "1e+15");
        assert_eq!(format_g(-0.0, 14), "-0");
        assert_eq!(format_g(35.0, 1), "4e+01");
        assert_eq!(format_g(2.5, 1), "2");
        assert_eq!(format_g(f64::INFINITY, 14), "inf");
    }

    #[test]
    fn random_round_trips() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0xc750);
        let lua = lua();
        let g = Gen {
            any_float: false,
            any_keys: false,
            null: true,
        };
        for _ in 0..300 {
            let v = random_value(&mut rng, &g, 4);
            let code = format!(
                "{DEQ} local v = {v} local s = cjson.encode(v) \
                 return tostring(deq(cjson.decode(s), v))"
            );
            assert_eq!(eval_in(&lua, &code), "true", "{code}");
        }
    }

    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the
    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).
    const REDIS_CASES: &[(&str, &[u8])] = &[
        (r#"return {tostring(cjson.decode('0x10')), tostring(cjson.decode('nan')), cjson.encode(-0), cjson.encode(0.1), cjson.encode(1e300), cjson.encode(123456789012345678), cjson.encode(2.5), tostring(cjson.decode_invalid_numbers()), cjson.encode({1,2,nil,4}), cjson.encode(3.14159265358979), cjson.encode(1e-5)}"#, b"{16,nan,-0,0.1,1e+300,1.2345678901235e+17,2.5,true,[1,2,null,4],3.1415926535898,1e-05}"),
        (r#"cjson.encode_number_precision(1) return {cjson.encode(2.5), cjson.encode(0.25), cjson.encode(35), cjson.encode(0.05), cjson.encode(0.15), cjson.encode(1e100), cjson.encode(-0.00001234)}"#, b"{2,0.2,4e+01,0.05,0.1,1e+100,-1e-05}"),
        (r#"cjson.encode_number_precision(3) return {cjson.encode(2.675), cjson.encode(1.005), cjson.encode(1234.5), cjson.encode(999.5), cjson.encode(0.0001), cjson.encode(0.00001)}"#, b"{2.67,1,1.23e+03,1e+03,0.0001,1e-05}"),
        (r#"return {cjson.encode(100000000000000), cjson.encode(1e15), cjson.encode(123456.789e3), cjson.encode(2^53), cjson.encode(-2^63), cjson.encode(5e-324), cjson.encode(1.7976931348623157e308)}"#, b"{1e+14,1e+15,123456789,9.007199254741e+15,-9.2233720368548e+18,4.9406564584125e-324,1.7976931348623e+308}"),
        (r#"return cjson.encode({1,2,3})"#, b"[1,2,3]"),
        (r#"return cjson.encode({a=1})"#, b"{\"a\":1}"),
        (r#"return cjson.encode({})"#, b"{}"),
        (r#"return cjson.encode('a/b"c\\d\n\r\t\b\f\0\1\31\127\128\255 é')"#, b"\"a\\/b\\\"c\\\\d\\n\\r\\t\\b\\f\\u0000\\u0001\\u001f\\u007f\x80\xff \xc3\xa9\""),
        (r#"return cjson.encode(nil)"#, b"null"),
        (r#"return cjson.encode(cjson.null)"#, b"null"),
        (r#"return cjson.encode(true)"#, b"true"),
        (r#"return cjson.encode()"#, b"ERR user_script:3: bad argument #1 to 'encode' (expected 1 argument)"),
        (r#"return cjson.encode(1, 2)"#, b"ERR user_script:3: bad argument #1 to 'encode' (expected 1 argument)"),
        (r#"return cjson.encode(function() end)"#, b"ERR user_script:3: Cannot serialise function: type not supported"),
        (r#"return cjson.encode({f = function() end})"#, b"ERR user_script:3: Cannot serialise function: type not supported"),
        (r#"return cjson.encode({[true] = 1})"#, b"ERR user_script:3: Cannot serialise boolean: table key must be a number or string"),
        (r#"return cjson.encode({[{}] = 1})"#, b"ERR user_script:3: Cannot serialise table: table key must be a number or string"),
        (r#"return cjson.encode(0/0)"#, b"ERR user_script:3: Cannot serialise number: must not be NaN or Inf"),
        (r#"return cjson.encode(1/0)"#, b"ERR user_script:3: Cannot serialise number: must not be NaN or Inf"),
        (r#"return cjson.encode({[1]=1, [100]=2})"#, b"ERR user_script:3: Cannot serialise table: excessively sparse array"),
        (r#"return cjson.encode({[1]=1, [10]=2})"#, b"[1,null,null,null,null,null,null,null,null,2]"),
        (r#"return cjson.encode({[1]=1, [11]=2})"#, b"ERR user_script:3: Cannot serialise table: excessively sparse array"),
        (r#"return cjson.encode({[1]=1, [3]=2, [4]=4, [12]=5, [6]=1, [7]=1})"#, b"[1,null,2,4,null,1,1,null,null,null,null,5]"),
        (r#"return cjson.encode({[0]=1})"#, b"{\"0\":1}"),
        (r#"return cjson.encode({[-1]=1})"#, b"{\"-1\":1}"),
        (r#"return cjson.encode({[1.5]=1})"#, b"{\"1.5\":1}"),
        (r#"return cjson.encode({[2^40]=1})"#, b"{\"1099511627776\":1}"),
        (r#"return cjson.encode({[1/0]=1})"#, b"ERR user_script:3: Cannot serialise number: must not be NaN or Inf"),
        (r#"return cjson.encode({[1]=1, a=2})"#, b"{\"1\":1,\"a\":2}"),
        (r#"return cjson.encode({{}, {{}}, {a={b={c={}}}}})"#, b"[{},[{}],{\"a\":{\"b\":{\"c\":{}}}}]"),
        (r#"local t = {} t.self = t return cjson.encode(t)"#, b"ERR user_script:3: Cannot serialise, excessive nesting (1001)"),
        (r#"local t = {} local c = t for i=1,999 do c[1] = {} c = c[1] end return #cjson.encode(t)"#, b"2000"),
        (r#"local t = {} local c = t for i=1,1000 do c[1] = {} c = c[1] end return #cjson.encode(t)"#, b"ERR user_script:3: Cannot serialise, excessive nesting (1001)"),
        (r#"return cjson.decode('x')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"return cjson.decode('')"#, b"ERR user_script:3: Expected value but found T_END at character 1"),
        (r#"return cjson.decode()"#, b"ERR user_script:3: bad argument #1 to 'decode' (expected 1 argument)"),
        (r#"return cjson.decode(1, 2)"#, b"ERR user_script:3: bad argument #1 to 'decode' (expected 1 argument)"),
        (r#"return cjson.decode({})"#, b"ERR user_script:3: bad argument #1 to 'decode' (string expected, got table)"),
        (r#"return cjson.decode(12)"#, b"12"),
        (r#"return cjson.decode('[1,2,3]')[3]"#, b"3"),
        (r#"return cjson.decode('{"a":{"b":[1,2,{"c":null}]}}').a.b[3].c == cjson.null"#, b"true"),
        (r#"return {cjson.decode('"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"')}"#, b"{\xc3\xa9\xf0\x9f\x98\x80/\x08\x0c\x0a\x0d\x09\"\\}"),
        (r#"return cjson.decode('"\\ud83d"')"#, b"ERR user_script:3: Expected value but found invalid unicode escape code at character 2"),
        (r#"return cjson.decode('"\\ude00"')"#, b"ERR user_script:3: Expected value but found invalid unicode escape code at character 2"),
        (r#"return cjson.decode('"\\u12"')"#, b"ERR user_script:3: Expected value but found invalid unicode escape code at character 2"),
        (r#"return cjson.decode('"\\x"')"#, b"ERR user_script:3: Expected value but found invalid escape code at character 2"),
        (r#"return cjson.decode('"abc')"#, b"ERR user_script:3: Expected value but found unexpected end of string at character 5"),
        (r#"return cjson.decode('[1,2')"#, b"ERR user_script:3: Expected comma or array end but found T_END at character 5"),
        (r#"return cjson.decode('[1,2,]')"#, b"ERR user_script:3: Expected value but found T_ARR_END at character 6"),
        (r#"return cjson.decode('{"a" 1}')"#, b"ERR user_script:3: Expected colon but found T_NUMBER at character 6"),
        (r#"return cjson.decode('{"a":1,}')"#, b"ERR user_script:3: Expected object key string but found T_OBJ_END at character 8"),
        (r#"return cjson.decode('{1:1}')"#, b"ERR user_script:3: Expected object key string but found T_NUMBER at character 2"),
        (r#"return cjson.decode('{"a":1 "b"}')"#, b"ERR user_script:3: Expected comma or object end but found T_STRING at character 8"),
        (r#"return cjson.decode('[1] x')"#, b"ERR user_script:3: Expected the end but found invalid token at character 5"),
        (r#"return cjson.decode('[1]\0 x')[1]"#, b"1"),
        (r#"return cjson.decode('\0[1]')"#, b"ERR user_script:3: JSON parser does not support UTF-16 or UTF-32"),
        (r#"return cjson.decode(' \0[1]')"#, b"ERR user_script:3: JSON parser does not support UTF-16 or UTF-32"),
        (r#"return cjson.decode('[1 2]')"#, b"ERR user_script:3: Expected comma or array end but found T_NUMBER at character 4"),
        (r#"return cjson.decode('tru')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"return cjson.decode('nul')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"return cjson.decode('-')"#, b"ERR user_script:3: Expected value but found invalid number at character 1"),
        (r#"return cjson.decode('-a')"#, b"ERR user_script:3: Expected value but found invalid number at character 1"),
        (r#"return cjson.decode('01')"#, b"1"),
        (r#"return cjson.decode('+1')"#, b"1"),
        (r#"return cjson.decode('.5')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"return cjson.decode('-.5')"#, b"-0.5"),
        (r#"return cjson.decode('1.')"#, b"1"),
        (r#"return cjson.decode('1e')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('1e5')"#, b"100000"),
        (r#"return cjson.decode('1E+2')"#, b"100"),
        (r#"return cjson.decode('-0')"#, b"-0"),
        (r#"return {cjson.decode('inf'), cjson.decode('-Infinity'), cjson.decode('+5'), cjson.decode('0x1p4'), cjson.decode('-0x.8'), cjson.decode('NaN'), cjson.decode('nan(123)')}"#, b"{inf,-inf,5,16,-0.5,nan,nan}"),
        (r#"return cjson.decode('1e400')"#, b"inf"),
        (r#"return cjson.decode('123456789012345678901234567890')"#, b"1.2345678901235e+29"),
        (r#"return cjson.decode('0.1e-320')"#, b"9.9801260459932e-322"),
        (r#"return cjson.decode('"\1\2\255"')"#, b"\x01\x02\xff"),
        (r#"return cjson.decode(' [ 1 , { "a" : true , "b" : false } ] ')[2].b"#, b"false"),
        (r#"return cjson.decode('  ')"#, b"ERR user_script:3: Expected value but found T_END at character 3"),
        (r#"return cjson.decode('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]')[1][1][1][1]"#, b"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"),
        (r#"return cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))"#, b"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"),
        (r#"return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))"#, b"ERR user_script:3: Found too many nested data structures (1001) at character 1001"),
        (r#"return cjson.decode(string.rep('{"a":', 1001))"#, b"ERR user_script:3: Found too many nested data structures (1001) at character 5001"),
        (r#"return {cjson.encode_sparse_array()}"#, b"{false,2,10}"),
        (r#"return {cjson.encode_sparse_array(true, 3, 5)}"#, b"{true,3,5}"),
        (r#"return {cjson.encode_sparse_array('on')}"#, b"{true,2,10}"),
        (r#"return {cjson.encode_sparse_array('yes')}"#, b"ERR user_script:3: bad argument #1 to 'encode_sparse_array' (invalid option 'yes')"),
        (r#"return {cjson.encode_sparse_array(1)}"#, b"ERR user_script:3: bad argument #1 to 'encode_sparse_array' (invalid option '1')"),
        (r#"return {cjson.encode_sparse_array(nil, -1)}"#, b"ERR user_script:3: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"),
        (r#"return {cjson.encode_sparse_array(nil, 'x')}"#, b"ERR user_script:3: bad argument #2 to 'encode_sparse_array' (number expected, got string)"),
        (r#"return {cjson.encode_sparse_array(nil, nil, -5)}"#, b"ERR user_script:3: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"),
        (r#"return {cjson.encode_sparse_array(nil, nil, nil, 1)}"#, b"ERR user_script:3: bad argument #4 to 'encode_sparse_array' (found too many arguments)"),
        (r#"cjson.encode_sparse_array(true) return cjson.encode({[1]=1, [100]=2})"#, b"{\"1\":1,\"100\":2}"),
        (r#"cjson.encode_sparse_array(false, 0) return cjson.encode({[1]=1, [100]=2})"#, b"[1,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,2]"),
        (r#"return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()}"#, b"{1000,1000,14,true,false,true}"),
        (r#"return cjson.encode_max_depth(0)"#, b"ERR user_script:3: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
        (r#"return cjson.encode_number_precision(15)"#, b"ERR user_script:3: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
        (r#"return cjson.encode_number_precision(0)"#, b"ERR user_script:3: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
        (r#"return cjson.encode_number_precision(2.9)"#, b"2"),
        (r#"return cjson.encode_number_precision('3')"#, b"3"),
        (r#"return cjson.encode_invalid_numbers('null')"#, b"null"),
        (r#"return cjson.encode_invalid_numbers('bad')"#, b"ERR user_script:3: bad argument #1 to 'encode_invalid_numbers' (invalid option 'bad')"),
        (r#"cjson.encode_invalid_numbers('null') return cjson.encode({0/0, 1/0, -1/0, 1})"#, b"[null,null,null,1]"),
        (r#"cjson.encode_invalid_numbers(true) return cjson.encode({0/0, 1/0, -1/0, 1})"#, b"[nan,inf,-inf,1]"),
        (r#"cjson.encode_invalid_numbers(true) return cjson.encode({[1/0]=1})"#, b"{\"inf\":1}"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('nan')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('0x10')"#, b"ERR user_script:3: Expected value but found invalid number at character 1"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('-inf')"#, b"ERR user_script:3: Expected value but found invalid number at character 1"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('-01')"#, b"ERR user_script:3: Expected value but found invalid number at character 1"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('-5.5')"#, b"-5.5"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('+5')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"cjson.decode_invalid_numbers(false) return cjson.decode('i')"#, b"ERR user_script:3: Expected value but found invalid token at character 1"),
        (r#"cjson.encode_max_depth(2) return cjson.encode({{1}})"#, b"[[1]]"),
        (r#"cjson.encode_max_depth(2) return cjson.encode({{{1}}})"#, b"ERR user_script:3: Cannot serialise, excessive nesting (3)"),
        (r#"cjson.decode_max_depth(2) return cjson.decode('[[1]]')[1][1]"#, b"1"),
        (r#"cjson.decode_max_depth(2) return cjson.decode('[[[1]]]')"#, b"ERR user_script:3: Found too many nested data structures (3) at character 3"),
        (r#"cjson.decode_max_depth(2) return cjson.decode('  [ [ {"a":1}]]')"#, b"ERR user_script:3: Found too many nested data structures (3) at character 7"),
        (r#"local c = cjson.new() c.encode_number_precision(2) return {c.encode(3.14159), cjson.encode(3.14159), c.null == cjson.null, c._NAME, c._VERSION, type(c.new)}"#, b"{3.1,3.14159,true,cjson,2.1.0,function}"),
        (r#"return {cjson._NAME, cjson._VERSION, type(cjson.null), tostring(cjson.null == nil)}"#, b"{cjson,2.1.0,userdata,false}"),
        (r#"return cjson.encode({cjson.null, cjson.null})"#, b"[null,null]"),
        (r#"return cjson.encode(coroutine.create(function() end))"#, b"ERR user_script:3: Cannot serialise thread: type not supported"),
        (r#"return {pcall(cjson.encode)}"#, b"{false,bad argument #1 to '?' (expected 1 argument)}"),
        (r#"return select(2, pcall(cjson.decode, '{'))"#, b"Expected object key string but found T_END at character 2"),
        (r#"local f = cjson.encode return f()"#, b"ERR user_script:3: bad argument #1 to 'f' (expected 1 argument)"),
        (r#"return cjson.encode({[1]='a', [2]='b', [3]='c', [5]='e'})"#, b"[\"a\",\"b\",\"c\",null,\"e\"]"),
        (r#"return cjson.encode({[1]='a', [2]='b', [3]='c', [7]='e'})"#, b"[\"a\",\"b\",\"c\",null,null,null,\"e\"]"),
        (r#"return cjson.encode({n = 1.5, [2] = 3})"#, b"{\"2\":3,\"n\":1.5}"),
        (r#"return cjson.encode_keep_buffer('off')"#, b"false"),
        (r#"return cjson.encode(string.rep('a', 10))"#, b"\"aaaaaaaaaa\""),
        (r#"return {cjson.decode('[]'), #cjson.decode('[]'), next(cjson.decode('{}'))}"#, b"{{},0}"),
        (r#"return cjson.decode('"\\u0000x"')"#, b"\x00x"),
        (r#"return #cjson.decode('"\\u0000x"')"#, b"2"),
        (r#"return cjson.decode('"\\uD834\\uDD1E"')"#, b"\xf0\x9d\x84\x9e"),
        (r#"return cjson.decode('"\\uD834\\u0041"')"#, b"ERR user_script:3: Expected value but found invalid unicode escape code at character 2"),
        (r#"return cjson.decode('"\\uDBFF\\uDFFF"')"#, b"\xf4\x8f\xbf\xbf"),
        (r#"return cjson.decode('[1,2,3')"#, b"ERR user_script:3: Expected comma or array end but found T_END at character 7"),
        (r#"return cjson.decode('{"a":1')"#, b"ERR user_script:3: Expected comma or object end but found T_END at character 7"),
        (r#"return cjson.decode('{"a"')"#, b"ERR user_script:3: Expected colon but found T_END at character 5"),
        (r#"return cjson.decode('{')"#, b"ERR user_script:3: Expected object key string but found T_END at character 2"),
        (r#"return cjson.decode('[')"#, b"ERR user_script:3: Expected value but found T_END at character 2"),
        (r#"return cjson.decode(']')"#, b"ERR user_script:3: Expected value but found T_ARR_END at character 1"),
        (r#"return cjson.decode('{"a":}')"#, b"ERR user_script:3: Expected value but found T_OBJ_END at character 6"),
        (r#"return cjson.decode('[,]')"#, b"ERR user_script:3: Expected value but found T_COMMA at character 2"),
        (r#"return cjson.decode('[1,,2]')"#, b"ERR user_script:3: Expected value but found T_COMMA at character 4"),
        (r#"return cjson.decode(':')"#, b"ERR user_script:3: Expected value but found T_COLON at character 1"),
        (r#"return cjson.decode('"\\u00"')"#, b"ERR user_script:3: Expected value but found invalid unicode escape code at character 2"),
        (r#"return cjson.decode('0x')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('0xg')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('1e+')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('1.5.5')"#, b"ERR user_script:3: Expected the end but found invalid token at character 4"),
        (r#"return cjson.decode('"a"   ')"#, b"a"),
        (r#"return cjson.decode('{"a":1, "a":2}').a"#, b"2"),
        (r#"return cjson.decode('0x.')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('0x.8')"#, b"0.5"),
        (r#"return cjson.decode('0X1')"#, b"1"),
        (r#"return cjson.decode('-0x')"#, b"ERR user_script:3: Expected the end but found invalid token at character 3"),
        (r#"return cjson.decode('0x1p')"#, b"ERR user_script:3: Expected the end but found invalid token at character 4"),
        (r#"return cjson.decode('0x1p+')"#, b"ERR user_script:3: Expected the end but found invalid token at character 4"),
        (r#"return cjson.decode('0x1.8p1')"#, b"3"),
        (r#"return cjson.decode('1.5e3')"#, b"1500"),
        (r#"return cjson.decode('0e')"#, b"ERR user_script:3: Expected the end but found invalid token at character 2"),
        (r#"return cjson.decode('0.e1')"#, b"0"),
        (r#"return cjson.decode('5.')"#, b"5"),
        (r#"return cjson.decode('infinit')"#, b"ERR user_script:3: Expected the end but found invalid token at character 4"),
        (r#"return cjson.decode('nan(')"#, b"ERR user_script:3: Expected the end but found invalid token at character 4"),
        (r#"return cjson.decode('nan()')"#, b"nan"),
        (r#"return cjson.decode('-nan')"#, b"-nan"),
        (r#"return cjson.decode('0x123456789abcdef12345')"#, b"8.5968058283707e+22"),
        (r#"return cjson.decode('0xFFFFFFFFFFFFFFFFFF')"#, b"4.7223664828696e+21"),
        (r#"local n = 0 for k in pairs(cjson) do n = n + 1 end return n"#, b"13"),
        (r#"local t = {} for k in pairs(cjson) do t[#t+1] = k end table.sort(t) return t"#, b"{_NAME,_VERSION,decode,decode_invalid_numbers,decode_max_depth,encode,encode_invalid_numbers,encode_keep_buffer,encode_max_depth,encode_number_precision,encode_sparse_array,new,null}"),
        (r#"return cjson.encode({true, false, 'x', 1.5, {a = {}}})"#, b"[true,false,\"x\",1.5,{\"a\":{}}]"),
        (r#"return cjson:encode()"#, b"ERR user_script:3: Cannot serialise function: type not supported"),
        (r#"return {pcall(cjson.decode, '[1,')}"#, b"{false,Expected value but found T_END at character 4}"),
        (r#"return cjson.encode(setmetatable({}, {__index = function() return 1 end}))"#, b"{}"),
        (r#"return cjson.encode(setmetatable({1, 2}, {__len = function() return 5 end}))"#, b"[1,2]"),
        (r#"return {cjson.decode_max_depth(1, 2)}"#, b"ERR user_script:3: bad argument #2 to 'decode_max_depth' (found too many arguments)"),
        (r#"return {cjson.encode_sparse_array(nil, 2, 3, 4)}"#, b"ERR user_script:3: bad argument #4 to 'encode_sparse_array' (found too many arguments)"),
        (r#"return cjson.encode_max_depth(2^31)"#, b"ERR user_script:3: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
        (r#"return cjson.encode_max_depth(2^32 + 5)"#, b"5"),
        (r#"return cjson.encode_invalid_numbers(1)"#, b"ERR user_script:3: bad argument #1 to 'encode_invalid_numbers' (invalid option '1')"),
        (r#"return {cjson.encode_invalid_numbers('on'), cjson.encode_invalid_numbers()}"#, b"{true,true}"),
        (r#"return {cjson.encode_invalid_numbers('null'), cjson.encode_invalid_numbers()}"#, b"{null,null}"),
        (r#"return {cjson.encode_invalid_numbers(false), cjson.encode_invalid_numbers()}"#, b"{false,false}"),
        (r#"return cjson.encode(string.rep('\1', 3))"#, b"\"\\u0001\\u0001\\u0001\""),
    ];

    #[test]
    fn matches_redis() {
        check_cases(REDIS_CASES);
    }
}
