"""A request stream for the graceful-shutdown tests, run *inside* a container on the test
network (standard library only, so any of the service images can run it).

    python loadgen.py HOST_IP PORT PATH AUTH_HEADER EXPECTED_STATUS THREADS MAX_SECONDS LAG

THREADS threads send GET PATH back to back, each on a fresh connection, and every one of
them must be answered in full with EXPECTED_STATUS: a refused connect, a reset, a truncated
response, a timeout or another status is a failure.

It behaves like the Kubernetes data path in front of a pod: a watcher polls ``/readyz``
every 50 ms, and once it answers 503 (the pod is draining after SIGTERM) the generator keeps
sending for LAG more seconds (the time endpoint removal takes to reach kube-proxy), then
sends nothing new (two 503s in a row count, like a probe's failureThreshold). With LAG
shorter than the service's drain time nothing may be lost; a service that stops serving at
SIGTERM, drops in-flight requests or exits early fails here.

Prints a JSON progress line every 0.2 s and a final ``{"final": true, ...}`` line, then
exits by itself (at the latest MAX_SECONDS after the start).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time


def get(host: str, port: int, path: str, headers: dict[str, str], timeout: float) -> int:
    """One GET on a fresh connection; the status, or an exception."""
    sock = socket.create_connection((host, port), timeout=timeout)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock
    try:
        conn.request("GET", path, headers={**headers, "Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def buckets(ends: list[float], begin: float) -> list[int]:
    """Count of ``ends`` per 100 ms slot after ``begin``."""
    counts: list[int] = []
    for end in ends:
        slot = max(0, int((end - begin) * 10))
        counts.extend([0] * (slot + 1 - len(counts)))
        counts[slot] += 1
    return counts


def main() -> None:
    host, port_s, path, auth, expected_s, threads_s, max_s, lag_s = sys.argv[1:9]
    port, expected, threads = int(port_s), int(expected_s), int(threads_s)
    max_seconds, lag = float(max_s), float(lag_s)
    lock = threading.Lock()
    ok_ends: list[float] = []
    failed: list[dict[str, object]] = []
    unready_at: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        # Like a readiness probe with failureThreshold 2: two 503s in a row mark the pod
        # unready (a single slow check under load does not).
        streak = 0
        while not stop.is_set() and not unready_at:
            try:
                status = get(host, port, "/readyz", {}, 1.0)
            except OSError:
                status = 0
            streak = streak + 1 if status == 503 and ok_ends else 0
            if streak >= 2:
                unready_at.append(time.time())
            time.sleep(0.05)

    def worker() -> None:
        while not stop.is_set():
            if unready_at and time.time() > unready_at[0] + lag:
                return  # the endpoint is gone from the load balancer: send nothing new
            started = time.time()
            try:
                status = get(host, port, path, {"Authorization": auth}, 15.0)
                error = None if status == expected else f"status {status}"
            except Exception as exc:
                error = repr(exc)[:300]
            with lock:
                if error is None:
                    ok_ends.append(time.time())
                else:
                    failed.append({"start": started, "end": time.time(), "error": error})

    begin = time.time()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    watcher = threading.Thread(target=watch, daemon=True)
    for t in [*pool, watcher]:
        t.start()
    while any(t.is_alive() for t in pool) and time.time() - begin < max_seconds:
        time.sleep(0.2)
        with lock:
            print(json.dumps({"ok": len(ok_ends), "failed": len(failed)}), flush=True)
            last_ok = ok_ends[-1] if ok_ends else begin
            gone = bool(failed) and failed[-1]["end"] > last_ok and time.time() - last_ok > 3
        if gone:  # only failures for 3 s: the service is gone without having drained
            break
    stop.set()
    for t in [*pool, watcher]:
        t.join(timeout=20)
    with lock:
        summary = {
            "final": True,
            "ok": len(ok_ends),
            "failed_count": len(failed),
            "failed": failed[:20],
            "unready_at": unready_at[0] if unready_at else None,
            "seconds": round(time.time() - begin, 2),
            # Successes per 0.1 s since "begin" (epoch seconds): compact, so the line stays
            # under docker's 16 KiB log-line split.
            "begin": begin,
            "ok_per_100ms": buckets(ok_ends, begin),
        }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
