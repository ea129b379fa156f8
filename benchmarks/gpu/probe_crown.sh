#!/usr/bin/env bash
# Focused CROWN probe (issue 4): unprofiled bench timings, then the ENGINE_CUDA_PROFILE table of the MLP (the timed
# calls only: the bench clears it after its first call), then the self-test's failures, if any.
cd "$(dirname "$0")/../.."
E=out/engine-linux-x64/engine
d=$(dirname "$(find /opt/torch/.venv/lib /usr/local/cuda* -name 'libnvrtc.so.13' 2>/dev/null | head -1)")
export ENGINE_CUDA_LIB=$d LD_LIBRARY_PATH=$d
for i in 1 2 3; do timeout 60 $E bench crown --net mlp --batch 128 --device cuda; done
timeout 60 $E bench crown --net cnn --batch 128 --device cuda
ENGINE_CUDA_PROFILE=1 timeout 60 $E bench crown --net mlp --batch 128 --device cuda 2>&1 | head -50
# Every check that is not "ok" (the fused bound kernels of sessions 14 and 15, forward and backward, first run on a GPU
# here; they pass on the CPU-emulated GPU of native/cuda-emu), then the summary line.
timeout 120 $E selftest --device cuda 2>&1 | grep -v '^ok ' | tail -20
