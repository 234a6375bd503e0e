#!/usr/bin/env python3
# Generates a Rust table of (snippet, Redis result) from a case file, querying Redis.
import os, socket, sys
cases = [l.rstrip('\n') for l in open(sys.argv[1]) if l.strip() and not l.startswith('--')]
wrap = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wrap.lua')).read()
def resp(cmd):
    s = socket.create_connection(('127.0.0.1', int(os.environ.get('REDIS_PORT', '7311'))))
    s.sendall(b'*%d\r\n' % len(cmd) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in cmd)); f = s.makefile('rb')
    line = f.readline()
    if line[:1] == b'$':
        n = int(line[1:]); return f.read(n+2)[:-2]
    if line[:1] == b'+': return line.strip()
    raise Exception(line)
def rbytes(b):
    out = []
    for c in b:
        if c == 0x22: out.append('\\"')
        elif c == 0x5c: out.append('\\\\')
        elif 0x20 <= c < 0x7f: out.append(chr(c))
        else: out.append('\\x%02x' % c)
    return 'b"' + ''.join(out) + '"'
def rstr(s):
    h = '#'
    while ('"' + h) in s: h += '#'
    return 'r' + h + '"' + s + '"' + h
print('    /// `(snippet, result)` pairs; every result was returned by Redis 7.0.15 for the')
print('    /// snippet run in `testutil::WRAPPER` (fresh state each time: `SCRIPT FLUSH`).')
print('    const REDIS_CASES: &[(&str, &[u8])] = &[')
for c in cases:
    resp([b'SCRIPT', b'FLUSH'])
    r = resp([b'EVAL', wrap.replace('CODE', c).encode('utf8'), b'0'])
    print('        (%s, %s),' % (rstr(c), rbytes(r)))
print('    ];')
print()
print('    #[test]')
print('    fn matches_redis() {')
print('        check_cases(REDIS_CASES);')
print('    }')
