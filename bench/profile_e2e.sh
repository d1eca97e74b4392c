#!/usr/bin/env bash
# profile_e2e.sh: a system-wide CPU profile of the end-to-end benchmark
# (docs/PERFORMANCE.md, "Where the time goes"). Runs bench/e2e_bench once
# under `perf record -a -g` and prints, from the samples:
#   - each kind of process's share of the machine (jobd, relayd, fleetsim,
#     redis-server, ZeroMQ's I/O threads, gRPC, the bench, idle);
#   - per process, the hottest functions by self time;
#   - per process, Muster's own functions by inclusive time (what a flame
#     graph's widest muster:: frames would show), from the call graphs.
# Frame pointers: Muster is built with -fno-omit-frame-pointer; Debian's
# libraries (SQLite, libzmq, libsodium, libc) are not, so their callers
# show as their own entry points.
#
#   bench/profile_e2e.sh [--fleets=100000] [--jobs=2] [--ingest_jobs=10] [--out=DIR]
# Needs perf (Debian package linux-perf; installed if missing) and root or
# kernel.perf_event_paranoid <= -1 for a system-wide record. A quiet
# machine: other processes' samples show in the table as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
fleets=100000 jobs=2 ingest_jobs=10 out=""
for arg in "$@"; do
  case "$arg" in
    --fleets=*) fleets="${arg#*=}" ;;
    --jobs=*) jobs="${arg#*=}" ;;
    --ingest_jobs=*) ingest_jobs="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    *) echo "profile_e2e.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if ! command -v perf >/dev/null; then
  apt-get install -y linux-perf >/dev/null
fi
out="${out:-$(mktemp -d /tmp/muster-profile.XXXXXX)}"
mkdir -p "$out"
bazel build -c opt //bench:e2e_bench //server:jobd //relay:relayd //minion:fleetsim \
  >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
echo "== recording (fleet $fleets, $jobs sequential + $ingest_jobs back-to-back jobs) into $out"
perf record -a -F 499 -g -o "$out/perf.data" -- \
  bazel-bin/bench/e2e_bench --fleets="$fleets" --runs=1 --jobs="$jobs" \
  --ingest_jobs="$ingest_jobs" --getjob_calls=10 >"$out/e2e_bench.txt" 2>"$out/perf-record.log"
grep -E "run 1|FAILED" "$out/e2e_bench.txt" || true
perf script -i "$out/perf.data" -F comm,pid,tid,ip,sym 2>/dev/null >"$out/perf.script"
python3 - "$out/perf.script" <<'EOF'
import collections, sys

# perf script -F comm,pid,tid,ip,sym: a header line "comm pid/tid" per
# sample, then one "address symbol" line per frame (leaf first), then a
# blank line. A thread is charged to its process (the comm of its pid's
# main thread): ZeroMQ's I/O threads to relayd or fleetsim, gRPC's to jobd.
PROCESSES = ("jobd", "relayd", "fleetsim", "redis-server", "e2e_bench")

samples = []  # (comm, pid, tid, frames)
header = None
frames = []
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n")
    if not line.strip():
        if header is not None:
            samples.append(header + (frames,))
        header, frames = None, []
        continue
    if header is None:
        comm, ids = line.strip().rsplit(None, 1)
        pid, _, tid = ids.partition("/")
        header = (comm.strip(), pid, tid or pid)
    else:
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else "[unknown]")
if header is not None:
    samples.append(header + (frames,))
total = len(samples)
if total == 0:
    print("no samples"); sys.exit(1)
main_comm = {pid: comm for comm, pid, tid, _ in samples if pid == tid}

def kind(comm, pid):
    if pid == "0":
        return "idle"
    owner = main_comm.get(pid, comm)
    for name in PROCESSES:
        if owner.startswith(name) or comm.startswith(name):
            return name
    return "other processes"

def thread(comm):
    for prefix, name in (("ZMQbg", "ZeroMQ I/O"), ("grpcpp", "gRPC"), ("jemalloc", "jemalloc")):
        if comm.startswith(prefix):
            return name
    return "own threads"

by_kind = collections.Counter(kind(c, p) for c, p, t, f in samples)
print("\n| process | share of the machine's samples | of which ZeroMQ I/O / gRPC threads |")
print("|---|---|---|")
for k, n in by_kind.most_common():
    threads = collections.Counter(thread(c) for c, p, t, f in samples if kind(c, p) == k)
    extra = " / ".join(f"{100.0 * threads[x] / total:.1f}%" for x in ("ZeroMQ I/O", "gRPC"))
    print(f"| {k} | {100.0 * n / total:.1f}% | {extra} |")

def clean(frame):
    frame = frame.split("+0x")[0]
    return frame if frame and frame != "[unknown]" else "[unknown]"

for k in ("jobd", "relayd", "fleetsim", "redis-server"):
    mine = [f for c, p, t, f in samples if kind(c, p) == k]
    if not mine:
        continue
    self_time = collections.Counter(clean(f[0]) if f else "[unknown]" for f in mine)
    inclusive = collections.Counter()
    for f in mine:
        for name in set(clean(x) for x in f):
            if "muster::" in name:
                inclusive[name] += 1
    print(f"\n### {k}: {100.0 * len(mine) / total:.1f}% of the machine")
    print("\n| self | function |")
    print("|---|---|")
    for name, n in self_time.most_common(12):
        print(f"| {100.0 * n / len(mine):.1f}% | `{name[:110]}` |")
    if inclusive:
        print("\n| inclusive | Muster function (with what it calls) |")
        print("|---|---|")
        for name, n in inclusive.most_common(12):
            print(f"| {100.0 * n / len(mine):.1f}% | `{name[:110]}` |")
EOF
echo
echo "(perf data and the benchmark's output are in $out)"
