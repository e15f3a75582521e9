#!/usr/bin/env python3
"""Console benchmarks in a real pseudo-terminal (release build):

- time to first frame: from spawn until the three pane titles have been written;
- idle CPU and bytes written to the terminal over --idle seconds with only the clock ticking
  (a config whose probe interval is an hour, after the first sweep has settled);
- peak RSS (VmHWM) of `authwatch demo` after --demo-seconds.

Usage: cargo build --release && python3 bench/console.py [--idle 60] [--demo-seconds 60]
Targets (issue 3): first frame < 100 ms; idle CPU < 0.5% of a core; < 200 B/s; demo peak RSS < 40 MB.
"""
import argparse, fcntl, os, pty, re, select, signal, struct, subprocess, sys, tempfile, termios, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "authwatch")
TITLES = [b"Integrations", b"Secret expiry", b"401/403 log"]
CLK = os.sysconf("SC_CLK_TCK")


def spawn(args, env, cols=100, rows=30):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(BIN, [BIN] + args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def read_until(fd, needles, deadline):
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
            if all(n in buf for n in needles):
                return buf
    return None


def drain(fd, seconds):
    total, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                total += len(os.read(fd, 65536))
            except OSError:
                break
    return total


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def hwm_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stop(pid, fd):
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--demo-seconds", type=float, default=60)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=tmp, TERM="xterm-256color")
        # 1. Time to first frame and peak RSS of the demo.
        firsts = []
        for _ in range(5):
            start = time.monotonic()
            pid, fd = spawn(["demo"], env)
            if read_until(fd, TITLES, start + 10) is None:
                sys.exit("demo did not draw its panes")
            firsts.append((time.monotonic() - start) * 1000)
            stop(pid, fd)
        pid, fd = spawn(["demo"], env)
        drain(fd, args.demo_seconds)
        rss = hwm_kb(pid) / 1024
        stop(pid, fd)

        # 2. Idle: a config probed once an hour, so after the first sweep only the clock ticks.
        scen = os.path.join(tmp, "idle.toml")
        demo = open(os.path.join(ROOT, "assets", "scenarios", "demo.toml")).read()
        demo = re.sub(r"(?m)^probe_interval = .*$", "", demo).replace("[authwatch]", "[authwatch]\nprobe_interval = \"1h\"", 1)
        open(scen, "w").write(demo)
        sim = subprocess.Popen([BIN, "simulate", "--scenario", scen, "--print-config", os.path.join(tmp, "cfg")],
                               stdout=subprocess.PIPE, text=True, env=env)
        config = None
        for line in sim.stdout:
            m = re.search(r"(\S+authwatch\.toml)", line)
            if m:
                config = m.group(1)
                break
        pid, fd = spawn(["--config", config, "--db", os.path.join(tmp, "idle.db")], env)
        read_until(fd, TITLES, time.monotonic() + 10)
        drain(fd, 15)  # first sweep, confirm retries and their redraws
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        written = drain(fd, args.idle)
        elapsed = time.monotonic() - t0
        cpu = (cpu_ticks(pid) - c0) / CLK / elapsed * 100
        stop(pid, fd)
        sim.terminate()
        sim.wait()
    firsts.sort()
    print(f"time to first frame: median {firsts[len(firsts)//2]:.1f} ms, max {firsts[-1]:.1f} ms  (target < 100 ms)")
    print(f"idle over {elapsed:.0f}s: CPU {cpu:.2f}% of a core (target < 0.5%), {written/elapsed:.0f} B/s to the terminal (target < 200 B/s)")
    print(f"peak RSS of `authwatch demo` after {args.demo_seconds:.0f}s: {rss:.1f} MB  (target < 40 MB)")


if __name__ == "__main__":
    main()
