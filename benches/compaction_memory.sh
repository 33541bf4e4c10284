#!/usr/bin/env bash
# Peak memory and CPU time of compaction over a real store.
#
#   benches/compaction_memory.sh STORE_DIR [BINARY] [SECONDS]
#
# STORE_DIR is a data directory the sql_frontends bench made and kept
# (`cargo bench --bench sql_frontends -- --data-dir DIR` keeps DIR/data:
# 10M spans in parts of 3-87 MB over three finished hours). A copy of it is
# served by BINARY (default target/release/grayscope) with
# compact_below = "1GiB" (parts under 256 MiB are small), so the first
# housekeeping (a minute after the start) merges each finished hour's
# parts: about 5M spans per merge. After
# SECONDS (default 130) it prints the server's peak resident memory
# (VmHWM) and CPU time, each merge as the store logs it, and the parts left.
set -euo pipefail
store=${1:?usage: $0 STORE_DIR [BINARY] [SECONDS]}
bin=${2:-target/release/grayscope}
secs=${3:-130}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$store/data" "$work/data"
cat > "$work/grayscope.toml" <<EOF
data_dir = "$work/data"
[otlp]
grpc_addr = "127.0.0.1:0"
http_addr = "127.0.0.1:0"
[api]
addr = "127.0.0.1:0"
[sql]
postgres_addr = "127.0.0.1:0"
flight_addr = "127.0.0.1:0"
[store]
compact_below = "1GiB"
EOF
GRAYSCOPE_LOG=info,grayscope_store=debug "$bin" serve --config "$work/grayscope.toml" \
    > "$work/server.log" 2>&1 &
pid=$!
tick=$(getconf CLK_TCK)
report() {
    local cpu
    cpu=$(awk -v t="$tick" '{printf "%.1f", ($14 + $15) / t}' "/proc/$pid/stat")
    echo "$1: $(grep VmHWM "/proc/$pid/status" | tr -s ' \t' ' '), CPU ${cpu} s"
}
sleep 5
report "opened"
sleep "$secs"
report "after ${secs} s"
kill "$pid"
wait "$pid" 2>/dev/null || true
grep compacted "$work/server.log" || echo "(no merge logged)"
echo "Parquet files (bytes, path; replaced parts stay ten minutes for queries in flight):"
find "$work/data" -name '*.parquet' | sort | xargs ls -l | awk '{print $5, $9}'
