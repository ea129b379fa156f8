using System.Diagnostics;

namespace Engine.Cpu;

/// <summary>
/// The persistent workers behind <see cref="CpuThreads"/>. Kernels are short (tens of microseconds to a few
/// milliseconds) and come back to back, so waking a blocked pool thread for each one (tens of microseconds on a
/// VM) would cost more than it saves: workers spin for a while after each job and only then block. One job runs
/// at a time; a caller that finds the workers busy (another thread's kernel) runs its parts inline.
/// </summary>
internal static class CpuWorkers
{
    /// <summary>How long an idle worker spins before blocking.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 1000;   // 1 ms

    private sealed class Job(int parts, int helpers, Action<int> body)
    {
        public readonly int Parts = parts;
        /// <summary>Workers that may still join: a job never runs on more threads than CpuThreads.Count.</summary>
        public int Slots = helpers;
        public readonly Action<int> Body = body;
        public int Next;
        public int Pending = parts;
        public Exception? Error;

        /// <summary>Claims and runs parts until none is left.</summary>
        public void Work()
        {
            while (true)
            {
                int p = Interlocked.Increment(ref Next) - 1;
                if (p >= Parts) return;
                try { Body(p); }
                catch (Exception e) { Interlocked.CompareExchange(ref Error, e, null); }
                finally { Interlocked.Decrement(ref Pending); }
            }
        }
    }

    private static readonly object Gate = new();
    private static readonly object SleepLock = new();
    private static Job? _current;
    private static int _generation;
    private static int _workerCount;

    /// <summary>Runs body(p) for p in [0, parts) on the caller and up to <paramref name="threads"/> - 1 workers.</summary>
    public static void Run(int parts, int threads, Action<int> body)
    {
        if (!Monitor.TryEnter(Gate)) { for (int p = 0; p < parts; p++) body(p); return; }
        Job job;
        try
        {
            EnsureWorkers(threads - 1);
            job = new Job(parts, threads - 1, body);
            Volatile.Write(ref _current, job);
            Interlocked.Increment(ref _generation);
            lock (SleepLock) Monitor.PulseAll(SleepLock);
            job.Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _current, null);
        }
        finally { Monitor.Exit(Gate); }
        if (job.Error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(job.Error).Throw();
    }

    private static void EnsureWorkers(int wanted)
    {
        while (_workerCount < wanted)
        {
            var t = new Thread(WorkerLoop) { IsBackground = true, Name = $"Engine CPU worker {_workerCount + 1}" };
            _workerCount++;
            t.Start();
        }
    }

    private static void WorkerLoop()
    {
        CpuThreads.MarkWorker();
        int seen = Volatile.Read(ref _generation);
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _generation) == seen)
            {
                if (Stopwatch.GetTimestamp() - start > SpinTicks)
                {
                    lock (SleepLock)
                        while (Volatile.Read(ref _generation) == seen) Monitor.Wait(SleepLock);
                    break;
                }
                Thread.SpinWait(20);
            }
            seen = Volatile.Read(ref _generation);
            var job = Volatile.Read(ref _current);
            if (job != null && Interlocked.Decrement(ref job.Slots) >= 0) job.Work();
        }
    }
}
