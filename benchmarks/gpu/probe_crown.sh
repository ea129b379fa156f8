#!/usr/bin/env bash
# Focused CROWN probe (issue 4): unprofiled bench timings, then the ENGINE_CUDA_PROFILE table of the MLP.
cd "$(dirname "$0")/../.."
E=out/engine-linux-x64/engine
d=$(dirname "$(find /opt/torch/.venv/lib /usr/local/cuda* -name 'libnvrtc.so.13' 2>/dev/null | head -1)")
export ENGINE_CUDA_LIB=$d LD_LIBRARY_PATH=$d
for i in 1 2 3; do timeout 60 $E bench crown --net mlp --batch 128 --device cuda; done
timeout 60 $E bench crown --net cnn --batch 128 --device cuda
ENGINE_CUDA_PROFILE=1 timeout 60 $E bench crown --net mlp --batch 128 --device cuda 2>&1 | head -50
timeout 120 $E selftest --device cuda 2>&1 | tail -2
