"""New database connections, each reading its credential from an env file first, for a bounded time.

Each connection re-reads the env file a rotation writes (``PGUSER=``/``PGPASSWORD=``, as docs/rotation.md says
clients that read their credential per connection do), connects over TCP, runs one query and disconnects.
With ``rate`` the connections start on a fixed schedule (open loop: connection i is due at start + i/rate,
whatever the earlier ones took), otherwise each worker connects again as soon as it is done.

Shared by the bench's rotation section (scripts/bench_rotation.py) and the rotation integration test, which runs
it as a separate process:

    python scripts/connload.py --env FILE --port N --db DB --seconds S [--rate R] [--workers W] [--query SQL]

and reads one JSON line: ok, failed, errors (the first five), seen (every user/password pair read), connect
latencies, how late the connections started against their schedule, and the connections per second achieved.
"""

import argparse
import json
import math
import sys
import threading
import time

import psycopg2


def read_env(path, user_key="PGUSER", password_key="PGPASSWORD"):
    with open(path) as handle:
        values = dict(line.split("=", 1) for line in handle.read().splitlines() if "=" in line)
    return values[user_key], values[password_key]


def percentile(values, fraction):
    """Nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, int(math.ceil(fraction * len(ordered))) - 1)]


class Load:
    def __init__(self, env_path, port, db, seconds, rate=None, workers=4, host="127.0.0.1", query="SELECT 1",
                 connect_timeout=10):
        self.env_path, self.port, self.db, self.host, self.query = env_path, port, db, host, query
        self.seconds, self.rate, self.workers, self.connect_timeout = seconds, rate, workers, connect_timeout
        self.lock = threading.Lock()
        self.next_slot = 0
        self.ok = self.failed = 0
        self.errors, self.seen, self.latencies, self.lags, self.failed_at = [], set(), [], [], []
        self.started = self.finished = None

    def _slot(self):
        """When the next connection is due (monotonic), or None when the window is over."""
        with self.lock:
            index = self.next_slot
            self.next_slot += 1
        due = self.started + index / self.rate if self.rate else time.monotonic()
        return due if due < self.started + self.seconds else None

    def _worker(self):
        while True:
            due = self._slot()
            if due is None:
                return
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            begun = time.monotonic()
            latency = user = password = None
            try:
                user, password = read_env(self.env_path)  # per connection, like a client that reads its file
                connecting = time.perf_counter()
                handle = psycopg2.connect(host=self.host, port=self.port, dbname=self.db, user=user, password=password,
                                          connect_timeout=self.connect_timeout)
                latency = time.perf_counter() - connecting
                try:
                    with handle.cursor() as cur:
                        cur.execute(self.query)
                        cur.fetchone()
                finally:
                    handle.close()
                error = None
            except (psycopg2.Error, OSError, KeyError, ValueError) as exc:
                error = str(exc).strip()[:200]
            ended = time.monotonic()
            with self.lock:
                if user is not None:
                    self.seen.add((user, password))
                self.lags.append(begun - due)
                self.finished = max(self.finished or ended, ended)
                if error is None:
                    self.ok += 1
                    self.latencies.append(latency)
                else:
                    self.failed += 1
                    self.failed_at.append(round(begun - self.started, 3))
                    self.errors.append(error)

    def run(self):
        self.started = time.monotonic()
        threads = [threading.Thread(target=self._worker, daemon=True) for _worker in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.seconds + 3 * self.connect_timeout + 30)
        return self.result()

    def result(self):
        def ms(value):
            return None if value is None else round(value * 1000.0, 2)

        elapsed = max((self.finished or self.started) - self.started, 1e-9)
        return {"ok": self.ok, "failed": self.failed, "errors": self.errors[:5], "failed_at": self.failed_at[:20],
                "seen": sorted(self.seen), "seconds": round(elapsed, 3), "per_second": round(self.ok / elapsed, 1),
                "rate": self.rate, "workers": self.workers,
                "connect_ms": {"p50": ms(percentile(self.latencies, 0.50)), "p99": ms(percentile(self.latencies, 0.99)),
                               "max": ms(max(self.latencies) if self.latencies else None)},
                "late_ms": {"p99": ms(percentile(self.lags, 0.99)), "max": ms(max(self.lags) if self.lags else None)}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="env file holding PGUSER and PGPASSWORD, re-read per connection")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, help="connections per second on a fixed schedule (default: as fast as they go)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--query", default="SELECT 1")
    args = parser.parse_args(argv)
    result = Load(args.env, args.port, args.db, args.seconds, rate=args.rate, workers=args.workers, host=args.host,
                  query=args.query).run()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
