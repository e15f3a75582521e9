#!/usr/bin/env python3
"""Regenerate assets/screenshot.svg from the real demo: runs `authwatch demo` in tmux, waits for the timeline to
break an integration, captures the screen with its colours and writes it as an SVG terminal picture (and, with
--text, the plain screen as text).

Usage: cargo build --release && python3 assets/screenshot.py [--wait 50] [--size 120x36]
       python3 assets/screenshot.py --size 80x24 --svg none --text assets/console-80x24.txt
       python3 assets/screenshot.py --size 200x50 --args=--wall --svg assets/wall.svg --text assets/wall-200x50.txt
"""
import argparse, html, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "authwatch")
# xterm's default 16-colour palette.
PALETTE = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
           "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]
FG, BG = "#d0d0d0", "#1c1c1c"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def parse(line):
    """Split one captured line into (text, fg, bg, bold, reverse) runs."""
    runs, fg, bg, bold, rev, pos = [], None, None, False, False, 0
    for m in SGR.finditer(line):
        if m.start() > pos:
            runs.append((line[pos:m.start()], fg, bg, bold, rev))
        codes = [int(c) if c else 0 for c in m.group(1).split(";")] or [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bg, bold, rev = None, None, False, False
            elif c == 1:
                bold = True
            elif c == 22:
                bold = False
            elif c == 7:
                rev = True
            elif c == 27:
                rev = False
            elif 30 <= c <= 37:
                fg = c - 30
            elif 90 <= c <= 97:
                fg = c - 90 + 8
            elif c == 39:
                fg = None
            elif 40 <= c <= 47:
                bg = c - 40
            elif 100 <= c <= 107:
                bg = c - 100 + 8
            elif c == 49:
                bg = None
            elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                if c == 38:
                    fg = codes[i + 2] if codes[i + 2] < 16 else None
                else:
                    bg = codes[i + 2] if codes[i + 2] < 16 else None
                i += 2
            i += 1
        pos = m.end()
    runs.append((line[pos:], fg, bg, bold, rev))
    return runs


def svg(lines, cols, rows):
    cw, ch = 8.4, 17
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols*cw+20:.0f}" height="{rows*ch+20}" '
           f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14">',
           f'<rect width="100%" height="100%" fill="{BG}" rx="6"/>']
    for y, line in enumerate(lines[:rows]):
        x = 0
        for text, fg, bg, bold, rev in parse(line):
            if not text:
                continue
            f = PALETTE[fg] if fg is not None else FG
            b = PALETTE[bg] if bg is not None else None
            if rev:
                f, b = (b or BG), f
            px, py = 10 + x * cw, 10 + y * ch
            if b:
                out.append(f'<rect x="{px:.1f}" y="{py}" width="{len(text)*cw:.1f}" height="{ch}" fill="{b}"/>')
            weight = ' font-weight="bold"' if bold else ""
            out.append(f'<text x="{px:.1f}" y="{py+13}" fill="{f}"{weight} xml:space="preserve" '
                       f'textLength="{len(text)*cw:.1f}">{html.escape(text)}</text>')
            x += len(text)
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait", type=float, default=50)
    ap.add_argument("--size", default="120x36")
    ap.add_argument("--args", default="", help="extra arguments for `authwatch demo`, e.g. --wall")
    ap.add_argument("--svg", default=os.path.join("assets", "screenshot.svg"), help="SVG to write, or none")
    ap.add_argument("--text", default=None, help="also write the plain screen to this file")
    ap.add_argument("--bin", default=BIN, help="the authwatch binary (default: target/release/authwatch)")
    args = ap.parse_args()
    cols, rows = map(int, args.size.split("x"))
    if not os.path.exists(args.bin):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as tmp:
        sock = f"authwatch-shot-{os.getpid()}"
        cmd = f"XDG_STATE_HOME={tmp} TERM=xterm-256color {args.bin} demo {args.args}"
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", str(cols), "-y", str(rows), cmd], check=True)
        try:
            time.sleep(args.wait)
            cap = subprocess.run(["tmux", "-L", sock, "capture-pane", "-e", "-p"], check=True,
                                 capture_output=True, text=True).stdout
            plain = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p"], check=True,
                                   capture_output=True, text=True).stdout
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], check=False)
    if args.svg != "none":
        path = os.path.join(ROOT, args.svg)
        with open(path, "w") as f:
            f.write(svg(cap.split("\n"), cols, rows))
        print(f"wrote {path}")
    if args.text:
        path = os.path.join(ROOT, args.text)
        lines = [l.rstrip() for l in plain.split("\n")[:rows]]
        with open(path, "w") as f:
            f.write("\n".join(lines).rstrip("\n") + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
