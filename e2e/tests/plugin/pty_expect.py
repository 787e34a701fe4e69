"""Drives a command on a pseudo-terminal as a person would type, step by step.

usage: python3 pty_expect.py STEPS_JSON -- cmd args...
STEPS_JSON is a list of steps:
  {"expect": REGEX, "timeout": SECS, "mark": LABEL}  wait until the output (since the last match)
                                                     matches; LABEL records the seconds since start
  {"send": TEXT}                                      type TEXT (bytes as given: "\r" is Enter)
  {"resize": [ROWS, COLS]}                            resize the terminal (the client gets SIGWINCH)
  {"exit": SECS}                                      wait for the command to exit
Prints one JSON object: ok, error, marks, rc, output (carriage returns removed).
"""
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time

i = sys.argv.index('--')
steps, cmd = json.loads(sys.argv[1]), sys.argv[i + 1:]
start = time.time()
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    os.execvp(cmd[0], cmd)
out, seen, rc, marks, error = b'', 0, None, {}, None


def pump(t):
    global out
    r, _, _ = select.select([fd], [], [], t)
    if r:
        try:
            d = os.read(fd, 65536)
        except OSError:
            return False
        if not d:
            return False
        out += d
    return True


def reap(block):
    global rc
    if rc is None:
        wp, st = os.waitpid(pid, 0 if block else os.WNOHANG)
        if wp:
            rc = os.waitstatus_to_exitcode(st)


try:
    for s in steps:
        if 'expect' in s:
            pat, end = re.compile(s['expect'].encode()), time.time() + s.get('timeout', 60)
            while True:
                m = pat.search(out, seen)
                if m:
                    seen = m.end()
                    if 'mark' in s:
                        marks[s['mark']] = round(time.time() - start, 2)
                    break
                if time.time() > end:
                    raise RuntimeError('timed out after %ss waiting for %r' % (s.get('timeout', 60), s['expect']))
                if not pump(0.1):
                    reap(False)
                    if rc is not None:
                        raise RuntimeError('exited (rc=%s) while waiting for %r' % (rc, s['expect']))
        elif 'send' in s:
            os.write(fd, s['send'].encode())
        elif 'resize' in s:
            rows, cols = s['resize']
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
        elif 'exit' in s:
            end = time.time() + s['exit']
            while rc is None and time.time() < end:
                pump(0.1)
                reap(False)
            if rc is None:
                raise RuntimeError('still running after %ss' % s['exit'])
            while pump(0.05):
                pass
except Exception as e:  # noqa: BLE001 - reported to the test
    error = str(e)
if rc is None:
    try:
        os.kill(pid, signal.SIGTERM)
        reap(True)
    except (ProcessLookupError, ChildProcessError):
        pass
print(json.dumps({'ok': error is None, 'error': error, 'marks': marks, 'rc': rc,
                  'output': out.decode(errors='replace').replace('\r', '')}))
