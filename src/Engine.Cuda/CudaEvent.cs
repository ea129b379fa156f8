using Engine.Cuda.Native;

namespace Engine.Cuda;

/// <summary>A CUDA event on a context's stream, for timing GPU work: record a start and an end, then <see cref="ElapsedMs"/>.</summary>
internal sealed class CudaEvent : IDisposable
{
    private readonly CudaContext _context;
    private nint _event;

    internal CudaEvent(CudaContext context)
    {
        _context = context;
        context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out _event, 0), "cuEventCreate");
    }

    /// <summary>Queues the event on the stream: it completes when all work queued before it has.</summary>
    public void Record()
    {
        _context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventRecord(Handle, _context.Stream), "cuEventRecord");
    }

    /// <summary>Waits until the event has completed.</summary>
    public void Synchronize()
    {
        _context.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventSynchronize(Handle), "cuEventSynchronize");
    }

    /// <summary>Milliseconds of GPU time between two recorded events (waits for <paramref name="end"/>).</summary>
    public static float ElapsedMs(CudaEvent start, CudaEvent end)
    {
        end.Synchronize();
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out float ms, start.Handle, end.Handle), "cuEventElapsedTime");
        return ms;
    }

    private nint Handle => _event != 0 ? _event : throw new ObjectDisposedException(nameof(CudaEvent));

    /// <summary>Destroys the event (not from a finalizer: CUDA calls stay off finalizer threads).</summary>
    public void Dispose()
    {
        if (_event == 0) return;
        _context.MakeCurrent();
        var e = _event;
        _event = 0;
        CudaDriver.Check(CudaDriver.cuEventDestroy_v2(e), "cuEventDestroy_v2");
    }
}
