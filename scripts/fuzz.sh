#!/usr/bin/env bash
# Fuzzes the line framer, every decoder and the command allow-list with libFuzzer
# (Sources/wiregate-fuzz) for FUZZ_SECONDS (default 60), starting from Tests/fuzz-corpus.
# A crash leaves its input in .build/fuzz-artifacts/: add it to Tests/fuzz-corpus with a
# regression test, then fix. Inputs that found new paths go to .build/fuzz-corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
# Its own build directory: the sanitizer instruments every module. lld: gold fails on this link.
swift build -c release --product wiregate-fuzz --build-path .build/fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >/dev/null
mkdir -p .build/fuzz-corpus .build/fuzz-artifacts
# The Swift backtracer and ASan both want the crash; ASan's report is the useful one.
SWIFT_BACKTRACE=enable=no .build/fuzz/release/wiregate-fuzz -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix=.build/fuzz-artifacts/ .build/fuzz-corpus Tests/fuzz-corpus 2>&1 \
  | grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Base64)' \
  || true
# grep hides libFuzzer's progress lines; the verdict is whether it left a crash behind.
if compgen -G ".build/fuzz-artifacts/*" >/dev/null; then
  echo "fuzz: found crashing inputs in .build/fuzz-artifacts/" >&2
  exit 1
fi
echo "fuzz: ${seconds} s without a crash"
