//! The Lua libraries Redis 7.0 gives EVAL scripts, rewritten in Rust: `cjson`
//! (lua-cjson 2.1.0), `cmsgpack` (lua-cmsgpack 0.4.0), `bit` (LuaBitOp 1.0.2) and
//! `struct` (Roberto Ierusalimschy's struct library).
//!
//! Each library is written against the raw Lua 5.1 C API (`mlua::ffi`) rather than
//! mlua's callback layer, for one reason: errors. A C library raises a Lua *string*
//! (`"bad argument #1 to 'encode' (expected 1 argument)"`, prefixed with the caller's
//! `chunk:line: `), and scripts see exactly that string from `pcall`; mlua callbacks
//! raise a userdata instead, and cannot name the function the way `luaL_argerror` does.
//!
//! Every exported function is a thin `extern "C-unwind"` shim around a Rust function
//! returning `Result<c_int, Raise>`. The Rust function never raises a Lua error itself;
//! the shim raises only after the Rust function has returned and dropped everything it
//! owned, so the `longjmp` Lua uses for errors crosses no Rust frame with destructors.

use std::ffi::{c_int, CStr};

use mlua::ffi;

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

/// Installs the globals `cjson`, `struct`, `cmsgpack` and `bit` into `lua`, in the order
/// Redis loads them.
///
/// As in Redis, `bit` and `struct` are registered with `luaL_register` (a global and an
/// entry in the registry's `_LOADED` table), while `cjson` and `cmsgpack` only set their
/// global. Redis does not load the `package` library, so scripts cannot see `_LOADED`.
pub fn register_all(lua: &mlua::Lua) -> mlua::Result<()> {
    let openers: [ffi::lua_CFunction; 4] = [
        cjson::luaopen_cjson,
        structlib::luaopen_struct,
        cmsgpack::luaopen_cmsgpack,
        bit::luaopen_bit,
    ];
    for open in openers {
        // SAFETY: each opener is a well-behaved Lua C function.
        let f = unsafe { lua.create_c_function(open)? };
        f.call::<()>(())?;
    }
    Ok(())
}

/// An error to raise from a library function once its Rust frames are gone.
#[derive(Debug)]
pub(crate) enum Raise {
    /// `luaL_argerror(L, n, msg)`: `bad argument #n to 'name' (msg)`.
    Arg(c_int, Vec<u8>),
    /// `luaL_error(L, msg)`: the message prefixed with the caller's `chunk:line: `.
    Msg(Vec<u8>),
    /// `lua_error` with the message as is (what the VM raises for `t[nil] = v`).
    Plain(Vec<u8>),
}

impl Raise {
    /// A `luaL_error` message.
    pub(crate) fn msg(m: impl Into<Vec<u8>>) -> Self {
        Raise::Msg(m.into())
    }

    /// A `luaL_argerror` for argument `n`.
    pub(crate) fn arg(n: c_int, m: impl Into<Vec<u8>>) -> Self {
        Raise::Arg(n, m.into())
    }
}

/// The result type of the Rust side of every library function: the number of results
/// left on the Lua stack, or the error to raise.
pub(crate) type LResult<T = c_int> = Result<T, Raise>;

/// Pushes `bytes` as a Lua string.
pub(crate) unsafe fn push_bytes(l: *mut ffi::lua_State, bytes: &[u8]) {
    ffi::lua_pushlstring_(l, bytes.as_ptr().cast(), bytes.len());
}

/// Turns the result of a library function into what a `lua_CFunction` returns, raising
/// the Lua error if there is one. Never returns on error.
pub(crate) unsafe fn finish(l: *mut ffi::lua_State, r: LResult) -> c_int {
    match r {
        Ok(n) => n,
        Err(e) => {
            let how = push_raise(l, e);
            throw(l, how)
        }
    }
}

/// How to raise the message [`push_raise`] pushed.
#[derive(Clone, Copy)]
enum How {
    Arg(c_int),
    Where,
    Plain,
}

/// Pushes the message of `e`, consuming it so that nothing owned survives.
unsafe fn push_raise(l: *mut ffi::lua_State, e: Raise) -> How {
    let (how, msg) = match e {
        Raise::Arg(n, msg) => (How::Arg(n), msg),
        Raise::Msg(msg) => (How::Where, msg),
        Raise::Plain(msg) => (How::Plain, msg),
    };
    push_bytes(l, &msg);
    how
}

/// Raises the message on the top of the stack as `luaL_argerror`, `luaL_error` or
/// `lua_error` would. Holds nothing with a destructor.
unsafe fn throw(l: *mut ffi::lua_State, how: How) -> ! {
    match how {
        How::Arg(n) => {
            let msg = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
            ffi::luaL_argerror(l, n, msg);
            unreachable!("luaL_argerror returned")
        }
        How::Where => {
            ffi::luaL_where(l, 1);
            ffi::lua_insert(l, -2);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        }
        How::Plain => ffi::lua_error(l),
    }
}

/// The type name of the value at `idx` (`"no value"` when absent), as `luaL_typename`.
pub(crate) unsafe fn type_name(l: *mut ffi::lua_State, idx: c_int) -> String {
    let p = ffi::lua_typename(l, ffi::lua_type(l, idx));
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// `luaL_typerror`: `"<expected> expected, got <actual>"` for argument `idx`.
pub(crate) unsafe fn type_error(l: *mut ffi::lua_State, idx: c_int, expected: &str) -> Raise {
    Raise::arg(idx, format!("{expected} expected, got {}", type_name(l, idx)))
}

/// `luaL_checknumber`.
pub(crate) unsafe fn check_number(l: *mut ffi::lua_State, idx: c_int) -> LResult<f64> {
    let d = ffi::lua_tonumber(l, idx);
    if d == 0.0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(type_error(l, idx, "number"));
    }
    Ok(d)
}

/// `luaL_checkinteger` (Lua 5.1: the number truncated toward zero).
pub(crate) unsafe fn check_integer(l: *mut ffi::lua_State, idx: c_int) -> LResult<i64> {
    let d = ffi::lua_tointeger_(l, idx);
    if d == 0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(type_error(l, idx, "number"));
    }
    Ok(d as i64)
}

/// `luaL_optinteger`.
pub(crate) unsafe fn opt_integer(l: *mut ffi::lua_State, idx: c_int, def: i64) -> LResult<i64> {
    if ffi::lua_isnoneornil(l, idx) != 0 {
        Ok(def)
    } else {
        check_integer(l, idx)
    }
}

/// `luaL_checklstring`: the bytes of the string at `idx` (numbers are converted in
/// place, as in C). The slice lives as long as the value stays on the stack.
pub(crate) unsafe fn check_bytes<'a>(l: *mut ffi::lua_State, idx: c_int) -> LResult<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        return Err(type_error(l, idx, "string"));
    }
    Ok(std::slice::from_raw_parts(p.cast(), len))
}

/// The bytes of the string (or number) at `idx`, if it is one.
pub(crate) unsafe fn to_bytes<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p.cast(), len))
    }
}

/// `luaL_checkstack`'s error when the stack cannot grow.
pub(crate) unsafe fn check_stack(l: *mut ffi::lua_State, n: c_int, what: &str) -> LResult<()> {
    if ffi::lua_checkstack(l, n) == 0 {
        return Err(Raise::msg(format!("stack overflow ({what})")));
    }
    Ok(())
}

/// Defines the `extern "C-unwind"` shim `$name` around the Rust function `$body`.
macro_rules! lua_fn {
    ($(#[$m:meta])* $name:ident => $body:path) => {
        $(#[$m])*
        pub(crate) unsafe extern "C-unwind" fn $name(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
            $crate::scripting::libs::finish(l, $body(l))
        }
    };
}
pub(crate) use lua_fn;

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the libraries' tests.

    /// A fresh Lua state with the base libraries and the four Redis libraries.
    pub fn lua() -> mlua::Lua {
        let lua = mlua::Lua::new();
        super::register_all(&lua).unwrap();
        lua
    }

    /// Runs `code` (a chunk named `user_script`, as Redis names scripts) and renders its
    /// first result: strings verbatim, numbers with Lua's `tostring`, errors as `ERR <msg>`.
    pub fn eval_in(lua: &mlua::Lua, code: &str) -> String {
        let wrapped = format!(
            "local ok, r = pcall(function() {code}\nend) \
             if not ok then return 'ERR ' .. tostring(r) end \
             if type(r) == 'string' then return r end return tostring(r)"
        );
        lua.load(wrapped)
            .set_name("=user_script")
            .eval::<mlua::String>()
            .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
            .unwrap_or_else(|e| format!("RUSTERR {e}"))
    }

    /// [`eval_in`] on a fresh state.
    pub fn eval(code: &str) -> String {
        eval_in(&lua(), code)
    }

    /// Differential testing against a real Redis: runs every script of
    /// `/tmp/ldiff/scripts.bin` (length-prefixed chunks) in a fresh state and writes
    /// their string results to `/tmp/ldiff/ours.bin` in the same format.
    #[test]
    #[ignore]
    fn diff_runner() {
        let data = std::fs::read("/tmp/ldiff/scripts.bin").unwrap();
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let nl = i + data[i..].iter().position(|&c| c == b'\n').unwrap();
            let n: usize = std::str::from_utf8(&data[i..nl]).unwrap().parse().unwrap();
            let script = &data[nl + 1..nl + 1 + n];
            i = nl + 1 + n;
            let lua = lua();
            let r = lua
                .load(script)
                .set_name("=user_script")
                .eval::<mlua::String>()
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_else(|e| format!("RUSTERR {e}").into_bytes());
            out.extend_from_slice(format!("{}\n", r.len()).as_bytes());
            out.extend_from_slice(&r);
        }
        std::fs::write("/tmp/ldiff/ours.bin", out).unwrap();
    }
}

/// A C cast `(int64_t)x` as compiled for x86-64 (`cvttsd2si`): truncation toward zero,
/// and `i64::MIN` for NaN and out-of-range values.
pub(crate) fn c_f64_to_i64(x: f64) -> i64 {
    if x.is_nan() || x >= 9_223_372_036_854_775_808.0 || x < -9_223_372_036_854_775_808.0 {
        i64::MIN
    } else {
        x as i64
    }
}

/// A C cast `(uint64_t)x` as GCC compiles it for x86-64: values from 2^63 up are
/// converted after subtracting 2^63, so 2^64 and above wrap to small numbers, and NaN
/// and negative out-of-range values give `0x8000000000000000`.
pub(crate) fn c_f64_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if x >= TWO63 {
        (c_f64_to_i64(x - TWO63) as u64) ^ (1 << 63)
    } else {
        c_f64_to_i64(x) as u64
    }
}

/// A C cast `(int)x` as compiled for x86-64: truncation, `i32::MIN` when out of range.
pub(crate) fn c_f64_to_i32(x: f64) -> i32 {
    if x.is_nan() || x >= 2_147_483_648.0 || x <= -2_147_483_649.0 {
        i32::MIN
    } else {
        x as i32
    }
}
