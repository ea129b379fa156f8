// The stream: work is queued (kernels, copies, cuBLAS calls, event markers) and runs, in order, when the host
// synchronises or copies to pageable memory, on a worker thread while the host waits; the sticky error of a failed
// kernel; the counters and the profile (ENGINE_CUDA_EMU_PROFILE=1).
#include "emu.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <pthread.h>

namespace emu {

std::recursive_mutex Gate;
std::deque<std::function<void()>> Queue;
int StickyError = 0;
std::string StickyReason;

void Fail(int code, const std::string& why)
{
    if (!StickyError) { StickyError = code; StickyReason = why; }
    fprintf(stderr, "cuda-emu: %s\n", why.c_str());
}

Stats Counters;

namespace {
std::map<std::string, std::pair<double, long long>>* HostGaps = nullptr;
std::chrono::steady_clock::time_point LastExit;
} // namespace

ApiTimer::~ApiTimer()
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

// Queued work runs on a worker thread of its own while the host waits, as a GPU runs beside the host: the host's
// caches (and a host-time probe's figure) are not the emulated kernels'. The worker is started on first use and
// again in a forked child (fork keeps only the calling thread).
namespace {
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
} // namespace

void Flush(const Event* until)
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

// ENGINE_CUDA_EMU_PROFILE=1: at exit, the emulated work's CPU time by kernel (or cuBLAS call), largest first.
namespace {
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

} // namespace

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

void Timed(const std::string& name, const std::function<void()>& f)
{
    if (!Profiling()) { f(); return; }
    auto t0 = std::chrono::steady_clock::now();
    f();
    auto& e = (*Profile)[name];
    e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    e.calls++;
}

void ProfileReset()
{
    if (!Profiling()) return;
    Profile->clear();
    HostGaps->clear();
    LastExit = {};
}

} // namespace emu

using namespace emu;

extern "C" {

int cuStreamSynchronize(void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();
    return StickyError;
}
int cuEventCreate(void** e, unsigned) { if (CurrentDevice() < 0) return ErrorInvalidContext; *e = new Event(); return 0; }
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

// Not CUDA: the emulator's counters since the process started, the first n of: nanoseconds running queued work,
// kernel launches, cuBLAS calls, copies, host waits that ran work, nanoseconds in the entry points besides that work,
// memsets. For benchmarks that time the host's own share and tests that count what a call asks of the driver.
void cuda_emu_stats(uint64_t* out, int n)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    const uint64_t all[] = {Counters.workNs, Counters.launches, Counters.blasCalls, Counters.copies, Counters.waits, Counters.apiNs, Counters.memsets};
    for (int i = 0; i < n && i < 7; i++) out[i] = all[i];
}

// Not CUDA: forgets the profile so far (ENGINE_CUDA_EMU_PROFILE=1), so that a benchmark's warm-up is left out.
void cuda_emu_profile_reset()
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ProfileReset();
}


} // extern "C"
