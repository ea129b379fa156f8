#!/usr/bin/env bash
# Fuzz the ONNX importer or the VNNLIB parser with SharpFuzz + AFL++ for a fixed budget.
#   tests/fuzz/run.sh [onnx|vnnlib|all] [seconds-per-target]     (default: all 120)
# Output goes to tests/fuzz/out/ (git-ignored): build/ (instrumented harness), replay/ (uninstrumented copy),
# findings-<target>/ (AFL state).
set -euo pipefail

TARGET="${1:-all}"
SECONDS_BUDGET="${2:-120}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/out"
TOOLS="$OUT/tools"
BUILD="$OUT/build"
mkdir -p "$OUT"

# 1. AFL++ (Debian package `afl++`).
if ! command -v afl-fuzz >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq afl++
fi

# 2. The sharpfuzz instrumentation tool (SharpFuzz.CommandLine), local to tests/fuzz/out.
if [ ! -x "$TOOLS/sharpfuzz" ]; then
    dotnet tool install --tool-path "$TOOLS" SharpFuzz.CommandLine
fi

# 3. Publish the harness and instrument Engine.Onnx.dll (the code under test) in place.
rm -rf "$BUILD"
dotnet publish "$HERE/Engine.Fuzz/Engine.Fuzz.csproj" -c Release -o "$BUILD" --nologo -v quiet
# An uninstrumented copy for replaying findings: instrumented code only runs under afl-fuzz.
rm -rf "$OUT/replay" && cp -r "$BUILD" "$OUT/replay"
"$TOOLS/sharpfuzz" "$BUILD/Engine.Onnx.dll"

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1
export AFL_NO_AFFINITY=1 AFL_AUTORESUME=1

summary() {
    local t="$1" dir="$OUT/findings-$1/default"
    local stats="$dir/fuzzer_stats"
    local execs="?" crashes="?" hangs="?"
    if [ -f "$stats" ]; then
        execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
        crashes=$(awk -F' *: *' '$1=="saved_crashes"||$1=="unique_crashes"{print $2}' "$stats" | head -1)
        hangs=$(awk -F' *: *' '$1=="saved_hangs"||$1=="unique_hangs"{print $2}' "$stats" | head -1)
    fi
    echo "== $t: execs=$execs crashes=$crashes hangs=$hangs"
    for f in "$dir"/crashes/id:* "$dir"/hangs/id:*; do
        [ -e "$f" ] && echo "   $f"
    done
    return 0
}

run_target() {
    local t="$1"
    echo "== fuzzing $t for ${SECONDS_BUDGET}s"
    # afl-fuzz exits on its own after -V seconds; the outer timeout is a safety net for a stuck start-up.
    timeout --signal=INT $((SECONDS_BUDGET + 120)) \
        afl-fuzz -i "$HERE/corpus/$t" -o "$OUT/findings-$t" -t 5000 -m none -V "$SECONDS_BUDGET" \
        -- dotnet "$BUILD/Engine.Fuzz.dll" "$t" > "$OUT/afl-$t.log" 2>&1 || echo "   (afl-fuzz exited with $?; see $OUT/afl-$t.log)"
}

case "$TARGET" in
    all) TARGETS=(onnx vnnlib) ;;
    onnx|vnnlib) TARGETS=("$TARGET") ;;
    *) echo "usage: $0 [onnx|vnnlib|all] [seconds]" >&2; exit 2 ;;
esac
for t in "${TARGETS[@]}"; do run_target "$t"; done
echo
for t in "${TARGETS[@]}"; do summary "$t"; done
echo "Replay inputs: dotnet $OUT/replay/Engine.Fuzz.dll <target> <file>..."
