//! The script reply conversions (`scripting::convert`) without a server: the input is
//! a RESP2/RESP3 reply read into a Lua value (`reply_to_lua`, what `redis.call`
//! returns to a script), which is written back as a reply (`lua_to_reply`, what a
//! script returns), in RESP2 and RESP3. Neither may panic, however malformed the reply.
#![no_main]

use libellule::protocol::reply::ReplyWriter;
use libellule::scripting::convert::{lua_to_reply, reply_to_lua};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static LUA: mlua::Lua = mlua::Lua::new();
}

fuzz_target!(|data: &[u8]| {
    LUA.with(|lua| {
        let mut pos = 0;
        if let Ok(v) = reply_to_lua(lua, data, &mut pos) {
            assert!(pos <= data.len(), "read past the reply");
            for (resp3, script_resp3) in [(false, false), (true, true), (true, false)] {
                let mut buf = Vec::new();
                let mut w = ReplyWriter::new(&mut buf, resp3);
                lua_to_reply(lua, &mut w, &v, script_resp3, 0);
            }
        }
        lua.gc_collect().ok();
    });
});
