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
//! (The one exception is running out of memory inside a push, which Lua also reports
//! by `longjmp`: the working buffer of the call then leaks.)
//!
//! Behaviour was checked against Redis 7.0.15 with the tools in `diff/` (some 4,500
//! snippets, hand-written and random); the tests embed Redis's answers. Known
//! differences and caveats:
//! - `struct.pack` reports a missing value after more than 8 KiB of output as "got nil";
//!   the C code's `luaL_Buffer` has by then pushed a chunk on the stack, so Redis may
//!   say "got string".
//! - Nesting is handled by recursion, as in C, bounded by the Lua stack limit (about
//!   8,000 levels for `cjson` decoding of arrays when `decode_max_depth` is raised; 1,000
//!   by default). Measured worst case: between 1 and 1.25 MiB of Rust stack in release
//!   builds, over 2 MiB in debug builds, so the scripting engine should run scripts on a
//!   thread with a few MiB of stack (the deep tests use their own 256 MiB thread).
//! - Not here but in the scripting engine: Redis 7 makes these tables read-only
//!   ("Attempt to modify a readonly table") and hides `debug`.

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
    Raise::arg(
        idx,
        format!("{expected} expected, got {}", type_name(l, idx)),
    )
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

/// `luaL_checkstack`'s error when the stack cannot grow.
#[inline(never)]
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

/// A C cast `(int64_t)x` as compiled for x86-64 (`cvttsd2si`): truncation toward zero,
/// and `i64::MIN` for NaN and out-of-range values.
pub(crate) fn c_f64_to_i64(x: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
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
    if !(x > -2_147_483_649.0 && x < 2_147_483_648.0) {
        i32::MIN
    } else {
        x as i32
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the libraries' tests.

    /// A fresh Lua state with the base libraries and the four Redis libraries.
    pub fn lua() -> mlua::Lua {
        let lua = mlua::Lua::new();
        super::register_all(&lua).unwrap();
        lua
    }

    /// The wrapper every test snippet runs in, the same one used to collect the expected
    /// values from Redis 7.0.15 (`EVAL <wrapper> 0`): the snippet sits on line 3 of a
    /// chunk named `user_script`, errors come back as `ERR <message>`, tables as
    /// `{a,b,...}`, and `hx(s)` hex-encodes a string.
    pub const WRAPPER: &str = r#"local function hx(s) return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end)) end
local function show(v) if type(v) == 'table' then local t = {} for i = 1, #v do t[i] = show(v[i]) end return '{' .. table.concat(t, ',') .. '}' elseif type(v) == 'string' then return v else return tostring(v) end end
local ok, r = pcall(function() CODE
end)
if not ok then return 'ERR ' .. tostring(r) end
return show(r)
"#;

    /// Runs `code` inside [`WRAPPER`] in `lua` and returns the resulting bytes.
    pub fn eval_bytes_in(lua: &mlua::Lua, code: &str) -> Vec<u8> {
        lua.load(WRAPPER.replace("CODE", code))
            .set_name("=user_script")
            .eval::<mlua::LuaString>()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_else(|e| format!("RUSTERR {e}").into_bytes())
    }

    /// [`eval_bytes_in`] as a (lossy) string.
    pub fn eval_in(lua: &mlua::Lua, code: &str) -> String {
        String::from_utf8_lossy(&eval_bytes_in(lua, code)).into_owned()
    }

    /// [`eval_in`] on a fresh state.
    pub fn eval(code: &str) -> String {
        eval_in(&lua(), code)
    }

    /// Runs every `(snippet, what Redis 7.0.15 returned)` pair, each in a fresh state,
    /// and fails listing every snippet whose result differs.
    pub fn check_cases(cases: &[(&str, &[u8])]) {
        let mut bad = Vec::new();
        for (code, want) in cases {
            let got = eval_bytes_in(&lua(), code);
            if got != *want {
                bad.push(format!(
                    "{code}\n   redis: {}\n   ours:  {}",
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "{} mismatches:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    /// [`check_cases`] on a thread with a 256 MiB stack: for inputs nested thousands
    /// deep, which the libraries (like the C ones) handle by recursion.
    pub fn check_cases_big_stack(cases: &'static [(&'static str, &'static [u8])]) {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || check_cases(cases))
            .unwrap()
            .join()
            .unwrap();
    }

    /// A Lua string literal for arbitrary bytes (every byte escaped as `\\ddd`
    /// except letters and digits).
    pub fn lua_str(bytes: &[u8]) -> String {
        let mut s = String::with_capacity(bytes.len() * 4 + 2);
        s.push('"');
        for &b in bytes {
            if b.is_ascii_alphanumeric() {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\{b:03}"));
            }
        }
        s.push('"');
        s
    }

    /// A Lua number literal that reads back as exactly `x` (finite `x`).
    pub fn lua_num(x: f64) -> String {
        format!("{x:e}")
    }

    /// Lua source of a local function `deq(a, b)`: deep equality of two values.
    pub const DEQ: &str = "local function deq(a, b) \
        if type(a) ~= type(b) then return false end \
        if type(a) ~= 'table' then return a == b end \
        for k, v in pairs(a) do if not deq(v, b[k]) then return false end end \
        for k in pairs(b) do if a[k] == nil then return false end end \
        return true end ";

    /// What [`random_value`] may generate.
    pub struct Gen {
        /// Any finite double (else only numbers `%.14g` prints exactly).
        pub any_float: bool,
        /// Non-string map keys (numbers, booleans).
        pub any_keys: bool,
        /// Include `cjson.null`.
        pub null: bool,
    }

    /// Lua source for a random value: numbers, strings of random bytes, booleans, and
    /// (below `depth`) arrays and string-keyed (or any-keyed) maps.
    pub fn random_value(rng: &mut impl rand::Rng, g: &Gen, depth: u32) -> String {
        let kinds = if depth == 0 { 5 } else { 7 };
        match rng.gen_range(0..kinds) {
            0 => lua_num(rng.gen_range(-(1i64 << 40)..(1i64 << 40)) as f64),
            1 => {
                if g.any_float {
                    let d = f64::from_bits(rng.gen());
                    lua_num(if d.is_finite() { d } else { 0.5 })
                } else {
                    lua_num(rng.gen_range(-(1i64 << 20)..(1i64 << 20)) as f64 / 1024.0)
                }
            }
            2 => {
                let len = match rng.gen_range(0..20) {
                    0 => rng.gen_range(256..70_000),
                    1..=3 => rng.gen_range(32..300),
                    _ => rng.gen_range(0..32),
                };
                lua_str(&(0..len).map(|_| rng.gen()).collect::<Vec<u8>>())
            }
            3 => if rng.gen_bool(0.5) { "true" } else { "false" }.to_string(),
            4 => {
                if g.null && rng.gen_bool(0.5) {
                    "cjson.null".to_string()
                } else {
                    lua_num(rng.gen_range(-200..200) as f64)
                }
            }
            5 => {
                let n = if rng.gen_bool(0.1) {
                    rng.gen_range(16..40)
                } else {
                    rng.gen_range(0..6)
                };
                let items: Vec<String> = (0..n).map(|_| random_value(rng, g, depth - 1)).collect();
                format!("{{{}}}", items.join(","))
            }
            _ => {
                let n = if rng.gen_bool(0.1) {
                    rng.gen_range(16..40)
                } else {
                    rng.gen_range(0..6)
                };
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        let key = if g.any_keys && rng.gen_bool(0.5) {
                            match rng.gen_range(0..3) {
                                0 => lua_num(rng.gen_range(-1000..1000) as f64),
                                1 => lua_num(rng.gen_range(-1000.0..1000.0)),
                                _ => "true".to_string(),
                            }
                        } else {
                            let k: Vec<u8> = (0..rng.gen_range(0..8)).map(|_| rng.gen()).collect();
                            lua_str(&k)
                        };
                        format!("[{key}]={}", random_value(rng, g, depth - 1))
                    })
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }

    /// Differential testing against a real Redis (driven by `diff/diff.py`): runs every
    /// script of `$LUALIBS_DIFF_DIR/scripts.bin` (length-prefixed chunks; the directory
    /// defaults to `/tmp/ldiff`) in a fresh state and writes their string results to
    /// `ours.bin` there, in the same format.
    #[test]
    #[ignore]
    fn diff_runner() {
        let dir = std::env::var("LUALIBS_DIFF_DIR").unwrap_or_else(|_| "/tmp/ldiff".into());
        let dir = std::path::Path::new(&dir);
        let data = std::fs::read(dir.join("scripts.bin")).unwrap();
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
                .eval::<mlua::LuaString>()
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_else(|e| format!("RUSTERR {e}").into_bytes());
            out.extend_from_slice(format!("{}\n", r.len()).as_bytes());
            out.extend_from_slice(&r);
        }
        std::fs::write(dir.join("ours.bin"), out).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::check_cases_big_stack;

    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the
    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).
    const DEEP_CASES: &[(&str, &[u8])] = &[
        (r#"return cmsgpack.unpack(string.rep('\145', 100000))"#, b"ERR user_script:3: stack overflow (in function mp_decode_to_lua_array)"),
        (r#"return cmsgpack.unpack(string.rep('\129\1', 100000))"#, b"ERR user_script:3: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"),
        (r#"return cmsgpack.unpack(string.rep('\220\0\1', 100000))"#, b"ERR user_script:3: stack overflow (in function mp_decode_to_lua_array)"),
        (r#"cjson.decode_max_depth(100000) return cjson.decode(string.rep('[', 100000))"#, b"ERR user_script:3: Found too many nested data structures (7999) at character 7999"),
        (r#"cjson.decode_max_depth(100000) return cjson.decode(string.rep('{"a":', 100000))"#, b"ERR user_script:3: Found too many nested data structures (4000) at character 19996"),
        (r#"cjson.encode_max_depth(100000) local t = {} local c = t for i=1,100000 do c[1] = {} c = c[1] end return cjson.encode(t)"#, b"ERR user_script:3: Cannot serialise, excessive nesting (7998)"),
        (r#"cjson.encode_max_depth(100000) local t = {} local c = t for i=1,100000 do c.a = {} c = c.a end return cjson.encode(t)"#, b"ERR user_script:3: Cannot serialise, excessive nesting (4000)"),
        (r#"local t = {} local c = t for i=1,100000 do c[1] = {} c = c[1] end return #cmsgpack.pack(t)"#, b"17"),
    ];

    #[test]
    fn deep_nesting_matches_redis() {
        check_cases_big_stack(DEEP_CASES);
    }
}
