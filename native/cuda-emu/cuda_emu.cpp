// A CUDA device emulated on the CPU: the driver API and cuBLAS entry points the engine binds (src/Engine.Cuda/Native),
// running kernels/*.cu compiled by g++ (cuda_emu.h). Built into out/cuda-emu/ as libcuda.so.1 and libcublas.so.13;
// ENGINE_CUDA_LIB=out/cuda-emu makes the engine's CUDA backend run on it, so CI, which has no GPU, runs
// `engine selftest --device cuda` and the GPU tests through the real backend code: launches, parameter packing,
// the caching allocator, the pinned upload ring and the kernels' own logic. Queued work runs when the host
// synchronises, on a worker thread while the host waits.
//
// What it checks that a GPU would not report, or only as a crash: a parameter block whose size is not the kernel's,
// grid / block sizes past the device limits, copies and memsets that leave their allocation, cuBLAS operands past
// theirs, reads of memory nothing wrote (fresh allocations are NaN-filled), a host read of a pinned buffer before the
// stream reached the copy (work runs only when the host synchronises), divergent __syncthreads / shuffles (a
// deadlock on a GPU), and out-of-bounds kernel accesses (a guard page ends every allocation; the fault names the
// kernel, block and thread). Not emulated: concurrency between blocks (they run one after another), CUDA's own
// math-library rounding (glibc's here), timing.
#include "cuda_emu.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>
#include <sys/mman.h>
#include <unistd.h>

// Plain globals, like the executor: one host thread runs queued work at a time (under the emulator's lock).
uint3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Kernel registry (filled by the EMU_REGISTER lines of each kernels module's translation unit)

std::unordered_map<std::string, EmuKernel>& Registry()
{
    static std::unordered_map<std::string, EmuKernel> r;
    return r;
}

// ---------------------------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------------------------
// Memory: every device allocation ends at a PROT_NONE page; pinned host memory is remembered so that copies from
// and to it run in stream order (later), as on a GPU.

struct Allocation { uintptr_t start; size_t bytes; void* map; size_t mapBytes; };
std::map<uintptr_t, Allocation> Device;   // by start
std::map<uintptr_t, size_t> Pinned;       // by start
size_t DeviceUsed = 0;

size_t DeviceTotal()
{
    static size_t total = [] {
        const char* s = getenv("ENGINE_CUDA_EMU_MEMORY_MIB");
        long mib = s ? atol(s) : 0;
        return (size_t)(mib > 0 ? mib : 4096) << 20;
    }();
    return total;
}

const Allocation* FindDevice(uintptr_t p)
{
    auto it = Device.upper_bound(p);
    if (it == Device.begin()) return nullptr;
    --it;
    return p < it->second.start + it->second.bytes ? &it->second : nullptr;
}

bool InDevice(uintptr_t p, size_t bytes)
{
    if (bytes == 0) return true;
    const Allocation* a = FindDevice(p);
    return a && p + bytes <= a->start + a->bytes;
}

bool InPinned(const void* p, size_t bytes)
{
    uintptr_t a = (uintptr_t)p;
    auto it = Pinned.upper_bound(a);
    if (it == Pinned.begin()) return false;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second;
}

std::string Describe(uintptr_t p)
{
    char buf[160];
    const Allocation* a = FindDevice(p);
    if (a) { snprintf(buf, sizeof buf, "%zu bytes into an allocation of %zu", (size_t)(p - a->start), a->bytes); return buf; }
    auto it = Device.upper_bound(p);
    if (it != Device.begin())
    {
        --it;
        snprintf(buf, sizeof buf, "%zu bytes past the end of an allocation of %zu", (size_t)(p - it->second.start - it->second.bytes), it->second.bytes);
        return buf;
    }
    return "outside every allocation";
}

// ---------------------------------------------------------------------------------------------------------------
// The stream: work is queued and runs when the host synchronises (or copies to pageable memory), in order.

std::recursive_mutex Gate;
std::deque<std::function<void()>> Queue;
int StickyError = 0;          // a kernel that failed: every later synchronisation reports it, as on a GPU
std::string StickyReason;

struct Event { bool done = false; std::chrono::steady_clock::time_point at; };

void Fail(int code, const std::string& why)
{
    if (!StickyError) { StickyError = code; StickyReason = why; }
    fprintf(stderr, "cuda-emu: %s\n", why.c_str());
}

// What a host-time probe reads (cuda_emu_stats): the time spent running queued work, which a GPU would run beside the
// host, and the counts of what the host asked for.
struct Stats { uint64_t workNs = 0, launches = 0, blasCalls = 0, copies = 0, waits = 0, apiNs = 0; } Counters;

// Time inside the entry points, less the queued work they ran: the emulator's own per-call cost, which a host-time
// probe subtracts too (a real driver has its own, of a few microseconds a launch).
// With ENGINE_CUDA_EMU_PROFILE=1 the host's time between entry points is kept too, by the call (and kernel) that
// ended each gap, and printed at exit beside the kernels' time.
bool Profiling();
std::map<std::string, std::pair<double, long long>>* HostGaps = nullptr;
std::chrono::steady_clock::time_point LastExit;

struct ApiTimer
{
    const char* name;
    const char* detail = nullptr;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    uint64_t w0 = Counters.workNs;
    explicit ApiTimer(const char* n) : name(n) {}
    ~ApiTimer()
    {
        auto t1 = std::chrono::steady_clock::now();
        Counters.apiNs += (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count() - (Counters.workNs - w0);
        if (Profiling() && LastExit.time_since_epoch().count() != 0)
        {
            auto& g = (*HostGaps)[detail ? std::string(name) + " " + detail : std::string(name)];
            g.first += std::chrono::duration<double>(t0 - LastExit).count();
            g.second++;
        }
        LastExit = t1;
    }
};

// Queued work runs on a worker thread of its own while the host waits, as a GPU runs beside the host: the host's
// caches (and a host-time probe's figure) are not the emulated kernels'. The worker is started on first use and
// again in a forked child (fork keeps only the calling thread).
struct Worker
{
    std::mutex m;
    std::condition_variable cv;
    std::function<void()> job;
    bool busy = false, started = false;
};
Worker* Runner = new Worker();

void RunOnWorker(std::function<void()> job)
{
    Worker& w = *Runner;
    if (!w.started)
    {
        w.started = true;
        static bool atFork = (pthread_atfork(nullptr, nullptr, [] { Runner = new Worker(); }), true);   // the old one's lock may be held
        (void)atFork;
        std::thread([&w] {
            std::unique_lock<std::mutex> lock(w.m);
            for (;;)
            {
                w.cv.wait(lock, [&w] { return w.busy; });
                lock.unlock();
                w.job();
                lock.lock();
                w.busy = false;
                w.cv.notify_all();
            }
        }).detach();
    }
    std::unique_lock<std::mutex> lock(w.m);
    w.job = std::move(job);
    w.busy = true;
    w.cv.notify_all();
    w.cv.wait(lock, [&w] { return !w.busy; });
}

void Flush(const Event* until = nullptr)
{
    if (Queue.empty() || (until && until->done)) return;
    Counters.waits++;
    auto t0 = std::chrono::steady_clock::now();
    RunOnWorker([until] {
        while (!Queue.empty() && !(until && until->done))
        {
            auto op = std::move(Queue.front());
            Queue.pop_front();
            op();
        }
    });
    Counters.workNs += (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

void Diagnose(const std::string& what) { fprintf(stderr, "cuda-emu: %s\n", what.c_str()); }

void OnFault(int sig, siginfo_t* info, void* ctx);
struct sigaction PreviousSegv, PreviousBus;

void InstallFaultHandler()
{
    static bool done = false;
    if (done) return;
    done = true;
    struct sigaction sa{};
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &PreviousSegv);
    sigaction(SIGBUS, &sa, &PreviousBus);
}

void OnFault(int sig, siginfo_t* info, void* ctx)
{
    if (X.active)
    {
        uintptr_t a = (uintptr_t)info->si_addr;
        if (X.kernel)
            fprintf(stderr, "cuda-emu: invalid memory access in kernel %s, block (%u,%u,%u), thread (%u,%u,%u): address %#lx, %s\n",
                X.kernel->name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, emu_threadIdx.x, emu_threadIdx.y, emu_threadIdx.z,
                (unsigned long)a, Describe(a).c_str());
        else
            fprintf(stderr, "cuda-emu: invalid memory access in %s: address %#lx, %s\n", X.what, (unsigned long)a, Describe(a).c_str());
        fflush(stderr);
        _exit(134);
    }
    struct sigaction& prev = sig == SIGSEGV ? PreviousSegv : PreviousBus;
    if (prev.sa_flags & SA_SIGINFO) { prev.sa_sigaction(sig, info, ctx); return; }
    if (prev.sa_handler == SIG_IGN) return;
    if (prev.sa_handler == SIG_DFL) { signal(sig, SIG_DFL); return; }   // the fault repeats, now fatal
    prev.sa_handler(sig);
}

// Runs every block, in order or (a race check's second run) with blocks and threads in reverse order.
void RunGrid(const EmuKernel* k, void* pack, uint3 grid, uint3 block, const std::string& name, bool reverse = false)
{
    if (StickyError) return;   // a failed context runs nothing more
    InitStacks();
    X.kernel = k;
    X.pack = pack;
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

// ENGINE_CUDA_EMU_PROFILE=1: at exit, the emulated work's CPU time by kernel (or cuBLAS call), largest first.
struct ProfileEntry { double seconds = 0; long long calls = 0; };
std::map<std::string, ProfileEntry>* Profile = nullptr;

void PrintProfile()
{
    std::vector<std::pair<std::string, ProfileEntry>> rows(Profile->begin(), Profile->end());
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
    double total = 0;
    for (auto& r : rows) total += r.second.seconds;
    fprintf(stderr, "cuda-emu profile: %.3f s of emulated work\n", total);
    for (auto& r : rows)
        fprintf(stderr, "  %10.3f ms %8lld calls  %s\n", r.second.seconds * 1e3, r.second.calls, r.first.c_str());
    std::vector<std::pair<std::string, std::pair<double, long long>>> gaps(HostGaps->begin(), HostGaps->end());
    std::sort(gaps.begin(), gaps.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    double host = 0;
    for (auto& g : gaps) host += g.second.first;
    fprintf(stderr, "cuda-emu profile: %.3f s of host time between entry points, by the call that ended it\n", host);
    for (size_t i = 0; i < gaps.size() && i < 40; i++)
        fprintf(stderr, "  %10.3f ms %8lld calls  %s\n", gaps[i].second.first * 1e3, gaps[i].second.second, gaps[i].first.c_str());
}

bool Profiling()
{
    static bool enabled = [] {
        const char* e = getenv("ENGINE_CUDA_EMU_PROFILE");
        if (!e || strcmp(e, "1") != 0) return false;
        Profile = new std::map<std::string, ProfileEntry>();
        HostGaps = new std::map<std::string, std::pair<double, long long>>();
        atexit(PrintProfile);
        return true;
    }();
    return enabled;
}

template <class F> void Timed(const std::string& name, F f)
{
    if (!Profiling()) { f(); return; }
    auto t0 = std::chrono::steady_clock::now();
    f();
    auto& e = (*Profile)[name];
    e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    e.calls++;
}

struct Module { std::string ptx; };

} // namespace

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

// ---------------------------------------------------------------------------------------------------------------
// The driver API (CUresult is an int; the codes are CUDA's).

extern "C" {

static const char* ErrorName(int e)
{
    switch (e)
    {
        case 0: return "CUDA_SUCCESS";
        case 1: return "CUDA_ERROR_INVALID_VALUE";
        case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
        case 3: return "CUDA_ERROR_NOT_INITIALIZED";
        case 101: return "CUDA_ERROR_INVALID_DEVICE";
        case 218: return "CUDA_ERROR_INVALID_PTX";
        case 400: return "CUDA_ERROR_INVALID_HANDLE";
        case 500: return "CUDA_ERROR_NOT_FOUND";
        case 600: return "CUDA_ERROR_NOT_READY";
        case 701: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
        case 719: return "CUDA_ERROR_LAUNCH_FAILED";
        case 801: return "CUDA_ERROR_NOT_SUPPORTED";
        default: return nullptr;
    }
}

int cuGetErrorName(int e, const char** name) { *name = ErrorName(e); return *name ? 0 : 1; }
int cuGetErrorString(int e, const char** text)
{
    static thread_local std::string s;
    const char* n = ErrorName(e);
    if (!n) { *text = nullptr; return 1; }
    s = std::string("cuda-emu ") + n;
    if (e == StickyError && !StickyReason.empty()) s += ": " + StickyReason;
    *text = s.c_str();
    return 0;
}

int cuInit(unsigned flags) { InstallFaultHandler(); return flags == 0 ? 0 : 1; }
int cuDriverGetVersion(int* v) { *v = 13000; return 0; }
int cuDeviceGetCount(int* c) { *c = 1; return 0; }
int cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
int cuDeviceGetName(char* name, int len, int dev)
{
    if (dev != 0) return 101;
    snprintf(name, (size_t)len, "CUDA emulator on the CPU (native/cuda-emu)");
    return 0;
}
int cuDeviceGetAttribute(int* v, int attribute, int dev)
{
    if (dev != 0) return 101;
    switch (attribute)
    {
        case 1: *v = 1024; return 0;    // max threads per block
        case 8: *v = 49152; return 0;   // shared memory per block
        case 16: *v = 4; return 0;      // multiprocessors: few, so grid-stride loops take several turns
        case 39: *v = 2048; return 0;   // threads per multiprocessor
        case 75: *v = 9; return 0;      // compute capability 9.0
        case 76: *v = 0; return 0;
        default: return 1;
    }
}
int cuDeviceTotalMem_v2(size_t* bytes, int dev) { if (dev != 0) return 101; *bytes = DeviceTotal(); return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int dev) { static int c; if (dev != 0) return 101; *ctx = &c; return 0; }
int cuDevicePrimaryCtxRelease_v2(int dev) { return dev == 0 ? 0 : 101; }
static void* CurrentContext;
int cuCtxSetCurrent(void* ctx) { CurrentContext = ctx; return 0; }
int cuCtxGetCurrent(void** ctx) { *ctx = CurrentContext; return 0; }

int cuStreamCreate(void** stream, unsigned) { *stream = new int(0); return 0; }
int cuStreamSynchronize(void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();
    return StickyError;
}
int cuStreamDestroy_v2(void* stream)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();
    delete (int*)stream;
    return 0;
}

int cuEventCreate(void** e, unsigned) { *e = new Event(); return 0; }
int cuEventRecord(void* e, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    auto* ev = (Event*)e;
    ev->done = false;
    Queue.push_back([ev] { ev->done = true; ev->at = std::chrono::steady_clock::now(); });
    return 0;
}
int cuEventSynchronize(void* e)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush((Event*)e);
    return StickyError;
}
int cuEventElapsedTime(float* ms, void* a, void* b)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    auto *s = (Event*)a, *e = (Event*)b;
    if (!s->done || !e->done) return 600;
    *ms = std::chrono::duration<float, std::milli>(e->at - s->at).count();
    return 0;
}
int cuEventDestroy_v2(void* e) { delete (Event*)e; return 0; }

int cuMemAlloc_v2(uint64_t* address, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (bytes == 0) return 1;
    if (DeviceUsed + bytes > DeviceTotal()) return 2;
    size_t rounded = (bytes + 255) & ~(size_t)255;   // 256-byte aligned starts, as cuMemAlloc's
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t mapBytes = (rounded + page - 1) / page * page + page;
    void* m = mmap(nullptr, mapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return 2;
    unsigned char* guard = (unsigned char*)m + mapBytes - page;
    mprotect(guard, page, PROT_NONE);
    uintptr_t start = (uintptr_t)(guard - rounded);
    memset((void*)start, 0xFF, rounded);   // NaN in every float: a read of what nothing wrote shows
    Device[start] = Allocation{start, bytes, m, mapBytes};
    DeviceUsed += bytes;
    *address = start;
    return 0;
}

int cuMemFree_v2(uint64_t address)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();   // cuMemFree waits for the work that may still use the memory
    auto it = Device.find((uintptr_t)address);
    if (it == Device.end()) { Diagnose("cuMemFree of an address that is not an allocation's start"); return 1; }
    munmap(it->second.map, it->second.mapBytes);
    DeviceUsed -= it->second.bytes;
    Device.erase(it);
    return 0;
}

int cuMemAllocHost_v2(void** p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    void* m = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    if (!m) return 2;
    Pinned[(uintptr_t)m] = bytes;
    *p = m;
    return 0;
}

int cuMemGetInfo_v2(size_t* free, size_t* total)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    *total = DeviceTotal();
    *free = DeviceTotal() - DeviceUsed;
    return 0;
}

static int CheckRange(uint64_t p, size_t bytes, const char* call, const char* operand)
{
    if (InDevice((uintptr_t)p, bytes)) return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s: the %s range (%zu bytes at %#lx) is not inside one allocation (%s)", call, operand, bytes,
        (unsigned long)p, Describe((uintptr_t)p).c_str());
    Diagnose(buf);
    return 1;
}

int cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(dst, bytes, "cuMemcpyHtoDAsync", "destination")) return r;
    if (InPinned(src, bytes))
        Queue.push_back([dst, src, bytes] { memcpy((void*)dst, src, bytes); });   // read when the stream gets there
    else
    {
        // From pageable memory the driver stages the bytes before returning: the caller may reuse its buffer.
        auto copy = std::make_shared<std::vector<unsigned char>>((const unsigned char*)src, (const unsigned char*)src + bytes);
        Queue.push_back([dst, copy] { memcpy((void*)dst, copy->data(), copy->size()); });
    }
    return 0;
}

int cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(src, bytes, "cuMemcpyDtoHAsync", "source")) return r;
    if (InPinned(dst, bytes))
    {
        Queue.push_back([dst, src, bytes] { memcpy(dst, (const void*)src, bytes); });
        return 0;
    }
    // To pageable memory the copy completes before the call returns, after the work queued before it.
    Flush();
    if (StickyError) return StickyError;
    memcpy(dst, (const void*)src, bytes);
    return 0;
}

int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(dst, bytes, "cuMemcpyDtoDAsync", "destination")) return r;
    if (int r = CheckRange(src, bytes, "cuMemcpyDtoDAsync", "source")) return r;
    Queue.push_back([dst, src, bytes] { memmove((void*)dst, (const void*)src, bytes); });
    return 0;
}

int cuMemsetD32Async(uint64_t dst, unsigned value, size_t count, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (dst % 4) { Diagnose("cuMemsetD32Async: destination not 4-byte aligned"); return 1; }
    if (int r = CheckRange(dst, count * 4, "cuMemsetD32Async", "destination")) return r;
    Queue.push_back([dst, value, count] { unsigned* p = (unsigned*)dst; for (size_t i = 0; i < count; i++) p[i] = value; });
    return 0;
}

int cuModuleLoadData(void** module, const void* image)
{
    const char* ptx = (const char*)image;
    if (!ptx || !strstr(ptx, ".version")) return 218;   // not PTX text
    *module = new Module{ptx};
    return 0;
}

int cuModuleGetFunction(void** function, void* module, const char* name)
{
    auto* m = (Module*)module;
    std::string entry = std::string(".entry ") + name + "(";
    bool inPtx = m->ptx.find(entry) != std::string::npos;
    auto it = Registry().find(name);
    if (!inPtx) return 500;
    if (it == Registry().end())
    {
        Diagnose(std::string("kernel ") + name + " is in NVRTC's PTX but not in the emulator: rebuild out/cuda-emu (./build.sh emu)");
        return 500;
    }
    *function = &it->second;
    return 0;
}

int cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void*, int blockSize, size_t)
{
    *blocks = blockSize > 0 ? 2048 / blockSize : 0;
    return 0;
}

int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned sharedBytes, void*, void** kernelParams, void** extra)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    auto* k = (const EmuKernel*)function;
    if (!k) return 400;
    std::string name = k->name;
    char buf[320];
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gx > 0x7fffffffu || gy > 65535 || gz > 65535
        || bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024)
    {
        snprintf(buf, sizeof buf, "cuLaunchKernel(%s): grid %ux%ux%u / block %ux%ux%u past the device's limits "
            "(grid x < 2^31, y and z <= 65535; block <= 1024 threads, z <= 64)", k->name, gx, gy, gz, bx, by, bz);
        Diagnose(buf);
        return 1;
    }
    if (sharedBytes > 49152) return 701;
    if (kernelParams) { Diagnose("cuLaunchKernel: only CU_LAUNCH_PARAM_BUFFER_POINTER launches are emulated"); return 801; }
    const unsigned char* params = nullptr;
    size_t size = 0;
    for (void** e = extra; e && *e; e += 2)
    {
        if (e[0] == (void*)1) params = (const unsigned char*)e[1];
        else if (e[0] == (void*)2) size = *(size_t*)e[1];
        else return 1;
    }
    if (size != k->paramBytes || (size && !params))
    {
        snprintf(buf, sizeof buf, "cuLaunchKernel(%s): %zu bytes of parameters passed, the kernel's parameter list takes %zu",
            k->name, size, k->paramBytes);
        Diagnose(buf);
        return 1;
    }
    timer.detail = k->name;
    void* pack = k->unpack(k->fn, params);   // arguments are captured at launch, as the driver does
    Counters.launches++;
    uint3 grid{gx, gy, gz}, block{bx, by, bz};
    std::vector<unsigned char> bytes;
    if (RaceCheck()) bytes.assign(params, params + size);
    Queue.push_back([k, pack, grid, block, name, bytes] { Timed(name, [&] { RunChecked(k, pack, grid, block, name, bytes); }); k->release(pack); });
    return 0;
}

// Not CUDA: the emulator's counters since the process started (nanoseconds running queued work, kernel launches,
// cuBLAS calls, copies and memsets, host waits that ran work, nanoseconds in the entry points besides that work), for
// benchmarks that time the host's own share.
void cuda_emu_stats(uint64_t out[6])
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    out[0] = Counters.workNs; out[1] = Counters.launches; out[2] = Counters.blasCalls; out[3] = Counters.copies; out[4] = Counters.waits;
    out[5] = Counters.apiNs;
}

// Not CUDA: forgets the profile so far (ENGINE_CUDA_EMU_PROFILE=1), so that a benchmark's warm-up is left out.
void cuda_emu_profile_reset()
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    if (!Profiling()) return;
    Profile->clear();
    HostGaps->clear();
    LastExit = {};
}

// ---------------------------------------------------------------------------------------------------------------
// cuBLAS (column-major; scalars from host memory, cuBLAS's default pointer mode). Each product sums over k in order
// in float, as one GPU thread would.

int cublasCreate_v2(void** handle) { *handle = new int(0); return 0; }
int cublasDestroy_v2(void* handle) { delete (int*)handle; return 0; }
int cublasSetStream_v2(void*, void*) { return 0; }
int cublasSetMathMode(void*, int) { return 0; }
int cublasGetVersion_v2(void*, int* version) { *version = 130000; return 0; }

static int GemmChecks(int ta, int tb, int m, int n, int k, uint64_t a, int lda, uint64_t b, int ldb, uint64_t c, int ldc,
    long long sa, long long sb, long long sc, int batch, const char* call)
{
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ta < 0 || ta > 1 || tb < 0 || tb > 1) return 7;
    int rowsA = ta ? k : m, rowsB = tb ? n : k;
    if (lda < (rowsA > 1 ? rowsA : 1) || ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1)) return 7;
    if (m == 0 || n == 0 || batch == 0) return 0;
    auto extent = [](long long rows, long long cols, long long ld) { return (size_t)((cols - 1) * ld + rows) * 4; };
    int colsA = ta ? m : k, colsB = tb ? k : n;
    for (int i = 0; i < batch; i++)
    {
        if (k > 0 && CheckRange(a + (uint64_t)(sa * i * 4), extent(rowsA, colsA, lda), call, "A")) return 13;
        if (k > 0 && CheckRange(b + (uint64_t)(sb * i * 4), extent(rowsB, colsB, ldb), call, "B")) return 13;
        if (CheckRange(c + (uint64_t)(sc * i * 4), extent(m, n, ldc), call, "C")) return 13;
    }
    return 0;
}

static void Gemm(int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
    float beta, float* c, int ldc)
{
    // op(A) packed column-major; four columns of C at a time share each column of it (the sum over p stays in order).
    std::vector<float> pa((size_t)m * k), acc((size_t)m * 4);
    for (int p = 0; p < k; p++)
        for (int i = 0; i < m; i++) pa[(size_t)p * m + i] = ta ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i];
    auto bAt = [&](int p, int j) { return tb ? b[(size_t)p * ldb + j] : b[(size_t)j * ldb + p]; };
    for (int j0 = 0; j0 < n; j0 += 4)
    {
        int w = n - j0 < 4 ? n - j0 : 4;
        float *a0 = &acc[0], *a1 = a0 + m, *a2 = a1 + m, *a3 = a2 + m;
        for (size_t i = 0; i < acc.size(); i++) acc[i] = 0.f;
        for (int p = 0; p < k; p++)
        {
            const float* col = &pa[(size_t)p * m];
            float b0 = bAt(p, j0), b1 = w > 1 ? bAt(p, j0 + 1) : 0.f, b2 = w > 2 ? bAt(p, j0 + 2) : 0.f, b3 = w > 3 ? bAt(p, j0 + 3) : 0.f;
            for (int i = 0; i < m; i++)
            {
                float v = col[i];
                a0[i] += v * b0; a1[i] += v * b1; a2[i] += v * b2; a3[i] += v * b3;
            }
        }
        for (int jj = 0; jj < w; jj++)
        {
            float* cj = c + (size_t)(j0 + jj) * ldc;
            const float* s = &acc[(size_t)jj * m];
            for (int i = 0; i < m; i++) cj[i] = beta == 0.f ? alpha * s[i] : alpha * s[i] + beta * cj[i];   // beta 0: C is not read
        }
    }
}

int cublasSgemm_v2(void*, int ta, int tb, int m, int n, int k, const float* alpha, const float* a, int lda, const float* b,
    int ldb, const float* beta, float* c, int ldc)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (int r = GemmChecks(ta, tb, m, n, k, (uint64_t)a, lda, (uint64_t)b, ldb, (uint64_t)c, ldc, 0, 0, 0, 1, "cublasSgemm")) return r;
    float al = *alpha, be = *beta;
    Counters.blasCalls++;
    Queue.push_back([=] {
        if (StickyError) return;
        X.active = true; X.what = "cublasSgemm";
        Timed("cublasSgemm", [&] { Gemm(ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc); });
        X.active = false;
    });
    return 0;
}

int cublasSgemmStridedBatched(void*, int ta, int tb, int m, int n, int k, const float* alpha, const float* a, int lda,
    long long sa, const float* b, int ldb, long long sb, const float* beta, float* c, int ldc, long long sc, int batch)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (int r = GemmChecks(ta, tb, m, n, k, (uint64_t)a, lda, (uint64_t)b, ldb, (uint64_t)c, ldc, sa, sb, sc, batch, "cublasSgemmStridedBatched")) return r;
    float al = *alpha, be = *beta;
    Counters.blasCalls++;
    Queue.push_back([=] {
        if (StickyError) return;
        X.active = true; X.what = "cublasSgemmStridedBatched";
        Timed("cublasSgemmStridedBatched", [&] {
            for (int i = 0; i < batch; i++) Gemm(ta, tb, m, n, k, al, a + sa * i, lda, b + sb * i, ldb, be, c + sc * i, ldc);
        });
        X.active = false;
    });
    return 0;
}

} // extern "C"
