#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 60): `fuzz/run.sh [SECONDS]`.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`); without them it says so and exits 0, so callers need no check of
# their own. Builds keep debug assertions and overflow checks on (cargo-fuzz's
# default), like the stable replay test.
#
# New inputs go to a scratch corpus under fuzz/target/, seeded from the
# checked-in fuzz/corpus/<target>/, which stays untouched: fold finds back in
# with `cargo +nightly fuzz cmin <target>` after copying them there. Crashes
# land in fuzz/artifacts/<target>/crash-* (git-ignored), which `cargo test -p
# shmpipe-engine --test fuzz_replay` replays on stable; minimise one with
# `cargo +nightly fuzz tmin` and keep it as artifacts/<target>/regression-<what>.
# Exits 1 when any target crashed.
set -uo pipefail

seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "skipped: nightly toolchain not installed"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "skipped: cargo-fuzz not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

if ! targets=$(cargo +nightly fuzz list) || [ -z "$targets" ]; then
    echo "cargo fuzz list found no targets: nothing was fuzzed" >&2
    exit 1
fi

failed=()
for target in $targets; do
    scratch="target/run-corpus/$target"
    mkdir -p "$scratch" "artifacts/$target"
    echo "== fuzzing $target for ${seconds}s"
    # One process (the machine is shared); -timeout turns a hang (an engine
    # loop that never ends) into a reported crash.
    if ! cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "no crashes"
