// What the emulator's translation units share (executor, memory, stream, driver, cublas); kernels see only cuda_emu.h.
#pragma once
#include "cuda_emu.h"

#include <chrono>
#include <pthread.h>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace emu {

// executor.cpp: the kernels by name; running a launch on fibers.
std::unordered_map<std::string, EmuKernel>& Registry();
void RunChecked(const EmuKernel* k, void* pack, uint3 grid, uint3 block, const std::string& name, const std::vector<unsigned char>& params);
bool RaceCheck();
// What runs now, for the fault handler: a kernel (at emu_blockIdx / emu_threadIdx) or a library call by name, on
// the thread that runs queued work (a fault on another thread is not the emulated device's).
struct Running { bool active; const char* what; const EmuKernel* kernel; pthread_t thread; };
Running Current();
void SetLibraryCall(const char* what);   // null: none

// driver.cpp: the devices (ENGINE_CUDA_EMU_DEVICES of them, default 1, at most 8) and each thread's current context,
// as CUDA binds contexts to threads: an entry point that needs a context fails without one.
int DeviceCount();
int CurrentDevice();   // -1: no context is current on the calling thread
// The first pointer-sized value of bytes[0 .. size) (at 8-byte steps) that is an address inside another device's
// allocation than `device`, described; empty if none. Without peer access a GPU faults on such an address.
std::string ForeignAddress(const unsigned char* bytes, size_t size, int device);
constexpr int ErrorInvalidContext = 201, ErrorIllegalAddress = 700;

// memory.cpp: device allocations (each ends at a guard page, each on the device whose context was current) and
// pinned host memory.
struct Allocation { uintptr_t start; size_t bytes; void* map; size_t mapBytes; int device; };
const Allocation* FindDevice(uintptr_t p);
std::string Describe(uintptr_t p);
int CheckRange(uint64_t p, size_t bytes, const char* call, const char* operand);
size_t DeviceTotal();
void InstallFaultHandler();

// stream.cpp: the queue of work, run when the host synchronises; errors; counters and the profile.
extern std::recursive_mutex Gate;
extern std::deque<std::function<void()>> Queue;
extern int StickyError;          // a kernel that failed: every later synchronisation reports it, as on a GPU
extern std::string StickyReason;
struct Event { bool done = false; std::chrono::steady_clock::time_point at; };
void Fail(int code, const std::string& why);
void Diagnose(const std::string& what);
void Flush(const Event* until = nullptr);

// What a host-time probe reads (cuda_emu_stats): the time spent running queued work, which a GPU would run beside the
// host, and the counts of what the host asked for.
struct Stats { uint64_t workNs = 0, launches = 0, blasCalls = 0, copies = 0, waits = 0, apiNs = 0, memsets = 0; };
extern Stats Counters;

// Time inside an entry point, less the queued work it ran: the emulator's own per-call cost, which a host-time probe
// subtracts too (a real driver has its own, of a few microseconds a launch). With ENGINE_CUDA_EMU_PROFILE=1 the
// host's time between entry points is kept too, by the call (and kernel) that ended each gap.
struct ApiTimer
{
    const char* name;
    const char* detail = nullptr;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    uint64_t w0 = Counters.workNs;
    explicit ApiTimer(const char* n) : name(n) {}
    ~ApiTimer();
};

bool Profiling();
void Timed(const std::string& name, const std::function<void()>& f);
void ProfileReset();

} // namespace emu
