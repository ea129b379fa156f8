#!/usr/bin/env bash
# Builds the CPU emulation of a CUDA device (see README.md) into out/cuda-emu: libengine-cuda-emu.so, with the
# names the engine's library probe looks for (libcuda.so.1, libcublas.so.13) as links to it. Each kernels/*.cu is
# one translation unit; its kernels (names after macro expansion, from a preprocessor pass) are registered by name.
# Rebuilds only when a source is newer than the library. Needs g++ (C++17), x86-64 Linux.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/out/cuda-emu"; obj="$out/obj"; emu="$root/native/cuda-emu"
lib="$out/libengine-cuda-emu.so"
if [ -f "$lib" ] && [ -z "$(find "$emu" "$root/kernels" -newer "$lib" -type f | head -1)" ]; then exit 0; fi
command -v g++ >/dev/null || { echo "cuda-emu: g++ not found" >&2; exit 1; }
rm -rf "$obj" && mkdir -p "$obj"
flags=(-std=c++17 -O2 -fPIC -ffp-contract=off -fno-strict-aliasing -I"$root/kernels" -include "$emu/cuda_emu.h")
pids=()
for f in "$root"/kernels/*.cu; do
  m=$(basename "$f" .cu)
  names=$(g++ -E -P -DEMU_SCAN "${flags[@]}" -x c++ "$f" | grep -oE '__emu_global__ void [A-Za-z_0-9]+' | awk '{print $3}' | sort -u)
  { echo "#include \"$f\""; for n in $names; do echo "EMU_REGISTER($n)"; done; } > "$obj/$m.cpp"
  g++ "${flags[@]}" -w -c "$obj/$m.cpp" -o "$obj/$m.o" & pids+=($!)
done
for f in "$emu"/*.cpp; do
  case "$f" in */emu_test.cpp) continue ;; esac   # check_kernels.cpp is in: its shared arrays join the section
  g++ -std=c++17 -O3 -fPIC -ffp-contract=off -Wall -c "$f" -o "$obj/emu_$(basename "$f" .cpp).o" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
g++ -shared -o "$lib.tmp" "$obj"/*.o -Wl,-T,"$emu/emu_shared.ld"
mv "$lib.tmp" "$lib"
g++ "${flags[@]}" -Wall "$emu/emu_test.cpp" -L"$out" -l:libengine-cuda-emu.so -Wl,-rpath,'$ORIGIN' -o "$out/emu-test"
ln -sf libengine-cuda-emu.so "$out/libcuda.so.1"
ln -sf libengine-cuda-emu.so "$out/libcublas.so.13"
echo "cuda-emu: $(cat "$obj"/*.cpp | grep -c EMU_REGISTER) kernels in $lib"
