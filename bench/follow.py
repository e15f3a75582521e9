#!/usr/bin/env python3
"""Follow mode under load (release build): the console follows a log that grows at --rate MB/s.

Measures the console's CPU while lines are appended, the CPU `authwatch scan` needs to parse the same bytes,
the difference ("besides parsing"), and how long a 401 appended afterwards takes to appear on screen.

Usage: cargo build --release && python3 bench/follow.py [--rate 50] [--seconds 20]
Targets (issue 4): under 10% of a core besides parsing; events on screen within 1 s.
"""
import argparse, json, os, random, re, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console  # noqa: E402  (pty helpers)

BIN = console.BIN
CLK = os.sysconf("SC_CLK_TCK")


def lines(n, seed=7):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        status = 401 if rnd.random() < 0.01 else 403 if rnd.random() < 0.01 else 200
        out.append(json.dumps({"time": "2026-11-22T10:00:00.123Z", "integration": rnd.choice(["crm-sync-na", "cdp-audience-feed", "ghost"]),
                               "client_id": "5c9e1b7aa0d44f3e8a2b91c7", "method": "GET",
                               "url": "https://mcabc.rest.marketingcloudapis.com/data/v1/customobjectdata/key/orders/rowset?$page=%d" % i,
                               "status": status, "error": "invalid_client" if status == 401 else None, "duration_ms": rnd.randint(20, 900)}))
    return ("\n".join(out) + "\n").encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=50, help="MB/s appended")
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    chunk = lines(4000)  # ~1 MB, appended rate times a second
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=tmp, TERM="xterm-256color")
        demo = open(os.path.join(console.ROOT, "assets", "scenarios", "demo.toml")).read()
        scen = os.path.join(tmp, "s.toml")
        open(scen, "w").write(re.sub(r"(?m)^probe_interval = .*$", "", demo).replace("[authwatch]", "[authwatch]\nprobe_interval = \"1h\"", 1))
        sim = subprocess.Popen([BIN, "simulate", "--scenario", scen, "--print-config", os.path.join(tmp, "cfg")],
                               stdout=subprocess.PIPE, text=True, env=env)
        config = next(m.group(1) for line in sim.stdout if (m := re.search(r"(\S+authwatch\.toml)", line)))
        log = os.path.join(tmp, "mw.jsonl")
        open(log, "w").close()
        with open(config, "a") as f:
            f.write(f'\n[[log_source]]\nname = "mw"\npath = "{log}"\n')
        pid, fd = console.spawn(["--config", config, "--db", os.path.join(tmp, "f.db")], env, cols=120, rows=36)
        console.read_until(fd, console.TITLES, time.monotonic() + 10)
        console.drain(fd, 8)
        c0, t0 = console.cpu_ticks(pid), time.monotonic()
        written = 0
        with open(log, "ab") as f:
            end = t0 + args.seconds
            while time.monotonic() < end:
                tick = time.monotonic()
                for _ in range(int(args.rate)):
                    f.write(chunk)
                    written += len(chunk)
                f.flush()
                console.drain(fd, max(0.0, 1.0 - (time.monotonic() - tick)))
        console.drain(fd, 2)  # let it catch up
        elapsed = time.monotonic() - t0
        follow_cpu = (console.cpu_ticks(pid) - c0) / CLK
        # The same bytes through the parser alone.
        r0 = os.times()
        subprocess.run([BIN, "scan", log, "--config", config, "--format", "json"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, check=True)
        r1 = os.times()
        parse_cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        # Latency: one marked 401, time until the screen shows it.
        marker = "MARKER%d" % random.randint(10000, 99999)
        with open(log, "ab") as f:
            f.write((json.dumps({"time": "2026-11-22T23:59:59Z", "integration": "crm-sync-na", "status": 401, "error": marker}) + "\n").encode())
        m0 = time.monotonic()
        seen = console.read_until(fd, [marker.encode()], m0 + 5)
        latency = time.monotonic() - m0 if seen else None
        console.stop(pid, fd)
        sim.terminate()
        sim.wait()
    mb = written / 1e6
    print(f"appended {mb:.0f} MB in {elapsed:.1f}s ({mb/elapsed:.1f} MB/s)")
    print(f"console CPU while following: {follow_cpu/elapsed*100:.1f}% of a core; parsing the same bytes: {parse_cpu/elapsed*100:.1f}%")
    print(f"besides parsing: {(follow_cpu-parse_cpu)/elapsed*100:.1f}% of a core (target < 10%)")
    print("401 on screen after: " + (f"{latency*1000:.0f} ms" if latency is not None else "not within 5 s") + " (target < 1 s)")


if __name__ == "__main__":
    main()
