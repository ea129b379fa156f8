#!/usr/bin/env bash
# The one script run on the GPU machine (issue 4), from the repository root, with the NativeAOT engine built here by
# `./build.sh publish` at out/engine-linux-x64/engine (that machine has no .NET). Checks and GPU benchmarks, each step
# under `timeout` and a total budget, continuing past failures; everything goes to a few files in $OUT:
#   summary.txt          GPU, engine info, step status, the engine-vs-PyTorch table against the issue's targets
#   log.txt              every step's full output
#   selftest.txt         engine selftest --device cuda
#   selftest_memory.txt  the 10,000-step training loop's device-memory check
#   engine_bench.jsonl   the engine's JSON lines (bench ... --device cuda)
#   torch_bench.jsonl    benchmarks/peers/gpu_torch.py's JSON lines (PyTorch CUDA, same work)
#   profile.txt          ENGINE_CUDA_PROFILE tables of the CROWN and training benchmarks
#   certify.jsonl        engine certify of a GPU-trained net on the GPU and on the CPU, one tagged JSON line each
# Environment: OUT (default ./gpu-out), ENGINE, PYTHON, BUDGET_S (default 400), ENGINE_CUDA_LIB (extra library dirs);
# for a dry run on a CPU machine: DEVICE=cpu BATCH=8 ELEMENTWISE_N=1000000 GEMM_SIZES=256, or through the CUDA backend
# on the emulated GPU (./build.sh emu): ENGINE_CUDA_LIB=out/cuda-emu BATCH=4 ELEMENTWISE_N=100000 GEMM_SIZES=64 (the
# certified-training and CROWN-certify steps time out there: the emulator is slow; the PyTorch step needs a GPU).
set -u
cd "$(dirname "$0")/../.."

ENGINE=${ENGINE:-out/engine-linux-x64/engine}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-./gpu-out}
BUDGET_S=${BUDGET_S:-400}
DEVICE=${DEVICE:-cuda}
# The self-test's command line (owner: selftest). The memory run filters every kernel check out, so that it runs only
# the training loop (--memory-steps adds that check to whatever the filter selects).
SELFTEST_ARGS=(selftest --device "$DEVICE")
MEMORY_ARGS=(selftest --device "$DEVICE" --filter no-such-kernel-check --memory-steps 10000)
BATCH=${BATCH:-128}
ELEMENTWISE_N=${ELEMENTWISE_N:-67108864}   # 2^26 floats
GEMM_SIZES=${GEMM_SIZES:-1024 4096 8192}

mkdir -p "$OUT"
LOG="$OUT/log.txt"; SUMMARY="$OUT/summary.txt"; EJSON="$OUT/engine_bench.jsonl"; TJSON="$OUT/torch_bench.jsonl"
: > "$LOG"; : > "$SUMMARY"; : > "$EJSON"; : > "$TJSON"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS
STATUS=()

say() { echo "$*" | tee -a "$LOG"; }

# step NAME TIMEOUT_S FILE|- [JSON] -- command...: runs it under timeout (capped by what is left of the budget),
# output to the terminal and the log, and to FILE (all of it) or to the JSON file (its lines that start with '{').
step() {
  local name=$1 limit=$2 file=$3 json=$4; shift 5
  local left=$((BUDGET_S - (SECONDS - T0)))
  if [ "$left" -lt 10 ]; then
    say "=== SKIP $name: the ${BUDGET_S}s budget is spent"; STATUS+=("SKIP     $name (budget)"); return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "=== $name (timeout ${limit}s, at $((SECONDS - T0))s): $*"
  local t=$SECONDS tmp="$WORK/step.txt"
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$tmp" | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$file" != "-" ] && cat "$tmp" >> "$file"
  [ "$json" != "-" ] && grep '^{' "$tmp" >> "$json"
  local verdict="ok"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMEOUT"; elif [ "$rc" -ne 0 ]; then verdict="FAIL rc=$rc"; fi
  STATUS+=("$(printf '%-8s %s (%ss)' "$verdict" "$name" $((SECONDS - t)))")
  say "=== $name: $verdict in $((SECONDS - t))s"
}

# ---------------------------------------------------------------- the machine
{
  echo "# GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1 | head -5
  grep -m1 'model name' /proc/cpuinfo
  echo "cpus: $(nproc)"
} | tee -a "$SUMMARY" | tee -a "$LOG"
timeout 20 nvidia-smi >> "$LOG" 2>&1

# ---------------------------------------------------------------- CUDA libraries (NVRTC, cuBLAS) for the engine
roots=()
for d in /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /usr/lib64 /opt/nvidia; do [ -d "$d" ] && roots+=("$d"); done
while IFS= read -r sp; do [ -d "$sp/nvidia" ] && roots+=("$sp/nvidia"); done < <(timeout 20 "$PYTHON" -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
libs=$(timeout 30 find "${roots[@]}" -maxdepth 4 \( -name 'libnvrtc.so*' -o -name 'libcublas.so*' \) -not -path '*stubs*' 2>/dev/null | sort)
echo "$libs" >> "$LOG"
dirs=""
for want in libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13 libnvrtc.so.12 libcublas.so.12; do
  d=$(echo "$libs" | grep "/$want\$" | head -1 | xargs -r dirname)
  [ -n "$d" ] && case ":$dirs:" in *":$d:"*) ;; *) dirs="${dirs:+$dirs:}$d" ;; esac
done
export ENGINE_CUDA_LIB="${ENGINE_CUDA_LIB:+$ENGINE_CUDA_LIB:}$dirs"
say "library dirs: ${dirs:-none found (the engine falls back to the system loader)}"

chmod +x "$ENGINE" 2>/dev/null
if [ ! -x "$ENGINE" ]; then say "no engine binary at $ENGINE (build it with ./build.sh publish)"; fi
# The engine gets the directories on its library path too (the libraries' own dependencies: cublasLt, NVRTC's
# builtins); PyTorch keeps its own environment, so that it loads the libraries it was built with.
EN=(env "LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$ENGINE")

# ---------------------------------------------------------------- checks
step "engine info" 30 "$SUMMARY" - -- "${EN[@]}" info
step "kernels --compile" 120 - - -- "${EN[@]}" kernels --compile
step "selftest" 150 "$OUT/selftest.txt" - -- "${EN[@]}" "${SELFTEST_ARGS[@]}"
step "selftest memory (10,000 steps)" 120 "$OUT/selftest_memory.txt" - -- "${EN[@]}" "${MEMORY_ARGS[@]}"

# ---------------------------------------------------------------- engine GPU benchmarks
B=("${EN[@]}" bench)
for net in mlp cnn; do
  step "bench crown $net" 60 - "$EJSON" -- "${B[@]}" crown --net "$net" --batch "$BATCH" --device "$DEVICE" --export "$WORK/nets"
done
step "bench elementwise" 60 - "$EJSON" -- "${B[@]}" elementwise --n "$ELEMENTWISE_N" --device "$DEVICE"
for n in $GEMM_SIZES; do
  step "bench gemm $n" 45 - "$EJSON" -- "${B[@]}" gemm --n "$n" --device "$DEVICE"
done
step "bench gemm 128x784x256" 45 - "$EJSON" -- "${B[@]}" gemm --m 128 --k 784 --n 256 --device "$DEVICE"
for m in mlp cnn; do
  step "bench train $m" 45 - "$EJSON" -- "${B[@]}" train --model "$m" --batch "$BATCH" --device "$DEVICE"
done
step "bench conv2d" 45 - "$EJSON" -- "${B[@]}" conv2d --device "$DEVICE"
# End to end: two epochs on the embedded Fashion-MNIST subset on the GPU (the last line has the test accuracy).
step "train mlp 2 epochs" 60 - "$EJSON" -- "${EN[@]}" train --model mlp --epochs 2 --batch 128 --device "$DEVICE" --out "$WORK/mlp.safetensors"
# Certified training on the GPU (issue 5's methods through the same graph), then the same weights certified on the GPU
# and on the CPU: the verdicts must agree (up to examples on the float32 rounding edge). CERTIFY_JSON gets the
# certify lines, each prefixed by the device, for the summary.
CJSON="$OUT/certify.jsonl"; : > "$CJSON"
for m in ibp crown-ibp mtlibp sabr; do
  step "train cnn-small $m 6 epochs" 90 - - -- "${EN[@]}" train --model cnn-small --method "$m" --eps 0.05 --epochs 6 --warmup-epochs 1 \
    --ramp-epochs 3 --device "$DEVICE" --out "$WORK/$m.safetensors"
done
certify() {  # certify DEVICE METHOD [args...]: one certify run of the IBP-trained net, its JSON line tagged in CJSON
  local dev=$1 meth=$2; shift 2
  step "certify $meth $dev" 90 - - -- "${EN[@]}" certify "$WORK/ibp.safetensors" --eps 0.05 --method "$meth" --device "$dev" "$@"
  grep '^{' "$WORK/step.txt" | tail -1 | sed "s/^{/{\"device\":\"$dev\",/" >> "$CJSON"
}
for meth in ibp crown alpha-crown; do certify "$DEVICE" "$meth"; certify cpu "$meth"; done
certify "$DEVICE" smoothing --limit 100 --n 1000; certify cpu smoothing --limit 100 --n 1000

# Where the GPU time goes (ENGINE_CUDA_PROFILE=1: every operation bracketed by synchronisations, table on stderr).
for net in mlp cnn; do
  step "profile crown $net" 60 "$OUT/profile.txt" - -- env ENGINE_CUDA_PROFILE=1 "${B[@]}" crown --net "$net" --batch "$BATCH" --device "$DEVICE"
done
step "profile train cnn" 60 "$OUT/profile.txt" - -- env ENGINE_CUDA_PROFILE=1 "${B[@]}" train --model cnn --batch "$BATCH" --device "$DEVICE"

# ---------------------------------------------------------------- the PyTorch peer (same work, same weights for CROWN)
step "gpu_torch.py" 180 - "$TJSON" -- "$PYTHON" benchmarks/peers/gpu_torch.py --dir "$WORK/nets" --batch "$BATCH" --n "$ELEMENTWISE_N" \
  --gemm-sizes "${GEMM_SIZES// /,}" --device "$DEVICE"

# ---------------------------------------------------------------- summary
{
  echo
  echo "## steps (total $((SECONDS - T0))s of ${BUDGET_S}s)"
  printf '%s\n' "${STATUS[@]}"
  echo
  echo "## selftest"
  grep -E 'FAIL|passed, ' "$OUT/selftest.txt" 2>/dev/null | tail -40
  grep -E 'FAIL|passed, |memory|MiB|bytes' "$OUT/selftest_memory.txt" 2>/dev/null | tail -15
  echo
  echo "## certify: the IBP-trained cnn-small, GPU and CPU (same weights)"
  cat "$CJSON" 2>/dev/null
  echo
  timeout 30 "$PYTHON" benchmarks/gpu/summarize_gpu.py "$EJSON" "$TJSON" 2>&1
} | tee -a "$SUMMARY" | tee -a "$LOG"
exit 0
