#!/usr/bin/env python3
"""The headless agent under load: 1,000 integrations probed against the loopback simulator, 10 live SSE clients;
the agent's CPU and RSS sampled every second.

Usage: python3 bench/agent.py [--seconds 300] [--integrations 1000] [--sse-clients 10] [--probe-interval 30s]
                              [--bin target/release/authwatch]

Builds the release binary first when target/release/authwatch is missing (or use --bin). The simulator runs in its
own process (its CPU and memory are not counted); the scenario is bench/sweep.py's (every integration has its own
grant, so every probe is a token request plus a call). The agent writes its history to a temporary database.
Prints a summary only; everything it starts is stopped and its temporary files removed at the end.
"""
import argparse, os, re, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

sys.dont_write_bytecode = True  # importing sweep.py must not leave bench/__pycache__ behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sweep import scenario as sweep_scenario  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "authwatch")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class SseClient(threading.Thread):
    """GET /api/v1/events over a plain socket (HTTP/1.1, chunked); counts body bytes and events by type."""

    def __init__(self, host, port, stop):
        super().__init__(daemon=True)
        self.host, self.port, self.stop = host, port, stop
        self.bytes = 0
        self.events = {}
        self.error = None
        self.connected = threading.Event()

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported in the summary
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.connected.set()

    def _run(self):
        sock = socket.create_connection((self.host, self.port), timeout=10)
        try:
            sock.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before the response head")
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise ConnectionError(status.decode(errors="replace"))
            chunked = b"transfer-encoding: chunked" in head.lower()
            self.connected.set()
            sock.settimeout(0.5)
            raw, body = buf, b""
            while not self.stop.is_set():
                if chunked:
                    raw, data, done = dechunk(raw)
                else:
                    raw, data, done = b"", raw, False
                if data:
                    self.bytes += len(data)
                    body += data
                    *lines, body = body.split(b"\n")
                    for line in lines:
                        if line.startswith(b"event:"):
                            kind = line[6:].strip().decode(errors="replace")
                            self.events[kind] = self.events.get(kind, 0) + 1
                if done:
                    raise ConnectionError("the agent ended the stream")
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise ConnectionError("the agent closed the connection")
                raw += chunk
        finally:
            sock.close()


def dechunk(raw):
    """Decode the complete chunks at the start of `raw`: (rest, data, last chunk seen)."""
    out = []
    while True:
        end = raw.find(b"\r\n")
        if end < 0:
            return raw, b"".join(out), False
        size = int(raw[:end].split(b";")[0], 16)
        if size == 0:
            return b"", b"".join(out), True
        if len(raw) < end + 2 + size + 2:
            return raw, b"".join(out), False
        out.append(raw[end + 2:end + 2 + size])
        raw = raw[end + 2 + size + 2:]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop_process(p, grace=10):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def drain(stream):
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def wait_line(p, pattern, what, timeout=60):
    """The first match of `pattern` in the process's stdout (read on a thread; the rest keeps being drained)."""
    found = {}

    def reader():
        for line in p.stdout:
            m = re.search(pattern, line)
            if m:
                found["m"] = m
                break
        drain(p.stdout)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if "m" not in found:
        sys.exit(f"{what}: no line matching {pattern!r} within {timeout}s (exit code {p.poll()})")
    return found["m"]


def metric_sum(url, name):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def interrupted(*_):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--integrations", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50, help="simulated API packages (credentials)")
    ap.add_argument("--concurrency", type=int, default=64, help="max_concurrent_probes")
    ap.add_argument("--probe-interval", default="30s")
    ap.add_argument("--sse-clients", type=int, default=10)
    ap.add_argument("--bin", default=None, help="authwatch binary (default: target/release/authwatch)")
    args = ap.parse_args()

    binary = args.bin or BIN
    if not os.path.exists(binary):
        if args.bin:
            sys.exit(f"{binary} does not exist")
        r = subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
        if r.returncode != 0:
            sys.exit("cargo build --release failed")

    # SIGTERM/SIGHUP end the run like Ctrl-C: through the finally below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    sim = agent = None
    stop = threading.Event()
    clients = []
    with tempfile.TemporaryDirectory(prefix="authwatch-bench-") as tmp:
        try:
            text = sweep_scenario(args.integrations, args.clients, args.concurrency)
            text = text.replace("[authwatch]\n", f'[authwatch]\nprobe_interval = "{args.probe_interval}"\n', 1)
            path = os.path.join(tmp, "bench.toml")
            with open(path, "w") as f:
                f.write(text)
            env = dict(os.environ, XDG_STATE_HOME=tmp, XDG_CONFIG_HOME=tmp)
            env.pop("AUTHWATCH_CONFIG", None)
            sim = subprocess.Popen([binary, "simulate", "--scenario", path, "--listen", "127.0.0.1:0",
                                    "--print-config", os.path.join(tmp, "cfg")],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                   cwd=tmp)
            config = wait_line(sim, r"(\S+authwatch\.toml)", "simulator").group(1)

            agent = subprocess.Popen([binary, "agent", "--config", config, "--listen", "127.0.0.1:0",
                                      "--db", os.path.join(tmp, "agent.db")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=tmp)
            drain(agent.stderr)
            url = wait_line(agent, r"listening on (http://\S+)", "agent").group(1)
            host, port = url.removeprefix("http://").rsplit(":", 1)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if urllib.request.urlopen(url + "/healthz", timeout=5).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or agent.poll() is not None:
                    sys.exit(f"agent not healthy at {url} (exit code {agent.poll()})")
                time.sleep(0.1)

            clients = [SseClient(host, int(port), stop) for _ in range(args.sse_clients)]
            for c in clients:
                c.start()
            for c in clients:
                c.connected.wait(30)
            failed = [c.error for c in clients if c.error]
            if failed:
                sys.exit(f"SSE clients failed to connect: {failed}")

            probes_before = metric_sum(url, "authwatch_probes_total")
            samples = []  # (monotonic time, cpu ticks, rss kB)
            start = time.monotonic()
            next_at = start
            while True:
                now = time.monotonic()
                samples.append((now, cpu_ticks(agent.pid), rss_kb(agent.pid)))
                if now - start >= args.seconds:
                    break
                if agent.poll() is not None:
                    sys.exit(f"the agent exited during the run (exit code {agent.returncode})")
                next_at += 1.0
                time.sleep(max(0.0, next_at - time.monotonic()))
            probes = metric_sum(url, "authwatch_probes_total") - probes_before
        finally:
            stop.set()
            for c in clients:
                c.join(5)
            stop_process(agent)
            stop_process(sim)

    (t0, c0, _), (t1, c1, _) = samples[0], samples[-1]
    elapsed = t1 - t0
    mean_cpu = (c1 - c0) / CLK_TCK / elapsed * 100
    per_second = [(b[1] - a[1]) / CLK_TCK / (b[0] - a[0]) * 100 for a, b in zip(samples, samples[1:])]
    max_rss = max(s[2] for s in samples) / 1024
    print(f"agent: {args.integrations} integrations, probe_interval {args.probe_interval}, "
          f"{args.sse_clients} SSE clients, {elapsed:.0f} s sampled every second")
    print(f"agent CPU: mean {mean_cpu:.1f}% of one core (busiest second {max(per_second, default=0):.0f}%)")
    print(f"agent RSS: max {max_rss:.1f} MB (first sample {samples[0][2] / 1024:.1f} MB, "
          f"last {samples[-1][2] / 1024:.1f} MB)")
    by_minute = [s[2] / 1024 for s in samples[::60]] + [samples[-1][2] / 1024]
    print("agent RSS by minute: " + ", ".join(f"{m:.0f}" for m in by_minute) + " MB")
    print(f"probes during the run: {probes:.0f} ({probes / elapsed:.1f}/s)")
    for i, c in enumerate(clients, 1):
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(c.events.items()))
        total = sum(c.events.values())
        err = f"  ERROR: {c.error}" if c.error else ""
        print(f"SSE client {i:2}: {total} events ({kinds}), {c.bytes / 1e6:.2f} MB{err}")


if __name__ == "__main__":
    main()
