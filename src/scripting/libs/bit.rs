//! `bit`: LuaBitOp 1.0.2, the bitwise operations library Redis ships for scripts.
//!
//! Every operand is first normalized to a 32-bit integer the way LuaBitOp does it for
//! `double` numbers: add 2^52 + 2^51 and keep the low 32 bits of the result's IEEE
//! representation. That rounds non-integral numbers to nearest-even and wraps large
//! ones modulo 2^32. Results are returned as signed 32-bit numbers.

use std::ffi::c_int;

use mlua::ffi;

use super::{lua_fn, type_error, LResult};

/// Normalizes argument `idx` to 32 bits, as LuaBitOp's `barg`: a value that is not a
/// number (nor a string convertible to one) is an error only when it normalizes to 0,
/// which for such values it always does.
unsafe fn barg(l: *mut ffi::lua_State, idx: c_int) -> LResult<u32> {
    let n = ffi::lua_tonumber(l, idx);
    let b = tobit(n);
    if b == 0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(type_error(l, idx, "number"));
    }
    Ok(b)
}

/// The 32-bit normalization of a Lua number (see the module documentation).
pub fn tobit(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

unsafe fn ret(l: *mut ffi::lua_State, b: u32) -> LResult {
    ffi::lua_pushnumber(l, b as i32 as f64);
    Ok(1)
}

unsafe fn do_tobit(l: *mut ffi::lua_State) -> LResult {
    ret(l, barg(l, 1)?)
}

unsafe fn do_bnot(l: *mut ffi::lua_State) -> LResult {
    ret(l, !barg(l, 1)?)
}

/// Folds `op` over all arguments, from the last down to the second, onto the first.
unsafe fn fold(l: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> LResult {
    let mut b = barg(l, 1)?;
    let mut i = ffi::lua_gettop(l);
    while i > 1 {
        b = op(b, barg(l, i)?);
        i -= 1;
    }
    ret(l, b)
}

unsafe fn do_band(l: *mut ffi::lua_State) -> LResult {
    fold(l, |a, b| a & b)
}

unsafe fn do_bor(l: *mut ffi::lua_State) -> LResult {
    fold(l, |a, b| a | b)
}

unsafe fn do_bxor(l: *mut ffi::lua_State) -> LResult {
    fold(l, |a, b| a ^ b)
}

/// A shift or rotation by the second argument, taken modulo 32.
unsafe fn shift(l: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> LResult {
    let b = barg(l, 1)?;
    let n = barg(l, 2)? & 31;
    ret(l, op(b, n))
}

unsafe fn do_lshift(l: *mut ffi::lua_State) -> LResult {
    shift(l, |b, n| b << n)
}

unsafe fn do_rshift(l: *mut ffi::lua_State) -> LResult {
    shift(l, |b, n| b >> n)
}

unsafe fn do_arshift(l: *mut ffi::lua_State) -> LResult {
    shift(l, |b, n| ((b as i32) >> n) as u32)
}

unsafe fn do_rol(l: *mut ffi::lua_State) -> LResult {
    shift(l, |b, n| b.rotate_left(n))
}

unsafe fn do_ror(l: *mut ffi::lua_State) -> LResult {
    shift(l, |b, n| b.rotate_right(n))
}

unsafe fn do_bswap(l: *mut ffi::lua_State) -> LResult {
    ret(l, barg(l, 1)?.swap_bytes())
}

/// `bit.tohex(x [, n])`: the low `|n|` hex digits of `x` (8 by default, at most 8),
/// uppercase when `n` is negative.
unsafe fn do_tohex(l: *mut ffi::lua_State) -> LResult {
    let mut b = barg(l, 1)?;
    let n: i32 = if ffi::lua_isnone(l, 2) != 0 {
        8
    } else {
        barg(l, 2)? as i32
    };
    let digits: &[u8; 16] = if n < 0 {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // |-2^31| is 2^31 here; Redis's build also gives 8 digits for it.
    let n = n.unsigned_abs().min(8) as usize;
    let mut buf = [0u8; 8];
    for slot in buf[..n].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    super::push_bytes(l, &buf[..n]);
    Ok(1)
}

lua_fn!(f_tobit => do_tobit);
lua_fn!(f_bnot => do_bnot);
lua_fn!(f_band => do_band);
lua_fn!(f_bor => do_bor);
lua_fn!(f_bxor => do_bxor);
lua_fn!(f_lshift => do_lshift);
lua_fn!(f_rshift => do_rshift);
lua_fn!(f_arshift => do_arshift);
lua_fn!(f_rol => do_rol);
lua_fn!(f_ror => do_ror);
lua_fn!(f_bswap => do_bswap);
lua_fn!(f_tohex => do_tohex);

/// Opens the library: `luaL_register(L, "bit", ...)`, which sets the global `bit` and
/// `_LOADED.bit`, and returns the table.
///
/// # Safety
/// A `lua_CFunction`: call it through Lua.
pub unsafe extern "C-unwind" fn luaopen_bit(l: *mut ffi::lua_State) -> c_int {
    let funcs = [
        reg(c"tobit", f_tobit),
        reg(c"bnot", f_bnot),
        reg(c"band", f_band),
        reg(c"bor", f_bor),
        reg(c"bxor", f_bxor),
        reg(c"lshift", f_lshift),
        reg(c"rshift", f_rshift),
        reg(c"arshift", f_arshift),
        reg(c"rol", f_rol),
        reg(c"ror", f_ror),
        reg(c"bswap", f_bswap),
        reg(c"tohex", f_tohex),
        end_reg(),
    ];
    ffi::luaL_register(l, c"bit".as_ptr(), funcs.as_ptr());
    1
}

/// One entry of a `luaL_Reg` list.
pub(crate) fn reg(name: &'static std::ffi::CStr, f: ffi::lua_CFunction) -> ffi::luaL_Reg {
    ffi::luaL_Reg {
        name: name.as_ptr(),
        func: f,
    }
}

/// The terminating entry of a `luaL_Reg` list (Lua stops at the null name; the
/// function pointer, which cannot be null in Rust, is never looked at).
pub(crate) fn end_reg() -> ffi::luaL_Reg {
    ffi::luaL_Reg {
        name: std::ptr::null(),
        func: f_tobit,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{check_cases, eval, eval_in, lua, lua_num};
    use rand::{Rng, SeedableRng};

    #[test]
    fn basics_as_redis() {
        // Expected values observed on Redis 7.0.15.
        assert_eq!(eval("return bit.tobit(2^32+5)"), "5");
        assert_eq!(eval("return bit.tohex(255, -4)"), "00FF");
        assert_eq!(eval("return bit.tohex(-1)"), "ffffffff");
        assert_eq!(eval("return bit.bxor(1, 2, 4, 8)"), "15");
        assert_eq!(eval("return bit.arshift(-256, 4)"), "-16");
        assert_eq!(eval("return bit.rshift(-256, 4)"), "268435440");
        assert_eq!(eval("return bit.bswap(0x12345678)"), "2018915346");
        assert_eq!(
            eval("return bit.band(1, 2, 'x')"),
            "ERR user_script:3: bad argument #3 to 'band' (number expected, got string)"
        );
    }

    /// Integral operands below 2^51 in magnitude normalize to their value modulo 2^32.
    #[test]
    fn random_ops_match_model() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0xb17);
        let lua = lua();
        for _ in 0..300 {
            let x: i64 = rng.gen_range(-(1i64 << 50)..(1i64 << 50));
            let y: i64 = rng.gen_range(-(1i64 << 40)..(1i64 << 40));
            let n: u32 = rng.gen_range(0..64);
            let (a, b) = (x as u32, y as u32);
            let s = n & 31;
            let want = [
                a as i32,
                !a as i32,
                (a & b) as i32,
                (a | b) as i32,
                (a ^ b) as i32,
                (a << s) as i32,
                (a >> s) as i32,
                (a as i32) >> s,
                a.rotate_left(s) as i32,
                a.rotate_right(s) as i32,
                a.swap_bytes() as i32,
            ];
            let want = format!(
                "{{{}}}",
                want.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let (x, y) = (lua_num(x as f64), lua_num(y as f64));
            let code = format!(
                "local x, y, n = {x}, {y}, {n} return {{bit.tobit(x), bit.bnot(x), \
                 bit.band(x, y), bit.bor(x, y), bit.bxor(x, y), bit.lshift(x, n), \
                 bit.rshift(x, n), bit.arshift(x, n), bit.rol(x, n), bit.ror(x, n), \
                 bit.bswap(x)}}"
            );
            assert_eq!(eval_in(&lua, &code), want, "{code}");
            assert_eq!(
                eval_in(&lua, &format!("return bit.tohex({x})")),
                format!("{:08x}", x.parse::<f64>().unwrap() as i64 as u32)
            );
        }
    }

    #[test]
    fn tobit_matches_reference_formula() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..1000 {
            let x: i64 = rng.gen_range(-(1i64 << 40)..(1i64 << 40));
            assert_eq!(super::tobit(x as f64), x as u32);
        }
    }

    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the
    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).
    const REDIS_CASES: &[(&str, &[u8])] = &[
        (
            r#"return {bit.tobit(2^32+5), bit.tobit(-1), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit(2^53+3), bit.tobit('0x10'), bit.tohex(-1), bit.tohex(255,-4), bit.tohex(255, 2), bit.tohex(65535, 12), bit.tohex(1,0)}"#,
            b"{5,-1,2,2,-2,2,16,ffffffff,00FF,ff,0000ffff,}",
        ),
        (
            r#"return bit.band()"#,
            b"ERR user_script:3: bad argument #1 to 'band' (number expected, got no value)",
        ),
        (
            r#"return bit.tobit()"#,
            b"ERR user_script:3: bad argument #1 to 'tobit' (number expected, got no value)",
        ),
        (
            r#"return bit.tobit('abc')"#,
            b"ERR user_script:3: bad argument #1 to 'tobit' (number expected, got string)",
        ),
        (
            r#"return bit.lshift(1)"#,
            b"ERR user_script:3: bad argument #2 to 'lshift' (number expected, got no value)",
        ),
        (
            r#"return {bit.rol(1,33), bit.ror(1,1), bit.arshift(-256,4), bit.rshift(-256,4), bit.bswap(0x12345678), bit.bnot(0), bit.bxor(1,2,4,8)}"#,
            b"{2,-2147483648,-16,268435440,2018915346,-1,15}",
        ),
        (
            r#"return {bit.tobit(0/0), bit.tobit(1/0), bit.tobit(-1/0), bit.tobit(2^31), bit.tobit(-2^31-1), bit.tobit(1e300), bit.tobit(-0.5), bit.tobit(0.5), bit.tobit(1e15+0.5), bit.tobit(4294967295.5)}"#,
            b"{0,0,0,-2147483648,2147483647,-2013235812,0,0,-1530494976,0}",
        ),
        (
            r#"return {bit.band(0xff, 0x0f, 0x3), bit.bor(1), bit.band(1, 'x')}"#,
            b"ERR user_script:3: bad argument #2 to 'band' (number expected, got string)",
        ),
        (
            r#"return bit.band(1, 2, 'x')"#,
            b"ERR user_script:3: bad argument #3 to 'band' (number expected, got string)",
        ),
        (
            r#"return bit.band(1, 2, {})"#,
            b"ERR user_script:3: bad argument #3 to 'band' (number expected, got table)",
        ),
        (
            r#"return bit.band(1, nil)"#,
            b"ERR user_script:3: bad argument #2 to 'band' (number expected, got nil)",
        ),
        (
            r#"return bit.band(1, 0, 'x')"#,
            b"ERR user_script:3: bad argument #3 to 'band' (number expected, got string)",
        ),
        (
            r#"return bit.tohex('x')"#,
            b"ERR user_script:3: bad argument #1 to 'tohex' (number expected, got string)",
        ),
        (
            r#"return {bit.tohex(0x1234, 'x')}"#,
            b"ERR user_script:3: bad argument #2 to 'tohex' (number expected, got string)",
        ),
        (
            r#"return {bit.tohex(0x1234, '-3'), bit.tohex(-2, 9), bit.tohex(-2, -9)}"#,
            b"{234,fffffffe,FFFFFFFE}",
        ),
        (
            r#"return {bit.lshift(1, 31), bit.lshift(1, 32), bit.lshift(1, -1), bit.rshift(-1, 0), bit.arshift(-1, 31), bit.rol(0x80000000, 1), bit.ror(1, -1)}"#,
            b"{-2147483648,1,-2147483648,-1,-1,1,2}",
        ),
        (
            r#"return {bit.bnot(-1.5), bit.bswap(-1), bit.bswap(1)}"#,
            b"{1,-1,16777216}",
        ),
        (r#"return bit.tohex(1, -2^31)"#, b"00000001"),
        (
            r#"return {type(bit), type(bit.tobit), bit.tobit(true)}"#,
            b"ERR user_script:3: bad argument #1 to 'tobit' (number expected, got boolean)",
        ),
        (
            r#"return bit.tobit(true)"#,
            b"ERR user_script:3: bad argument #1 to 'tobit' (number expected, got boolean)",
        ),
        (r#"return (bit.tobit(' 12 '))"#, b"12"),
        (
            r#"return {bit.tohex(255, -2^31), bit.tohex(255, 2^31)}"#,
            b"{000000FF,000000FF}",
        ),
        (
            r#"return bit.tohex(1, nil)"#,
            b"ERR user_script:3: bad argument #2 to 'tohex' (number expected, got nil)",
        ),
    ];

    #[test]
    fn matches_redis() {
        check_cases(REDIS_CASES);
    }
}
