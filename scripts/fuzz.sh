#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer for SECONDS each (default 60), then minimizes each corpus
# into fuzz/corpus/<target>/ and prints the executions per target:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). The corpora
# are replayed on stable by `cargo test -p unattended-fuzz-targets`; a crash is left in
# fuzz/artifacts/<target>/ and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(retry_after ratelimit x_ratelimit youtube_range config cron window front_matter robots
    oauth_answer)
fi

# The code is safe Rust (`unsafe_code` is forbidden), so AddressSanitizer would only halve the
# speed; overflow checks and debug assertions stay on.
flags=(--sanitizer none --debug-assertions)

max_len() {
  case "$1" in
    config | front_matter | robots | oauth_answer) echo 4096 ;;
    window) echo 1024 ;;
    *) echo 256 ;;
  esac
}

cargo +nightly fuzz build "${flags[@]}" >/dev/null
failed=()
printf '%-14s %14s %10s %8s\n' target executions exec/s files
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1; then
    failed+=("$target")
    tail -n 40 "$log" >&2
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  # Keeps only the inputs that reach new coverage, so the committed corpus stays small.
  cargo +nightly fuzz cmin "${flags[@]}" "$target" "$corpus" -- -max_len="$(max_len "$target")" \
    -set_cover_merge=1 -use_counters=0 \
    >/dev/null 2>&1
  files="$(find "$corpus" -type f | wc -l)"
  printf '%-14s %14s %10s %8s\n' "$target" "${runs:-?}" "${rate:-?}" "$files"
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
