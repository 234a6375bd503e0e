//! Differential tests of EVAL and friends: the same scripts against redis-server and
//! Libellule (1 and 3 shards), reply by reply. Scripts declare every key they touch
//! (Libellule refuses undeclared keys of another shard; see README).

mod common;

use common::diff::*;

const SCRIPT_EVAL: &str = r#"
EVAL "return 1" 0
EVAL "return 'hello'" 0
EVAL "return 3.99" 0
EVAL "return -3.99" 0
EVAL "return true" 0
EVAL "return false" 0
EVAL "return nil" 0
EVAL "return {1, 2, {3, 'x'}, true, false, nil, 5}" 0
EVAL "return {}" 0
EVAL "return {err='My Error'}" 0
EVAL "return {ok='FINE'}" 0
EVAL "return redis.error_reply('E2 bad')" 0
EVAL "return redis.status_reply('GOOD')" 0
EVAL "return {double=3.5}" 0
EVAL "return redis.sha1hex('')" 0
EVAL "return redis.sha1hex('abc')" 0
EVAL "return KEYS" 2 k1 k2 a1 a2
EVAL "return ARGV" 2 k1 k2 a1 a2
EVAL "return #KEYS + #ARGV * 10" 1 k1 a1 a2 a3
EVAL "return 1" -1
EVAL "return 1" 3 a
EVAL "return 1" x
EVAL
EVAL "return +" 0
EVAL "x = 1" 0
EVAL "return undefined_thing" 0
EVAL "return os.time()" 0
EVAL "return io" 0
EVAL "error('boom')" 0
EVAL "error({err='TABLE fail'})" 0
EVAL "\nlocal a = 1\nerror('line three')" 0
EVAL "return redis.call('set', KEYS[1], ARGV[1])" 1 s1 v1
EVAL "return redis.call('get', KEYS[1])" 1 s1
EVAL "return redis.call('get', KEYS[1])" 1 nokey
EVAL "return redis.call('incr', KEYS[1])" 1 s1
EVAL "return redis.pcall('incr', KEYS[1])" 1 s1
EVAL "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return e.err" 1 s1
EVAL "return redis.call('foo')" 0
EVAL "return redis.call()" 0
EVAL "return redis.call({})" 0
EVAL "return redis.call('get')" 0
EVAL "return redis.pcall('get')" 0
EVAL "return redis.call('subscribe', 'x')" 0
EVAL "return redis.call('set', KEYS[1], 3.5)" 1 n1
EVAL "return redis.call('set', KEYS[1], 10)" 1 n2
EVAL "return redis.call('get', KEYS[1]) .. redis.call('get', KEYS[2])" 2 n1 n2
EVAL "return redis.call('hset', KEYS[1], 'a', 1, 'b', 2)" 1 h1
EVAL "return redis.call('hgetall', KEYS[1])" 1 h1
EVAL "return redis.call('hget', KEYS[1], 'zz')" 1 h1
EVAL "return redis.call('ping')" 0
EVAL "return redis.call('echo', 'x')" 0
EVAL "return redis.setresp(4)" 0
EVAL "redis.setresp(3); return redis.call('hget', KEYS[1], 'zz')" 1 h1
EVAL "redis.setresp(3); return redis.call('hgetall', KEYS[1])['map']['a']" 1 h1
EVAL "return redis.log(redis.LOG_WARNING, 'from a test')" 0
EVAL "return redis.log(99, 'x')" 0
EVAL "return redis.REDIS_VERSION" 0
EVAL "return tostring(1e15) .. ' ' .. tostring(0.1) .. ' ' .. 7 / 2" 0
EVAL "return string.format('%d-%s', 5, 'x')" 0
EVAL "return table.concat({'a', 'b'}, ',')" 0
EVAL "return math.floor(2.7)" 0
EVAL "return type(unpack)" 0
EVAL "string.foo = 1" 0
EVAL "return cjson.encode({1, 2, {a='x', b=cjson.null}})" 0
EVAL "return cjson.decode('[1,2,{\"a\":[true,false,null]}]')[3].a[1]" 0
EVAL "return cjson.decode('{bad')" 0
EVAL "return bit.tohex(bit.bxor(0xff, 0x0f), -4)" 0
EVAL "return {bit.band(-1, 0xffff), bit.lshift(1, 31), bit.tobit(2^32 + 5)}" 0
EVAL "return struct.pack('>I2i4', 258, -2)" 0
EVAL "return {struct.unpack('<h', struct.pack('<h', -300))}" 0
EVAL "return cmsgpack.unpack(cmsgpack.pack({1, 'two', {3}}))" 0
EVAL "cjson.x = 1" 0
EVAL_RO "return redis.call('get', KEYS[1])" 1 s1
EVAL_RO "return redis.call('set', KEYS[1], 'x')" 1 s1
SCRIPT LOAD "return 'loaded'"
EVALSHA 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
EVALSHA 1B936E3FE509BCBC9CD0664897BBE8FD0CAC101B 0
EVALSHA_RO 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
EVALSHA ffffffffffffffffffffffffffffffffffffffff 0
EVALSHA 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b -1
SCRIPT EXISTS 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b ffffffffffffffffffffffffffffffffffffffff
SCRIPT LOAD "return +"
SCRIPT LOAD
SCRIPT EXISTS
SCRIPT FLUSH foo
SCRIPT FLUSH
SCRIPT EXISTS 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b
EVALSHA 1b936e3fe509bcbc9cd0664897bbe8fd0cac101b 0
SCRIPT KILL
SCRIPT KILL x
SCRIPT FOO
SCRIPT HELP
MULTI
EVAL "return redis.call('incr', KEYS[1])" 1 ctr
EVAL "return redis.call('incr', KEYS[1])" 1 ctr
EXEC
"#;

/// What Directus does through ioredis: a rate limiter and a lock that selects its db.
const SCRIPT_DIRECTUS: &str = r#"
EVAL "redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') local consumed = redis.call('incrby', KEYS[1], ARGV[1]) local ttl = redis.call('pttl', KEYS[1]) if ttl == -1 then redis.call('expire', KEYS[1], ARGV[2]) ttl = 1000 * ARGV[2] end return {consumed, ttl > 0 and 1 or 0}" 1 rl:ip 1 60
EVAL "redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') local consumed = redis.call('incrby', KEYS[1], ARGV[1]) local ttl = redis.call('pttl', KEYS[1]) if ttl == -1 then redis.call('expire', KEYS[1], ARGV[2]) ttl = 1000 * ARGV[2] end return {consumed, ttl > 0 and 1 or 0}" 1 rl:ip 5 60
GET rl:ip
EVAL "redis.pcall('SELECT', ARGV[2]) local v = redis.call('get', KEYS[1]) if v == false then redis.call('set', KEYS[1], ARGV[1], 'PX', 10000) return 1 end return 0" 1 lock:a owner1 3
EVAL "redis.pcall('SELECT', ARGV[2]) local v = redis.call('get', KEYS[1]) if v == false then redis.call('set', KEYS[1], ARGV[1], 'PX', 10000) return 1 end return 0" 1 lock:a owner2 3
EXISTS lock:a
SELECT 3
GET lock:a
EVAL "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0" 1 lock:a owner1
EXISTS lock:a
SELECT 0
"#;

const SCRIPT_RESP3: &str = r#"
HELLO 3
EVAL "return true" 0
EVAL "return false" 0
EVAL "return nil" 0
EVAL "return {double=2.5}" 0
EVAL "return {map={a=1}}" 0
EVAL "return {set={x=true}}" 0
EVAL "return {big_number='123456789012345678901234567890'}" 0
EVAL "return redis.call('hget', KEYS[1], 'no')" 1 nohash
"#;

fn run_all(io_threads: &str) {
    for (name, text) in [
        ("eval", SCRIPT_EVAL),
        ("directus", SCRIPT_DIRECTUS),
        ("resp3", SCRIPT_RESP3),
    ] {
        with_pair(name, io_threads, &[], |d, _| {
            d.line("FLUSHALL");
            d.line("SCRIPT FLUSH");
            d.script(text);
        });
    }
}

#[test]
fn scripting_io1() {
    run_all("1");
}

#[test]
fn scripting_io3() {
    run_all("3");
}
