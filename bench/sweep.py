#!/usr/bin/env python3
"""One sweep of N integrations against the loopback simulator: wall time and peak RSS of `authwatch check`.

Usage: cargo build --release && python3 bench/sweep.py [--integrations 1000] [--concurrency 64] [--runs 5]

The simulator runs in its own process (so its memory is not counted). Every integration has its own
(credential, business unit) grant, so a sweep makes N token requests and N representative calls.
Targets (issue 2): under 2 s with 64 concurrent probes; under 50 MB peak RSS.
"""
import argparse, os, re, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "authwatch")


def scenario(n_integrations, n_clients, concurrency):
    out = ["[sim]", 'name = "bench"', "expires_in = 1079", "",
           "[authwatch]", f"max_concurrent_probes = {concurrency}", 'timeout = "10s"', ""]
    per_client = (n_integrations + n_clients - 1) // n_clients
    for c in range(n_clients):
        mids = ", ".join(f'"{5100000 + c * 1000 + m}"' for m in range(per_client))
        out += ["[[client]]", f'id = "pkg-{c:03}"', f'client_id = "bench{c:03}client0000000000"',
                f'secret = "bench-secret-{c:03}"', 'scopes = ["data_extensions_read", "email_read"]',
                f"mids = [{mids}]", "secret_expires_in_days = 120", ""]
    for i in range(n_integrations):
        c, m = divmod(i, per_client)
        out += ["[[integration]]", f'name = "int-{i:04}"', f'client = "pkg-{c:03}"',
                f'account_id = "{5100000 + c * 1000 + m}"', 'scopes = ["data_extensions_read"]', ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--integrations", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.toml")
        with open(path, "w") as f:
            f.write(scenario(args.integrations, args.clients, args.concurrency))
        cfg_dir = os.path.join(tmp, "cfg")
        sim = subprocess.Popen([BIN, "simulate", "--scenario", path, "--listen", "127.0.0.1:0",
                                "--print-config", cfg_dir], stdout=subprocess.PIPE, text=True)
        try:
            config = None
            for line in sim.stdout:
                m = re.search(r"(\S+authwatch\.toml)", line)
                if m:
                    config = m.group(1)
                    break
            if not config:
                sys.exit("simulator did not print its config path")
            env = dict(os.environ, XDG_STATE_HOME=tmp)
            walls = []
            for _ in range(args.runs):
                start = time.perf_counter()
                r = subprocess.run([BIN, "check", "--config", config, "--format", "json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                walls.append(time.perf_counter() - start)
                if r.returncode != 0:
                    sys.exit(f"check exited {r.returncode}: {r.stderr.decode()[:500]}")
            rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        finally:
            sim.terminate()
            sim.wait()
    print(f"integrations={args.integrations} concurrency={args.concurrency} runs={args.runs}")
    print(f"sweep wall time: median {statistics.median(walls):.3f}s  min {min(walls):.3f}s  max {max(walls):.3f}s  (target < 2s)")
    print(f"peak RSS of check: {rss_mb:.1f} MB  (target < 50 MB)")


if __name__ == "__main__":
    main()
