#!/usr/bin/env bash
# Throughput of `authwatch scan` beside `LC_ALL=C grep -c` on the same JSON-lines file, in the same run.
#
# Usage: bench/scan.sh [SIZE_MB]            (default 1024; the file is cached in $BENCH_DIR, default /tmp)
#   AUTHWATCH_BENCH_CONFIG=path.toml        optional config passed to `authwatch scan --config`
#   RUNS=3                                  best of RUNS for every tool
#
# The file is realistic middleware output (~270-byte lines, 2% 401/403, numbers elsewhere that often contain
# "401"/"403", status sometimes a string). Both tools read it from the page cache (it is read once first).
# Runs target/release/authwatch scan (cargo build --release first).
# Target: authwatch at least half of grep's throughput.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SIZE_MB="${1:-1024}"
RUNS="${RUNS:-3}"
DIR="${BENCH_DIR:-/tmp}"
FILE="$DIR/authwatch-scan-bench-${SIZE_MB}m.jsonl"
BIN="$ROOT/target/release/authwatch"

if [[ ! -s "$FILE" ]]; then
  echo "generating $FILE (${SIZE_MB} MB)..." >&2
  python3 - "$FILE" "$SIZE_MB" <<'PY'
import random, sys
path, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(1234)
errors = ["invalid_client", "unsupported_grant_type", "Token Expired", "Login failed",
          "Insufficient privileges to complete this action.",
          "Unable to validate App Keys(ClientID/ClientSecret) provided"]
clients = [("crmclient", "100", "mcaaaaaaaaaaaaaaaaaaaaaaaaaa"), ("sharedclient", "200", "mcbbbbbbbbbbbbbbbbbbbbbbbbbb"),
           ("sharedclient", "300", "mcbbbbbbbbbbbbbbbbbbbbbbbbbb"), ("strangerclient", "555", "mczzzzzzzzzzzzzzzzzzzzzzzzzz")]
paths = ["data/v1/async/dataextensions/key:Contacts/rows", "messaging/v1/email/messages/",
         "interaction/v1/events", "asset/v1/content/assets/query", "platform/v1/tokenContext"]
lines = []
for _ in range(60000):  # a ~16 MB block, repeated
    cid, acc, host = rng.choice(clients)
    roll = rng.randrange(1000)
    status = 401 if roll < 12 else 403 if roll < 20 else 500 if roll < 40 else 429 if roll < 60 else 200
    st = f'"{status}"' if rng.randrange(10) == 0 else str(status)
    err = "null" if status == 200 else '"%s"' % rng.choice(errors)
    lines.append(
        '{"time":"2026-10-%02dT%02d:%02d:%02d.%03dZ","level":"%s","service":"crm-middleware","request_id":"%016x",'
        '"method":"POST","url":"https://%s.rest.marketingcloudapis.com/%s","status":%s,"duration_ms":%d,'
        '"bytes":%d,"client_id":"%s","account_id":"%s","error":%s}\n'
        % (rng.randrange(1, 29), rng.randrange(24), rng.randrange(60), rng.randrange(60), rng.randrange(1000),
           "info" if status == 200 else "warn", rng.getrandbits(64), host, rng.choice(paths), st,
           rng.randrange(5000), rng.randrange(100000), cid, acc, err))
block = "".join(lines).encode()
target = size_mb * 1024 * 1024
with open(path + ".tmp", "wb") as f:
    written = 0
    while written + len(block) <= target:
        f.write(block); written += len(block)
    rest = block[: block.rfind(b"\n", 0, target - written) + 1]
    f.write(rest)
import os; os.replace(path + ".tmp", path)
PY
fi

BYTES=$(stat -c %s "$FILE")
cat "$FILE" > /dev/null  # page cache

now() { date +%s.%N; }
# best_of CMD...: prints the best wall time in seconds over $RUNS runs; the last stdout goes to $OUT
best_of() {
  local best="" t0 t1 dt
  for _ in $(seq "$RUNS"); do
    t0=$(now); OUT=$("$@"); t1=$(now)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [[ -z "$best" ]] || (( $(echo "$dt < $best" | bc -l) )); then best=$dt; fi
  done
  echo "$best"
}
mbps() { echo "scale=0; $BYTES / 1000000 / $1" | bc -l; }

OUT=""
T_GREP_F=$(best_of env LC_ALL=C grep -c -F '"status":401' "$FILE"); C_GREP_F=$(LC_ALL=C grep -c -F '"status":401' "$FILE")
T_GREP_E=$(best_of env LC_ALL=C grep -c -E '"status":"?40[13]"?,' "$FILE"); C_GREP_E=$(LC_ALL=C grep -c -E '"status":"?40[13]"?,' "$FILE")

if [[ ! -x "$BIN" ]]; then
  echo "bench/scan.sh: build first: cargo build --release" >&2; exit 1
fi
HOW="target/release/authwatch scan --format json"
ARGS=(scan "$FILE" --format json)
[[ -n "${AUTHWATCH_BENCH_CONFIG:-}" ]] && ARGS+=(--config "$AUTHWATCH_BENCH_CONFIG")
T_AW=$(best_of "$BIN" "${ARGS[@]}"); AW_OUT=$("$BIN" "${ARGS[@]}")

printf 'file: %s (%d MB, %d lines)\n' "$FILE" $((BYTES / 1000000)) "$(echo "$AW_OUT" | sed -n 's/.*"lines":\([0-9]*\).*/\1/p')"
printf '%-46s %8.3f s  %6d MB/s  count=%s\n' "LC_ALL=C grep -c -F '\"status\":401'" "$T_GREP_F" "$(mbps "$T_GREP_F")" "$C_GREP_F"
printf '%-46s %8.3f s  %6d MB/s  count=%s\n' "LC_ALL=C grep -c -E '\"status\":\"?40[13]\"?,'" "$T_GREP_E" "$(mbps "$T_GREP_E")" "$C_GREP_E"
printf '%-46s %8.3f s  %6d MB/s\n' "authwatch scan" "$T_AW" "$(mbps "$T_AW")"
echo "  via: $HOW"
echo "  report: $AW_OUT"
AW_TOTAL=$(echo "$AW_OUT" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(x["401"]+x["403"] for x in r["integrations"]+[r["unmatched"]]))')
if [[ "$AW_TOTAL" == "$C_GREP_E" ]]; then echo "  401+403 total $AW_TOTAL == grep -E count"; else echo "  MISMATCH: authwatch 401+403 = $AW_TOTAL, grep -E = $C_GREP_E"; fi
printf 'ratio authwatch/grep -F: %.2f   authwatch/grep -E: %.2f   (target >= 0.50)\n' \
  "$(echo "$T_GREP_F / $T_AW" | bc -l)" "$(echo "$T_GREP_E / $T_AW" | bc -l)"
