#!/usr/bin/env python3
"""The operator's own part of the side-by-side figures of `make bench`, from the real-node
operator's log (each API request with its time, `RUST_LOG=kube_client=debug`):

- Patch (sessions bench-N): from the start of the session's first reconcile (its GET of the
  target) to the apply of the shell to the Deployment done; and the reconcile that writes Ready
  (from its GET of the Deployment to the status write done).
- Copy and Ephemeral (sessions [p]copy-N, [p]eph-N): from the start of the session's first
  reconcile to the copy created or the ephemeral container added and the status written.

Medians in seconds. Usage: e2e/bench/timeline.py [target/bench/operator-real-node.log]
"""

import json
import re
import statistics
import sys
from datetime import datetime


def requests(path):
    """(time, message, method, url, session) of each log line that has a time."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "timestamp" not in rec:
                continue
            span = rec.get("span", {})
            t = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
            out.append((t, rec.get("message", ""), span.get("http.method", ""),
                        span.get("http.url", ""), span.get("session")))
    return out


def session_of(url):
    m = re.search(r"/debugsessions/([a-z0-9-]+)", url)
    return m.group(1) if m else None


def reconcile_start(log, before):
    """When the reconcile that sent request `before` (an index) began: its read of the target
    Deployment (a session is created with its finalizer, so its first reconcile starts it; the
    real-node bench runs one session at a time)."""
    for t, msg, method, url, _ in reversed(log[:before]):
        if msg == "requesting" and method == "GET" and re.search(r"/deployments/[^/?]+$", url):
            return t
    return None


def status_writes_done(log, name):
    return [(i, t) for i, (t, msg, method, url, _) in enumerate(log)
            if msg == "stream closed" and method == "PATCH" and f"/debugsessions/{name}/status" in url]


def patch_mode(log):
    take, ready = [], []
    names = sorted({session_of(u) for _, _, _, u, _ in log if re.search(r"/debugsessions/bench-\d+", u)})
    for name in names:
        applied = [(i, t) for i, (t, msg, method, url, _) in enumerate(log)
                   if msg == "stream closed" and method == "PATCH" and "/deployments/" in url
                   and f"%2F{name}" in url and "force=true" not in url]
        writes = status_writes_done(log, name)
        if not applied or len(writes) < 2:
            continue
        start = reconcile_start(log, applied[0][0])
        if start is None:
            continue
        take.append(applied[0][1] - start)
        i, t = writes[-1]
        gets = [g for g, msg, method, url, _ in log[:i]
                if msg == "requesting" and method == "GET" and re.search(r"/deployments/[^/?]+$", url)]
        if gets:
            ready.append(t - gets[-1])
    return take, ready


def debug_modes(log):
    out = {"copy": [], "ephemeral": []}
    names = sorted({session_of(u) for _, _, _, u, _ in log
                    if re.search(r"/debugsessions/p?(copy|eph)-\d+", u)})
    for name in names:
        writes = status_writes_done(log, name)
        start = reconcile_start(log, writes[0][0]) if writes else None
        if start is None:
            continue
        kind = "copy" if "copy" in name else "ephemeral"
        out[kind].append(writes[0][1] - start)
    return out


def median(xs):
    return f"{statistics.median(xs) * 1000:.0f} ms (n={len(xs)})" if xs else "n/a"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "target/bench/operator-real-node.log"
    log = requests(path)
    take, ready = patch_mode(log)
    modes = debug_modes(log)
    print(f"patch: first reconcile -> shell applied: {median(take)}")
    print(f"patch: reconcile that writes Ready (GET -> status written): {median(ready)}")
    print(f"copy: first reconcile -> copy created, status written: {median(modes['copy'])}")
    print(f"ephemeral: first reconcile -> shell added, status written: {median(modes['ephemeral'])}")


if __name__ == "__main__":
    main()
