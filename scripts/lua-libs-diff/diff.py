#!/usr/bin/env python3
import os, socket, subprocess, sys
cases = [l.rstrip('\n') for l in open(sys.argv[1]) if l.strip() and not l.startswith('--')]
work = os.environ.get('LUALIBS_DIFF_DIR', '/tmp/ldiff')
os.makedirs(work, exist_ok=True)
wrap = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'wrap.lua')).read()
def resp(cmd):
    s = socket.create_connection(('127.0.0.1', int(os.environ.get('REDIS_PORT', '7311'))))
    out = b'*%d\r\n' % len(cmd) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in cmd)
    s.sendall(out); f = s.makefile('rb')
    line = f.readline()
    if line[:1] == b'$':
        n = int(line[1:]); data = f.read(n+2)[:-2]; return data
    return line.strip()
scripts = [wrap.replace('CODE', c) for c in cases]
# line numbers: CODE sits on line 3 in wrap
ref = []
for s in scripts:
    resp([b'SCRIPT', b'FLUSH'])
    ref.append(resp([b'EVAL', s.encode('latin1'), b'0']))
with open(os.path.join(work, 'scripts.bin'), 'wb') as f:
    for s in scripts:
        b = s.encode('latin1'); f.write(b'%d\n' % len(b)); f.write(b)
subprocess.run(['cargo', 'test', '--release', '--lib', 'scripting::libs::testutil::diff_runner', '--', '--ignored', '--quiet'], cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..'), check=True, capture_output=True, env=dict(os.environ, LUALIBS_DIFF_DIR=work))
ours = []
with open(os.path.join(work, 'ours.bin'), 'rb') as f:
    data = f.read()
i = 0
while i < len(data):
    j = data.index(b'\n', i); n = int(data[i:j]); ours.append(data[j+1:j+1+n]); i = j+1+n
bad = 0
for c, a, b in zip(cases, ref, ours):
    if a != b:
        bad += 1
        print('CASE', c); print('  redis:', a); print('  ours :', b)
    elif '-v' in sys.argv:
        print('ok', c, '=>', a)
print(f'{len(cases)-bad}/{len(cases)} match')
