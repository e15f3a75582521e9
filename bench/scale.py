#!/usr/bin/env python3
"""Issue 16's table at N = 100, 1,000, 10,000 integrations (release build, loopback simulator).

CPU is read from the kernel, never from wall time (the machine is shared): os.wait4 for processes that exit,
/proc/PID/stat (utime + stime) for the console. Columns:

- config load: CPU-s of `authwatch config check` on the generated file;
- check: wall and CPU-s of `authwatch check` (one sweep, N token requests + N calls);
- first frame: ms from spawn until the three pane titles were written, 80x24 pseudo-terminal (the median of
  --frames runs, and their range: one run is at the mercy of a shared machine);
- console start: CPU-s of the console in its first --start seconds (config, first sweep, drawing), with a
  history database holding --days of results at a 5-minute interval (N x 288 x days rows), generated first;
- console idle: % of a core over --idle seconds after that and --settle more (a fresh console shows ages in
  seconds for its first minute, redrawing its body each second; after that, only the clock moves until an age
  turns), probe interval 1 h (clock and re-evaluation only), 200x50; and its RSS.

Usage: cargo build --release && python3 bench/scale.py [--sizes 100,1000,10000] [--days 7] [--start 15]
       [--settle 65] [--idle 60] [--frames 11]
The agent row (1,000 integrations every 30 s + 10 SSE clients) is bench/agent.py.
"""
import argparse, os, re, sqlite3, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import BIN, CLK, TITLES, cpu_ticks, drain, read_until, spawn, stop  # noqa: E402
from sweep import scenario  # noqa: E402


def run_cpu(args, env):
    """Wall seconds and CPU seconds of one process that exits."""
    start = time.perf_counter()
    p = subprocess.Popen([BIN] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, ru.ru_utime + ru.ru_stime, p.returncode


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def simulator(tmp, n, env):
    scen = os.path.join(tmp, f"scale-{n}.toml")
    text = scenario(n, max(1, n // 20), 64).replace("[authwatch]", '[authwatch]\nprobe_interval = "1h"', 1)
    open(scen, "w").write(text)
    sim = subprocess.Popen([BIN, "simulate", "--scenario", scen, "--listen", "127.0.0.1:0",
                            "--print-config", os.path.join(tmp, f"cfg-{n}")], stdout=subprocess.PIPE, text=True,
                           env=env)
    for line in sim.stdout:
        m = re.search(r"(\S+authwatch\.toml)", line)
        if m:
            return sim, m.group(1)
    sys.exit("simulator did not print its config path")


def history_db(path, config, env, n, days):
    """A database with the current schema (made by the binary) and `days` of results for every integration."""
    pid, fd = spawn(["--config", config, "--db", path, "--read-only"], env, 80, 24)
    read_until(fd, TITLES, time.monotonic() + 60)
    stop(pid, fd)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM probes")
    now_ms = int(time.time() * 1000)
    per = 288 * days
    step = 300_000
    for i in range(n):
        name = f"int-{i:04}"
        rows = [(name, now_ms - (per - k) * step, "ok" if (k + i) % 97 else "timeout", "call")
                for k in range(per)]
        db.executemany("INSERT INTO probes (integration, at, outcome, phase) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return n * per


def measure(n, args, tmp, env):
    sim, config = simulator(tmp, n, env)
    try:
        out = {}
        _, out["config"], _ = run_cpu(["config", "check", "--config", config], env)
        out["check_wall"], out["check_cpu"], _ = run_cpu(["check", "--config", config], env)
        frames = []
        for _ in range(args.frames):
            start = time.monotonic()
            pid, fd = spawn(["--config", config, "--read-only"], env, 80, 24)
            ok = read_until(fd, TITLES, start + 60) is not None
            frames.append((time.monotonic() - start) * 1000 if ok else float("nan"))
            stop(pid, fd)
            # The stopped console's first probes may still be in the simulator: let them finish, so each run
            # starts on a quiet machine.
            time.sleep(1)
        frames.sort()
        out["first_frame"] = frames[len(frames) // 2]
        out["first_frame_range"] = (frames[0], frames[-1])
        db = os.path.join(tmp, f"history-{n}.db")
        out["rows"] = history_db(db, config, env, n, args.days)
        pid, fd = spawn(["--config", config, "--db", db], env, 200, 50)
        drain(fd, args.start)
        out["start_cpu"] = cpu_ticks(pid) / CLK
        drain(fd, args.settle)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        written = drain(fd, args.idle)
        elapsed = time.monotonic() - t0
        out["idle"] = (cpu_ticks(pid) - c0) / CLK / elapsed * 100
        out["bytes"] = written / elapsed
        out["rss"] = rss_mb(pid)
        stop(pid, fd)
        return out
    finally:
        sim.terminate()
        sim.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--start", type=float, default=15, help="seconds counted as start-up")
    ap.add_argument("--settle", type=float, default=65, help="seconds between start-up and the idle window")
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--frames", type=int, default=11, help="first-frame runs (the median is shown, with the range)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=tmp, TERM="xterm-256color")
        for n in sizes:
            results[n] = measure(n, args, tmp, env)
            print(f"measured N={n}", file=sys.stderr)
    rows = [
        ("config load (CPU)", lambda r: f"{r['config'] * 1000:.0f} ms", "10,000 in < 100 ms"),
        (f"console time to first frame (80x24), median of {args.frames} (range)",
         lambda r: f"{r['first_frame']:.0f} ms ({r['first_frame_range'][0]:.0f}-{r['first_frame_range'][1]:.0f})",
         "< 50 ms at 10,000"),
        ("`check` wall / CPU", lambda r: f"{r['check_wall']:.2f} s / {r['check_cpu']:.2f} CPU-s", "< 2 s at 10,000"),
        (f"history rows ({args.days} days, 5-min interval)", lambda r: f"{r['rows']:,}", ""),
        (f"console CPU in its first {args.start:.0f} s (history, first sweep)", lambda r: f"{r['start_cpu']:.2f} CPU-s",
         "< 0.5 CPU-s"),
        (f"console idle over {args.idle:.0f} s ({args.settle:.0f} s after that), 200x50, probe interval 1 h", lambda r: f"{r['idle']:.2f}% ({r['bytes']:.0f} B/s)",
         "< 0.1%"),
        ("console RSS after that", lambda r: f"{r['rss']:.0f} MB", "< 50 MB"),
    ]
    print("| figure | " + " | ".join(f"{n:,}" for n in sizes) + " | goal |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for name, fmt, goal in rows:
        print(f"| {name} | " + " | ".join(fmt(results[n]) for n in sizes) + f" | {goal} |")


if __name__ == "__main__":
    main()
