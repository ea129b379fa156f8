using Engine.Cuda.Native;

namespace Engine.Cuda;

/// <summary>
/// Pinned host memory that small host-to-device copies go through, so that they need no synchronisation: the source
/// is copied into the ring at once (the caller may reuse it on return), and the device reads the ring later, in
/// stream order. A copy from pageable memory would otherwise have to wait for the stream before its buffer could be
/// released (CROWN on an MLP uploads about 30 index lists a call, each once a full stall of the GPU).
/// <para>
/// The ring is <see cref="Segments"/> segments of <see cref="SegmentBytes"/>. Copies fill the current segment; when
/// one does not fit, an event is recorded after the segment's copies and the next segment is taken, after waiting for
/// the event recorded when that segment was last left (by then long complete in a steady loop). A copy larger than a
/// segment is refused (the caller takes the synchronising path; its cost is small beside the copy).
/// </para>
/// Thread-safe (one lock); allocated on first use, never freed (it lives as long as its context).
/// </summary>
internal sealed unsafe class UploadRing
{
    internal const int Segments = 4;
    internal const long SegmentBytes = 1L << 20;

    private readonly CudaContext _context;
    private readonly object _gate = new();
    private byte* _host;
    private readonly nint[] _events = new nint[Segments];
    private readonly bool[] _pending = new bool[Segments];
    private bool _failed;
    private int _segment;
    private long _used;

    internal UploadRing(CudaContext context) { _context = context; }

    /// <summary>Queues a copy of <paramref name="bytes"/> from <paramref name="source"/> to device memory; false (nothing done) when it is too large.</summary>
    public bool TryCopy(void* source, ulong destination, long bytes)
    {
        if (bytes > SegmentBytes) return false;
        lock (_gate)
        {
            if (_failed) return false;
            _context.MakeCurrent();
            if (_host == null && !Init()) return false;
            if (_used + bytes > SegmentBytes)
            {
                CudaDriver.Check(CudaDriver.cuEventRecord(_events[_segment], _context.Stream), "cuEventRecord");
                _pending[_segment] = true;
                _segment = (_segment + 1) % Segments;
                _used = 0;
                if (_pending[_segment])
                {
                    CudaDriver.Check(CudaDriver.cuEventSynchronize(_events[_segment]), "cuEventSynchronize");
                    _pending[_segment] = false;
                }
            }
            byte* staging = _host + _segment * SegmentBytes + _used;
            Buffer.MemoryCopy(source, staging, bytes, bytes);
            var r = CudaDriver.cuMemcpyHtoDAsync_v2(destination, staging, (nuint)bytes, _context.Stream);
            if (r != CuResult.Success) throw new CudaException($"cuMemcpyHtoDAsync_v2({bytes} bytes, pinned)", CudaDriver.Describe(r), (int)r);
            _used += (bytes + 255) & ~255L;   // each copy starts 256-byte aligned
            return true;
        }
    }

    /// <summary>Allocates the ring; false (and every later copy takes the synchronising path) when pinned memory is refused.</summary>
    private bool Init()
    {
        if (CudaDriver.cuMemAllocHost_v2(out nint p, (nuint)(Segments * SegmentBytes)) != CuResult.Success)
        {
            _failed = true;
            return false;
        }
        for (int i = 0; i < Segments; i++) CudaDriver.Check(CudaDriver.cuEventCreate(out _events[i], 2), "cuEventCreate(CU_EVENT_DISABLE_TIMING)");
        _host = (byte*)p;
        return true;
    }
}
