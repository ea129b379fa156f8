// Running a launch: one fiber per CUDA thread of the running block, blocks one after another, and the race check.
#include "emu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>

// Plain globals, like the executor: one host thread runs queued work at a time (under the emulator's lock).
uint3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;

// The linker's bounds of the section every kernel's __shared__ arrays are in (cuda_emu.h); weak: none may exist.
extern "C" unsigned char __start_emu_shared[] __attribute__((weak)), __stop_emu_shared[] __attribute__((weak));

namespace emu {

std::unordered_map<std::string, EmuKernel>& Registry()
{
    static std::unordered_map<std::string, EmuKernel> r;
    return r;
}

namespace {

// Fibers: one per CUDA thread of the running block, switched by a minimal x86-64 context switch (callee-saved
// registers, MXCSR and the x87 control word), since swapcontext's signal-mask system call would dominate.

extern "C" void emu_switch(void** save, void* to);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch,.-emu_switch
)");

enum FiberState { Ready, AtBarrier, AtWarp, Done };

struct Fiber
{
    void* sp;
    FiberState state;
    uint3 tid;
    uint64_t value, result;
    int kind, param, width;
};

constexpr size_t StackBytes = 64 * 1024, GuardBytes = 4096, MaxBlockThreads = 1024;

struct Executor
{
    unsigned char* stacks = nullptr;
    Fiber fibers[MaxBlockThreads];
    void* scheduler = nullptr;
    Fiber* current = nullptr;
    const EmuKernel* kernel = nullptr;
    void* pack = nullptr;
    bool active = false;   // a kernel (or cuBLAS call) is running: a fault is the kernel's
    const char* what = "";
    pthread_t thread{};    // the thread running it
};
Executor X;

extern "C" void emu_fiber_main()
{
    X.kernel->run(X.pack);
    X.current->state = Done;
    emu_switch(&X.current->sp, X.scheduler);
    __builtin_unreachable();
}

void InitStacks()
{
    if (X.stacks) return;
    size_t slot = StackBytes + GuardBytes;
    void* p = mmap(nullptr, slot * MaxBlockThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { perror("cuda-emu: fiber stacks"); abort(); }
    X.stacks = (unsigned char*)p;
    for (size_t i = 0; i < MaxBlockThreads; i++) mprotect(X.stacks + i * slot, GuardBytes, PROT_NONE);   // overflow guard
}

void StartFiber(Fiber& f, size_t index)
{
    uint32_t mxcsr = __builtin_ia32_stmxcsr();
    uint16_t fpucw;
    asm volatile("fnstcw %0" : "=m"(fpucw));
    uintptr_t top = ((uintptr_t)(X.stacks + index * (StackBytes + GuardBytes) + GuardBytes + StackBytes)) & ~(uintptr_t)15;
    uint64_t* s = (uint64_t*)top;
    s[-1] = 0;                              // the entry's "return address" slot: rsp = 8 mod 16 as after a call
    s[-2] = (uint64_t)&emu_fiber_main;      // where emu_switch's ret goes
    for (int r = 3; r <= 8; r++) s[-r] = 0;  // rbp, rbx, r12-r15
    s[-9] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    f.sp = &s[-9];
    f.state = Ready;
}

void Yield(FiberState state)
{
    X.current->state = state;
    emu_switch(&X.current->sp, X.scheduler);
}

// Runs one block; an empty string, or why it could not finish.
std::string RunBlock(uint3 block, bool reverse)
{
    unsigned n = block.x * block.y * block.z;
    for (unsigned t = 0; t < n; t++)
    {
        Fiber& f = X.fibers[t];
        f.tid = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        StartFiber(f, t);
    }
    unsigned live = n;
    for (;;)
    {
        for (unsigned i = 0; i < n; i++)
        {
            Fiber& f = X.fibers[reverse ? n - 1 - i : i];
            if (f.state != Ready) continue;
            X.current = &f;
            emu_threadIdx = f.tid;
            emu_switch(&X.scheduler, f.sp);
            if (f.state == Done) live--;
        }
        if (live == 0) return "";
        bool released = false;
        // A warp's shuffle completes when every lane of it that has not exited has arrived.
        for (unsigned w = 0; w * 32 < n; w++)
        {
            unsigned lo = w * 32, hi = lo + 32 < n ? lo + 32 : n, alive = 0, arrived = 0;
            for (unsigned t = lo; t < hi; t++)
            {
                if (X.fibers[t].state != Done) alive++;
                if (X.fibers[t].state == AtWarp) arrived++;
            }
            if (alive == 0 || arrived != alive) continue;
            for (unsigned t = lo; t < hi; t++)
            {
                Fiber& f = X.fibers[t];
                if (f.state != AtWarp) continue;
                unsigned lane = t - lo, width = (unsigned)f.width, src = lane;
                if (f.kind == 0) { if (lane % width + (unsigned)f.param < width) src = lane + f.param; }
                else { unsigned s = lane ^ (unsigned)f.param; if (s / width == lane / width) src = s; }
                // A lane that does not exist or did not take part gives an undefined value on a GPU: all ones here.
                f.result = lo + src < hi && X.fibers[lo + src].state == AtWarp ? X.fibers[lo + src].value : ~0ull;
            }
            for (unsigned t = lo; t < hi; t++)
                if (X.fibers[t].state == AtWarp) X.fibers[t].state = Ready;
            released = true;
        }
        if (released) continue;
        unsigned atBarrier = 0;
        for (unsigned t = 0; t < n; t++) atBarrier += X.fibers[t].state == AtBarrier;
        if (atBarrier == live)
        {
            for (unsigned t = 0; t < n; t++)
                if (X.fibers[t].state == AtBarrier) X.fibers[t].state = Ready;
            continue;
        }
        return "the block's threads wait at different synchronisations (__syncthreads reached by only part of the "
               "block, or a shuffle by only part of a warp): a deadlock or undefined behaviour on a GPU";
    }
}

} // namespace

Running Current() { return Running{X.active, X.what, X.kernel, X.thread}; }

void SetLibraryCall(const char* what)
{
    X.thread = pthread_self();
    X.active = what != nullptr;
    X.what = what ? what : "";
}

// Runs every block, in order or (a race check's second run) with blocks and threads in reverse order. Shared memory
// starts as NaN bytes at each launch (later blocks see what earlier ones left, as they may on a GPU).
static void RunGrid(const EmuKernel* k, void* pack, uint3 grid, uint3 block, const std::string& name, bool reverse = false)
{
    if (StickyError) return;   // a failed context runs nothing more
    InitStacks();
    unsigned char *lo = __start_emu_shared, *hi = __stop_emu_shared;
    if (lo && hi > lo) memset(lo, 0xFF, (size_t)(hi - lo));
    X.kernel = k;
    X.pack = pack;
    X.thread = pthread_self();
    X.active = true;
    emu_gridDim = grid;
    emu_blockDim = block;
    uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    for (uint64_t i = 0; i < blocks; i++)
    {
        uint64_t b = reverse ? blocks - 1 - i : i;
        unsigned x = (unsigned)(b % grid.x), y = (unsigned)(b / grid.x % grid.y), z = (unsigned)(b / ((uint64_t)grid.x * grid.y));
        emu_blockIdx = uint3{x, y, z};
        std::string why = RunBlock(block, reverse);
        if (!why.empty())
        {
            char where[96];
            snprintf(where, sizeof where, " (block %u,%u,%u)", x, y, z);
            Fail(719, "kernel " + name + where + ": " + why);
            break;
        }
    }
    X.active = false;
    X.kernel = nullptr;
}

bool RaceCheck()
{
    const char* e = getenv("ENGINE_CUDA_EMU_RACECHECK");   // read at each launch: a test turns it on in a child process
    return e && strcmp(e, "1") == 0;
}

// ENGINE_CUDA_EMU_RACECHECK=1: every launch runs twice from the same memory, the second time with its blocks and the
// threads of each block in reverse order; a kernel whose result depends on that order (a read of what another thread
// writes without a barrier between, or of what another block writes) fails with the first differing byte. The
// memory a kernel can reach is what its pointer arguments point into: the parameter block is scanned for addresses.
void RunChecked(const EmuKernel* k, void* pack, uint3 grid, uint3 block, const std::string& name, const std::vector<unsigned char>& params)
{
    if (!RaceCheck()) { RunGrid(k, pack, grid, block, name); return; }
    std::vector<const Allocation*> reach;
    for (size_t at = 0; at + 8 <= params.size(); at += 8)
    {
        uint64_t v;
        memcpy(&v, params.data() + at, 8);
        const Allocation* a = FindDevice((uintptr_t)v);
        if (a && std::find(reach.begin(), reach.end(), a) == reach.end()) reach.push_back(a);
    }
    std::vector<std::vector<unsigned char>> before, first;
    for (auto* a : reach) before.emplace_back((unsigned char*)a->start, (unsigned char*)a->start + a->bytes);
    RunGrid(k, pack, grid, block, name);
    if (StickyError) return;
    for (auto* a : reach) first.emplace_back((unsigned char*)a->start, (unsigned char*)a->start + a->bytes);
    for (size_t i = 0; i < reach.size(); i++) memcpy((void*)reach[i]->start, before[i].data(), before[i].size());
    RunGrid(k, pack, grid, block, name, true);
    if (StickyError) return;
    for (size_t i = 0; i < reach.size(); i++)
    {
        const unsigned char* now = (const unsigned char*)reach[i]->start;
        auto diff = std::mismatch(first[i].begin(), first[i].end(), now);
        if (diff.first == first[i].end()) continue;
        char buf[320];
        snprintf(buf, sizeof buf, ": its result depends on the order its threads run (byte %zu of an allocation of %zu differs when "
            "blocks and threads run in reverse): a race (a read of what another thread or block writes, without a barrier between)",
            (size_t)(diff.first - first[i].begin()), reach[i]->bytes);
        Fail(719, "kernel " + name + buf);
        return;
    }
}

} // namespace emu

using namespace emu;

void emu_register(const EmuKernel& k) { Registry()[k.name] = k; }

void emu_syncthreads() { Yield(AtBarrier); }

uint64_t emu_shuffle(uint64_t bits, int kind, int param, int width)
{
    Fiber& f = *X.current;
    f.value = bits;
    f.kind = kind;
    f.param = param;
    f.width = width <= 0 || width > 32 || (width & (width - 1)) ? 32 : width;
    Yield(AtWarp);
    return f.result;
}

