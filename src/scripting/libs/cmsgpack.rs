//! stub
use std::ffi::c_int;
use mlua::ffi;
/// open
/// # Safety
/// Lua C function.
pub unsafe extern "C-unwind" fn luaopen_cmsgpack(_l: *mut ffi::lua_State) -> c_int { 0 }
