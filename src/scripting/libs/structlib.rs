//! `struct`: Roberto Ierusalimschy's library for packing and unpacking binary data
//! (the 2018 version bundled with Redis), exposed to scripts as the global `struct`.
//!
//! Formats are read one option at a time: `>`/`<` set the byte order (little-endian by
//! default, the native order of the machines Redis runs on), `![n]` the maximum
//! alignment, `x` is a pad byte, `b B h H l L T i[n] I[n]` are integers of 1, 2, 8, 8
//! and `n` (default 4) bytes, `f d` floats, `c[n]` a fixed-size string, `s` a
//! zero-terminated string, and a space is ignored. Sizes are those of the LP64 C types.

use std::ffi::c_int;

use mlua::ffi;

use super::{
    c_f64_to_i64, c_f64_to_u64, check_bytes, check_number, check_stack, lua_fn, opt_integer,
    push_bytes, LResult, Raise,
};

/// Largest size accepted for `i<n>`/`I<n>`.
const MAX_INT_SIZE: usize = 32;
/// Default for `!` without a number: the strictest alignment a C type needs.
const MAX_ALIGN: usize = 8;

/// Byte order and alignment, changed by the control options.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A format string being read (it ends at its first zero byte, as a C string would).
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn next_opt(&mut self) -> Option<u8> {
        let c = self.peek();
        if c == 0 {
            None
        } else {
            self.i += 1;
            Some(c)
        }
    }

    /// Reads a decimal number if one follows, else returns `default`.
    fn number(&mut self, default: usize) -> LResult<usize> {
        if !self.peek().is_ascii_digit() {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while self.peek().is_ascii_digit() {
            let d = (self.peek() - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(Raise::msg("integral size overflow"));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }
}

/// The size of option `opt` (reading its number, if it takes one); 0 for options that
/// need no alignment.
fn opt_size(opt: u8, fmt: &mut Fmt) -> LResult<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => fmt.number(1)?,
        b'i' | b'I' => {
            let sz = fmt.number(4)?;
            if sz > MAX_INT_SIZE {
                return Err(Raise::msg(format!(
                    "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                )));
            }
            sz
        }
        _ => 0,
    })
}

/// Padding needed before an item of `size` bytes at offset `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// Applies a control option (endianness, alignment, space); anything else is an invalid
/// option.
fn control(opt: u8, fmt: &mut Fmt, h: &mut Header) -> LResult<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = fmt.number(MAX_ALIGN)?;
            if !(a > 0 && a & (a - 1) == 0) {
                return Err(Raise::msg(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            let mut m = b"invalid format option '".to_vec();
            m.push(opt);
            m.push(b'\'');
            return Err(Raise::arg(1, m));
        }
    }
    Ok(())
}

/// Appends `bytes` (in native little-endian order) in the byte order of `h`.
fn put_ordered(out: &mut Vec<u8>, bytes: &[u8], little: bool) {
    if little {
        out.extend_from_slice(bytes);
    } else {
        out.extend(bytes.iter().rev());
    }
}

/// The format string argument, cut at its first zero byte.
unsafe fn format_arg<'a>(l: *mut ffi::lua_State) -> LResult<Fmt<'a>> {
    let s = check_bytes(l, 1)?;
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    Ok(Fmt { s: &s[..end], i: 0 })
}

/// `struct.pack(fmt, ...)`.
unsafe fn pack(l: *mut ffi::lua_State) -> LResult {
    let mut fmt = format_arg(l)?;
    // The C code pushes a nil here (to separate the arguments from its string buffer),
    // so a missing first value reads as "got nil", not "got no value".
    ffi::lua_pushnil(l);
    let mut h = Header::new();
    let mut arg: c_int = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = fmt.next_opt() {
        let mut size = opt_size(opt, &mut fmt)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(l, arg)?;
                arg += 1;
                let mut v = if n < 0.0 {
                    c_f64_to_i64(n) as u64
                } else {
                    c_f64_to_u64(n)
                };
                let mut buf = [0u8; MAX_INT_SIZE];
                for b in buf[..size].iter_mut() {
                    *b = v as u8;
                    v >>= 8;
                }
                put_ordered(&mut out, &buf[..size], h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(l, arg)? as f32;
                arg += 1;
                put_ordered(&mut out, &f.to_le_bytes(), h.little);
            }
            b'd' => {
                let d = check_number(l, arg)?;
                arg += 1;
                put_ordered(&mut out, &d.to_le_bytes(), h.little);
            }
            b'c' | b's' => {
                let s = check_bytes(l, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C code names the argument after the string, not the string.
                    return Err(Raise::arg(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(opt, &mut fmt, &mut h)?,
        }
    }
    push_bytes(l, &out);
    Ok(1)
}

/// Reads an integer of `bytes.len()` bytes (at most 32; only the low 64 bits count).
fn get_integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let mut add = |b: &u8| v = (v << 8) | *b as u64;
    if little {
        bytes.iter().rev().for_each(&mut add);
    } else {
        bytes.iter().for_each(&mut add);
    }
    if !signed {
        return v as f64;
    }
    // The sign bit's position, taken modulo 64 as the x86 shift instruction does.
    let shift = (bytes.len() * 8).wrapping_sub(1) as u32;
    let mask = u64::MAX.wrapping_shl(shift);
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after them.
unsafe fn unpack(l: *mut ffi::lua_State) -> LResult {
    let mut fmt = format_arg(l)?;
    let data = check_bytes(l, 2)?;
    let ld = data.len();
    let mut pos = opt_integer(l, 3, 1)? as usize;
    if pos == 0 {
        return Err(Raise::arg(3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut n: c_int = 0;
    let mut h = Header::new();
    let too_short = || Raise::arg(2, "data string too short");
    while let Some(opt) = fmt.next_opt() {
        let mut size = opt_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(too_short());
        }
        check_stack(l, 2, "too many results")?;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                ffi::lua_pushnumber(l, v);
                n += 1;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                ffi::lua_pushnumber(l, f as f64);
                n += 1;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                ffi::lua_pushnumber(l, d);
                n += 1;
            }
            b'c' => {
                if size == 0 {
                    if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                        return Err(Raise::msg("format 'c0' needs a previous size"));
                    }
                    size = c_f64_to_u64(ffi::lua_tonumber(l, -1)) as usize;
                    ffi::lua_settop(l, -2);
                    n -= 1;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(too_short());
                    }
                }
                push_bytes(l, &data[pos..pos + size]);
                n += 1;
            }
            b's' => {
                let Some(z) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err(Raise::msg("unfinished string in data"));
                };
                size = z + 1;
                push_bytes(l, &data[pos..pos + z]);
                n += 1;
            }
            _ => control(opt, &mut fmt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos.wrapping_add(1) as ffi::lua_Integer);
    Ok(n + 1)
}

/// `struct.size(fmt)`: the size of what `fmt` packs; an error for variable sizes.
unsafe fn size(l: *mut ffi::lua_State) -> LResult {
    let mut fmt = format_arg(l)?;
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next_opt() {
        let size = opt_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            return Err(Raise::arg(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(Raise::arg(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos as ffi::lua_Integer);
    Ok(1)
}

lua_fn!(f_pack => pack);
lua_fn!(f_unpack => unpack);
lua_fn!(f_size => size);

/// Opens the library: `luaL_register(L, "struct", ...)`, which sets the global `struct`
/// and `_LOADED.struct`, and returns the table.
///
/// # Safety
/// A `lua_CFunction`: call it through Lua.
pub unsafe extern "C-unwind" fn luaopen_struct(l: *mut ffi::lua_State) -> c_int {
    use super::bit::{end_reg, reg};
    let funcs = [
        reg(c"pack", f_pack),
        reg(c"unpack", f_unpack),
        reg(c"size", f_size),
        end_reg(),
    ];
    ffi::luaL_register(l, c"struct".as_ptr(), funcs.as_ptr());
    1
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check_cases, eval, eval_in, lua, lua_num, lua_str, DEQ};
    use rand::{Rng, SeedableRng};

    #[test]
    fn basics_as_redis() {
        // Expected values observed on Redis 7.0.15.
        assert_eq!(eval("return hx(struct.pack('>I3', 0x123456))"), "123456");
        assert_eq!(
            eval("return hx(struct.pack('!4bi', 1, 2))"),
            "0100000002000000"
        );
        assert_eq!(
            eval("return {struct.unpack('Bc0', '\\3abcdef')}"),
            "{abc,5}"
        );
        assert_eq!(eval("return struct.size('>!8bidhHlLTfx')"), "53");
        assert_eq!(
            eval("return struct.pack('q')"),
            "ERR user_script:3: bad argument #1 to 'pack' (invalid format option 'q')"
        );
    }

    /// A random integer that fits `bytes` bytes (and a double).
    fn int_for(rng: &mut impl Rng, bytes: u32, signed: bool) -> i64 {
        let bits = (bytes * 8).min(53);
        if signed {
            let half = 1i64 << (bits - 1);
            rng.gen_range(-half..half)
        } else {
            rng.gen_range(0..(1i64 << bits.min(52)))
        }
    }

    #[test]
    fn random_round_trips() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x57c);
        let lua = lua();
        for _ in 0..300 {
            let mut fmt = String::new();
            let mut vals = Vec::new();
            let mut fixed = true;
            for _ in 0..rng.gen_range(1..12) {
                match rng.gen_range(0..12) {
                    0 => fmt.push_str(["<", ">", "!", "!2", "!4", "!8", " "][rng.gen_range(0..7)]),
                    1 => fmt.push('x'),
                    2 => {
                        let (c, n, s) = [
                            ('b', 1, true),
                            ('B', 1, false),
                            ('h', 2, true),
                            ('H', 2, false),
                            ('l', 8, true),
                            ('L', 8, false),
                            ('T', 8, false),
                        ][rng.gen_range(0..7)];
                        fmt.push(c);
                        vals.push(lua_num(int_for(&mut rng, n, s) as f64));
                    }
                    3 | 4 => {
                        let n = rng.gen_range(1..=8);
                        let signed = rng.gen_bool(0.5);
                        fmt.push_str(&format!("{}{n}", if signed { 'i' } else { 'I' }));
                        vals.push(lua_num(int_for(&mut rng, n, signed) as f64));
                    }
                    5 => {
                        fmt.push('i');
                        vals.push(lua_num(int_for(&mut rng, 4, true) as f64));
                    }
                    6 => {
                        fmt.push('f');
                        let f = f32::from_bits(rng.gen());
                        vals.push(lua_num(if f.is_finite() { f as f64 } else { 1.5 }));
                    }
                    7 => {
                        fmt.push('d');
                        let d = f64::from_bits(rng.gen());
                        vals.push(lua_num(if d.is_finite() { d } else { -2.25 }));
                    }
                    8 => {
                        fixed = false;
                        fmt.push('s');
                        let s: Vec<u8> = (0..rng.gen_range(0..20))
                            .map(|_| rng.gen_range(1..=255))
                            .collect();
                        vals.push(lua_str(&s));
                    }
                    _ => {
                        let n = rng.gen_range(1..20);
                        fmt.push_str(&format!("c{n}"));
                        let s: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                        vals.push(lua_str(&s));
                    }
                }
            }
            let code = format!(
                "{DEQ} local fmt, v = '{fmt}', {{{}}} \
                 local s = struct.pack(fmt, unpack(v)) local r = {{struct.unpack(fmt, s)}} \
                 local nxt = table.remove(r) \
                 return tostring(deq(r, v) and nxt == #s + 1 and ({fixed} == false or struct.size(fmt) == #s))",
                vals.join(",")
            );
            assert_eq!(eval_in(&lua, &code), "true", "{code}");
        }
    }

    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the
    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).
    const REDIS_CASES: &[(&str, &[u8])] = &[
        (r#"return {hx(struct.pack('<L', 0/0)), hx(struct.pack('<L', 2^64)), hx(struct.pack('<L', 2^63+4096)), hx(struct.pack('<L', 2^70)), hx(struct.pack('<l', -2^70)), hx(struct.pack('<i16', -1)), hx(struct.pack('>I3', 0x123456)), hx(struct.pack('!4bi', 1, 2)), hx(struct.pack('<L', 1/0)), hx(struct.pack('<L', -1/0)), hx(struct.pack('<L', 1.9)), hx(struct.pack('<l', -1.9)),hx(struct.pack('<i0', 5))}"#, b"{0000000000000080,0000000000000000,0010000000000080,0000000000000000,0000000000000080,ffffffffffffffff0000000000000000,123456,0100000002000000,0000000000000000,0000000000000080,0100000000000000,ffffffffffffffff,}"),
        (r#"return {struct.unpack('<i16', string.rep('\255', 16))}"#, b"{-1,17}"),
        (r#"return {struct.unpack('<I16', string.rep('\255', 16))}"#, b"{1.844674407371e+19,17}"),
        (r#"return {struct.unpack('<i0', 'abc')}"#, b"{0,1}"),
        (r#"return struct.size('q')"#, b"0"),
        (r#"return struct.pack('c2', 'a')"#, b"ERR user_script:3: bad argument #3 to 'pack' (string too short)"),
        (r#"return struct.unpack('c0', 'abc')"#, b"ERR user_script:3: format 'c0' needs a previous size"),
        (r#"return struct.unpack('b', 'abc', 0)"#, b"ERR user_script:3: bad argument #3 to 'unpack' (offset must be 1 or greater)"),
        (r#"return struct.unpack('b', 'abc', -1)"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return struct.unpack('s', 'abc')"#, b"ERR user_script:3: unfinished string in data"),
        (r#"return struct.pack('!3')"#, b"ERR user_script:3: alignment 3 is not a power of 2"),
        (r#"return struct.pack('i33')"#, b"ERR user_script:3: integral size 33 is larger than limit of 32"),
        (r#"return struct.size('s')"#, b"ERR user_script:3: bad argument #1 to 'size' (option 's' has no fixed size)"),
        (r#"return struct.size('c0')"#, b"ERR user_script:3: bad argument #1 to 'size' (option 'c0' has no fixed size)"),
        (r#"return struct.pack('i99999999999')"#, b"ERR user_script:3: integral size overflow"),
        (r#"return {struct.unpack('Bc0', '\3abcdef')}"#, b"{abc,5}"),
        (r#"return {struct.unpack('c1c0', '3abcdef')}"#, b"{abc,5}"),
        (r#"return struct.pack('\200')"#, b"ERR user_script:3: bad argument #1 to 'pack' (invalid format option '\xc8')"),
        (r#"return hx(struct.pack('>!8bidhHlLTfx', -1, 2, 3.5, -4, 5, -6, 7, 8, 1.5))"#, b"ff00000000000002400c000000000000fffc000500000000fffffffffffffffa000000000000000700000000000000083fc0000000"),
        (r#"return {struct.unpack('>!8bidhHlLTfx', struct.pack('>!8bidhHlLTfx', -1, 2, 3.5, -4, 5, -6, 7, 8, 1.5))}"#, b"{-1,2,3.5,-4,5,-6,7,8,1.5,54}"),
        (r#"return struct.size('>!8bidhHlLTfx')"#, b"53"),
        (r#"return struct.size('!bd')"#, b"16"),
        (r#"return struct.size('!2bd')"#, b"10"),
        (r#"return struct.size('i3i3!4i3i')"#, b"16"),
        (r#"return hx(struct.pack('i3!4i3i', 1,2,3))"#, b"010000020000000003000000"),
        (r#"return {struct.unpack('s s', 'ab\0cd\0ef')}"#, b"{ab,cd,7}"),
        (r#"return hx(struct.pack('szc0c3', 'ab', 'x', 'abc'))"#, b"ERR user_script:3: bad argument #1 to 'pack' (invalid format option 'z')"),
        (r#"return struct.pack('z', 'ab')"#, b"ERR user_script:3: bad argument #1 to 'pack' (invalid format option 'z')"),
        (r#"return struct.pack()"#, b"ERR user_script:3: bad argument #1 to 'pack' (string expected, got no value)"),
        (r#"return struct.pack('i')"#, b"ERR user_script:3: bad argument #2 to 'pack' (number expected, got nil)"),
        (r#"return struct.pack('i', 'x')"#, b"ERR user_script:3: bad argument #2 to 'pack' (number expected, got string)"),
        (r#"return struct.pack('i', '12')"#, b"\x0c\x00\x00\x00"),
        (r#"return struct.unpack('i')"#, b"ERR user_script:3: bad argument #2 to 'unpack' (string expected, got no value)"),
        (r#"return struct.unpack('i', 'abcd', 'x')"#, b"ERR user_script:3: bad argument #3 to 'unpack' (number expected, got string)"),
        (r#"return {struct.unpack('i', 'abcdabcd', 5)}"#, b"{1684234849,9}"),
        (r#"return {struct.unpack('i', 'abcdabcd', 5.9)}"#, b"{1684234849,9}"),
        (r#"return {struct.unpack('<I2I', '\1\0\2\0\0\0')}"#, b"{1,2,7}"),
        (r#"return {struct.unpack('>h', '\255\254')}"#, b"{-2,3}"),
        (r#"return {struct.unpack('<f', struct.pack('<f', 0.1))}"#, b"{0.10000000149012,5}"),
        (r#"return {struct.unpack('<d', struct.pack('<d', 0.1))}"#, b"{0.1,9}"),
        (r#"return {struct.unpack('<c0', '\3abc')}"#, b"ERR user_script:3: format 'c0' needs a previous size"),
        (r#"return {struct.unpack('Bc0', '\9abc')}"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return {struct.unpack('i', 'abc', 3)}"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return {struct.unpack('', 'abc', 10)}"#, b"{10}"),
        (r#"return {struct.unpack('xxx', 'abc')}"#, b"{4}"),
        (r#"return {struct.unpack('xxxx', 'abc')}"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return struct.size(' <>!')"#, b"0"),
        (r#"return struct.size('!0')"#, b"ERR user_script:3: alignment 0 is not a power of 2"),
        (r#"return struct.size('!16i')"#, b"4"),
        (r#"return struct.size(12)"#, b"0"),
        (r#"return struct.size()"#, b"ERR user_script:3: bad argument #1 to 'size' (string expected, got no value)"),
        (r#"return {struct.unpack('b', 'a', 1e30)}"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return hx(struct.pack('<I32', 2^60))"#, b"0000000000000010000000000000000000000000000000000000000000000000"),
        (r#"return {struct.unpack('<i32', struct.pack('<i32', -5))}"#, b"{-5,33}"),
        (r#"return struct.pack('<i', 2^31)"#, b"\x00\x00\x00\x80"),
        (r#"local n = 0 for k in pairs(struct) do n = n + 1 end return n"#, b"3"),
        (r#"local t = {} for k in pairs(struct) do t[#t+1] = k end table.sort(t) return t"#, b"{pack,size,unpack}"),
        (r#"return struct.unpack('>i', '\0\0\0\1', 2^53)"#, b"ERR user_script:3: bad argument #2 to 'unpack' (data string too short)"),
        (r#"return struct.unpack('>i', '\0\0\0\1', '1')"#, b"1"),
        (r#"return struct.unpack('>i', '\0\0\0\1', 'x')"#, b"ERR user_script:3: bad argument #3 to 'unpack' (number expected, got string)"),
        (r#"return {struct.unpack('>i', '\0\0\0\1', nil)}"#, b"{1,5}"),
        (r#"return struct.pack('>i', {})"#, b"ERR user_script:3: bad argument #2 to 'pack' (number expected, got table)"),
        (r#"return struct.pack('s', 1)"#, b"1\x00"),
    ];

    #[test]
    fn matches_redis() {
        check_cases(REDIS_CASES);
    }
}
