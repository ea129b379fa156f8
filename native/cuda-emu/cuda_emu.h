// The CUDA C++ dialect of kernels/*.cu, as g++ compiles it for the CPU emulator (native/cuda-emu, README.md). Every kernel runs
// once per CUDA thread on a fiber of its own, so __syncthreads and warp shuffles block exactly as on a GPU; shared
// memory is a function-static (blocks run one at a time, and one host thread runs queued work at a time). Precise intrinsics (__fadd_rn ...) are the plain float
// operations; the library is built with -ffp-contract=off so nothing is fused that the kernel does not fuse itself.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <tuple>
#include <utility>

#ifdef EMU_SCAN
// The pre-pass that lists the kernels after macro expansion keeps a marker where __global__ was.
#define __global__ __emu_global__
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// Shared arrays are statics in one section, which the executor fills with NaN bytes at each launch: a read of shared
// memory nothing wrote shows (on a GPU it gives whatever was there).
#define __shared__ static __attribute__((section("emu_shared")))

struct uint3 { unsigned x, y, z; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

extern uint3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim

// Synchronisation: the calling fiber yields until its whole block (or warp) has arrived.
void emu_syncthreads();
uint64_t emu_shuffle(uint64_t bits, int kind, int param, int width);
static inline void __syncthreads() { emu_syncthreads(); }

template <class T> static inline uint64_t emu_bits(T v) { uint64_t b = 0; memcpy(&b, &v, sizeof(T)); return b; }
template <class T> static inline T emu_from_bits(uint64_t b) { T v; memcpy(&v, &b, sizeof(T)); return v; }
template <class T> static inline T __shfl_down_sync(unsigned, T v, int delta, int width = 32)
{ return emu_from_bits<T>(emu_shuffle(emu_bits(v), 0, delta, width)); }
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int laneMask, int width = 32)
{ return emu_from_bits<T>(emu_shuffle(emu_bits(v), 1, laneMask, width)); }

// Blocks run one at a time on one host thread, so an atomic is the plain read-modify-write.
static inline int atomicMin(int* p, int v) { int old = *p; if (v < old) *p = v; return old; }
static inline int atomicAdd(int* p, int v) { int old = *p; *p = old + v; return old; }
static inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }

static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }

// Kernel registration (the emulator looks kernels up by name): the parameter list is deduced from the function, so
// the launch checks the packed parameter block's size and unpacks each argument at its C alignment.
struct EmuKernel
{
    const char* name;
    void* fn;
    size_t paramBytes;
    void* (*unpack)(void* fn, const unsigned char* params);   // a heap copy of the arguments for run
    void (*run)(void* pack);                                   // one CUDA thread
    void (*release)(void* pack);
};
void emu_register(const EmuKernel& k);

template <class... A> struct EmuSignature
{
    static constexpr size_t count = sizeof...(A);
    static constexpr size_t offset(size_t i)
    {
        constexpr size_t sizes[] = {sizeof(A)..., 0}, aligns[] = {alignof(A)..., 1};
        size_t at = 0;
        for (size_t j = 0; j <= i && j < count; j++)
        {
            at = (at + aligns[j] - 1) / aligns[j] * aligns[j];
            if (j < i) at += sizes[j];
        }
        return at;
    }
    static constexpr size_t bytes()
    {
        constexpr size_t sizes[] = {sizeof(A)..., 0};
        return count == 0 ? 0 : offset(count - 1) + sizes[count == 0 ? 0 : count - 1];
    }
    template <class T> static T load(const unsigned char* p) { T v; memcpy((void*)&v, p, sizeof(T)); return v; }
    template <size_t... I> static std::tuple<A...> unpack(const unsigned char* p, std::index_sequence<I...>)
    { return std::tuple<A...>(load<A>(p + offset(I))...); }
};

template <class... A> struct EmuPack { void (*f)(A...); std::tuple<A...> args; };

template <class... A> EmuKernel emu_kernel(const char* name, void (*f)(A...))
{
    using Sig = EmuSignature<A...>;
    EmuKernel k;
    k.name = name;
    k.fn = (void*)f;
    k.paramBytes = Sig::bytes();
    k.unpack = [](void* fn, const unsigned char* p) -> void* {
        return new EmuPack<A...>{(void (*)(A...))fn, Sig::unpack(p, std::index_sequence_for<A...>{})};
    };
    k.run = [](void* pack) { auto* q = static_cast<EmuPack<A...>*>(pack); std::apply(q->f, q->args); };
    k.release = [](void* pack) { delete static_cast<EmuPack<A...>*>(pack); };
    return k;
}

#define EMU_REGISTER(fn) static bool emu_registered_##fn = (emu_register(emu_kernel(#fn, &fn)), true);
