#!/usr/bin/env bash
# What this crate adds to a release build: the baseline (the stack a JSON-RPC client
# over hyper-util needs) and the same with this crate, each built from clean three
# times; then the crate alone, rebuilt with its dependencies built. Prints the crates
# each build compiles and the wall times. Run it on a quiet machine:
#
#     benches/build_cost/run.sh
#
# Each project resolves its own dependencies (their lock files are not kept), so run
# both in one go to compare like with like.
set -euo pipefail
# A build that fails inside `$(timed …)` must stop the script, not print a time.
shopt -s inherit_errexit
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="$PWD/target"

# Runs a command; prints its wall time in seconds.
timed() {
    local start end
    start=$(date +%s%N)
    "$@"
    end=$(date +%s%N)
    awk -v ns="$((end - start))" 'BEGIN { printf "%.1f", ns / 1e9 }'
}

for project in baseline with_crate; do
    crates=$(cargo tree --manifest-path "$project/Cargo.toml" -e normal,build --prefix none \
        | sed 's/ (\*)$//' | sort -u | wc -l)
    echo "$project: $crates crates"
    for run in 1 2 3; do
        rm -rf "$CARGO_TARGET_DIR"
        secs=$(timed cargo build --quiet --release --manifest-path "$project/Cargo.toml")
        echo "  from clean, run $run: ${secs} s"
    done
done

# The crate itself: its dependencies are built (the last run above), so touching its
# source rebuilds it and relinks the binary.
for run in 1 2 3; do
    touch ../../src/lib.rs
    secs=$(timed cargo build --quiet --release --manifest-path with_crate/Cargo.toml)
    echo "this crate and the link, run $run: ${secs} s"
done
rm -rf "$CARGO_TARGET_DIR" baseline/Cargo.lock with_crate/Cargo.lock
