#!/usr/bin/env bash
# On the GPU machine, the blocking call that keeps it while a session started by
# gpu_session.sh runs (the machine goes back 30 s after a call ends): waits up to
# SECONDS or until the session's process ends, every 30 s packing what has landed
# in RES (no weights, no traces) to $OUT/res.tgz, so what a call brings back is
# never older than 30 s; prints each engine that ended since the start (one line:
# time, job, ok, start-up, model and K, the error's last words) and the log's end.
# usage: gpu_watch.sh SECONDS [RES=/tmp/res] [PIDFILE=/tmp/session.pid]
set -uo pipefail
limit=${1:?usage: gpu_watch.sh SECONDS [RES] [PIDFILE]}
res=${2:-/tmp/res}
pidfile=${3:-/tmp/session.pid}
out=${OUT:-/tmp/out}
mkdir -p "$out"
pack() {
  tar -C "$(dirname "$res")" -czf "$out/res.tgz.tmp" --exclude='*.safetensors' \
    --exclude='*trace*' --exclude='*.bin' "$(basename "$res")" "$(basename "$res").log" \
    2>/dev/null
  mv -f "$out/res.tgz.tmp" "$out/res.tgz"
}
start=$(date +%s)
while :; do
  pack
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "session process ended"; break
  fi
  [ $(( $(date +%s) - start )) -ge "$limit" ] && break
  sleep 30
done
pack
python3 - "$res" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "engines.jsonl"))):
    job = os.path.basename(os.path.dirname(path))
    for line in open(path):
        e = json.loads(line)
        sc = e.get("speculative_config") or {}
        k = sc.get("num_speculative_tokens", "")
        err = (e.get("error") or "").strip().splitlines()[-1:] or [""]
        print(f"{e['time']} {job[-28:]} {'ok  ' if e['ok'] else 'FAIL'} "
              f"{(e.get('startup_s') or 0):5.1f}s {os.path.basename(str(e['model']))} "
              f"{os.path.basename(str(sc.get('model', '')))} K={k} "
              f"acc={e.get('per_pos_acceptance')} {err[0][-160:]}")
PY
echo "--- $res.log"; tail -c 1500 "$res.log" 2>/dev/null
for f in "$res"/*.log; do echo "--- $f"; tail -c 600 "$f"; done 2>/dev/null
nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>/dev/null || true
