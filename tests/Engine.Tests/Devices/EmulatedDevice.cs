using Engine.Tensors;

namespace Engine.Tests.Devices;

/// <summary>
/// A stand-in for a non-CPU device, so that CI without a GPU proves the tensor / autograd / bounds stack is
/// device-generic. Its storage is its own class (not CpuStorage) wrapping a CPU array, reachable only through the
/// device's copy functions and kernels; its kernels map every buffer to the wrapped CPU storage and run the CPU
/// kernels. So any code that assumes CPU storage (a cast, AsSpan, a host loop over tensor data) fails on it, while
/// the numbers it computes are the CPU's exactly. A buffer of another device passed to its kernels, or a storage
/// used after Dispose, throws. It tracks live bytes (<see cref="Device.MemoryStats"/>) like a GPU allocator.
/// </summary>
internal class EmulatedDevice : Device
{
    private long _allocated;

    /// <summary>The shared instance registered under the "emu" prefix.</summary>
    public static readonly EmulatedDevice Instance = new("emu");

    /// <summary>Registers "emu" with <see cref="Device.Get"/> (idempotent).</summary>
    public static void Register() => Device.Register("emu", _ => Instance);

    public EmulatedDevice(string name, EmulatedKernels? kernels = null)
    {
        Name = name;
        EmuKernels = kernels ?? new EmulatedKernels();
    }

    public override string Name { get; }
    public override IKernels Kernels => EmuKernels;
    public EmulatedKernels EmuKernels { get; }

    /// <summary>Set once a planted fault "crashed" the device: like a faulted CUDA context, every later call fails.</summary>
    public bool Broken { get; set; }

    internal void ThrowIfBroken()
    {
        if (Broken) throw new InvalidOperationException($"{Name}: the device is unusable after an earlier fault (sticky error).");
    }

    public override Storage Allocate(int length, bool zero = false)
    {
        ThrowIfBroken();
        var s = new EmulatedStorage(this, length, zero);
        TensorScope.Register(s);   // as CUDA's storages: a scope disposes them, so a use after that throws here too
        return s;
    }

    public override void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset)
    {
        var s = Own(destination);
        ThrowIfBroken();
        if (destinationOffset < 0 || destinationOffset + source.Length > s.Length)
            throw new ArgumentOutOfRangeException(nameof(destinationOffset), $"{Name}: copy of {source.Length} floats at {destinationOffset} overruns a storage of {s.Length}.");
        Cpu.CopyFromHost(source, s.Inner, destinationOffset);
    }

    public override void CopyToHost(Storage source, int sourceOffset, Span<float> destination)
    {
        var s = Own(source);
        ThrowIfBroken();
        if (sourceOffset < 0 || sourceOffset + destination.Length > s.Length)
            throw new ArgumentOutOfRangeException(nameof(sourceOffset), $"{Name}: copy of {destination.Length} floats at {sourceOffset} overruns a storage of {s.Length}.");
        Cpu.CopyToHost(s.Inner, sourceOffset, destination);
    }

    public override DeviceMemoryStats? MemoryStats
    {
        get { long a = Interlocked.Read(ref _allocated); return new DeviceMemoryStats(a, a); }
    }

    /// <summary>Never give memory back (a leaking allocator), so a test can show a leak check fails.</summary>
    public bool Leaks { get; init; }

    internal void Track(long bytes)
    {
        if (bytes < 0 && Leaks) return;
        Interlocked.Add(ref _allocated, bytes);
    }

    private EmulatedStorage Own(Storage s)
    {
        if (s is not EmulatedStorage e || e.Device != this)
            throw new InvalidOperationException($"{Name}: a storage of {s.Device.Name} was passed to this device.");
        return e;
    }
}

/// <summary>Storage of an <see cref="EmulatedDevice"/>: a CPU storage that only the emulated device's functions can reach.</summary>
internal sealed class EmulatedStorage : Storage
{
    private readonly EmulatedDevice _device;
    private readonly CpuStorage _inner;
    private readonly int _length;
    private int _released;

    public EmulatedStorage(EmulatedDevice device, int length, bool zero)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        _device = device;
        _length = length;
        _inner = new CpuStorage(Math.Max(1, length), zero);
        device.Track(4L * length);
    }

    public override int Length => _length;
    public override Device Device => _device;

    public CpuStorage Inner => _released == 0 ? _inner : throw new ObjectDisposedException(nameof(EmulatedStorage), $"A {_device.Name} storage of {_length} floats was used after Dispose.");

    public override void Dispose()
    {
        Release();
        base.Dispose();
    }

    ~EmulatedStorage() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _device.Track(-4L * _length);
    }
}

/// <summary>
/// The emulated device's kernels: each member maps its buffers to the wrapped CPU storages and forwards to the CPU
/// kernels (written like Cpu/CpuKernelGuard.g.cs, one line per IKernels member). Members are virtual so a test can
/// plant a bug in one.
/// </summary>
internal class EmulatedKernels : IKernels
{
    protected static readonly IKernels Inner = Device.Cpu.Kernels;

    /// <summary>The wrapped CPU buffer of an emulated one; the empty buffer stays empty; any other device's buffer throws.</summary>
    protected static Buf M(Buf b)
    {
        if (b.Storage == null) return b;
        if (b.Storage is not EmulatedStorage e) throw new InvalidOperationException($"A {b.Storage.Device.Name} buffer ({b.Storage.GetType().Name}) was passed to the emulated device's kernels.");
        ((EmulatedDevice)e.Device).ThrowIfBroken();
        return new Buf(e.Inner, b.Offset);
    }

    protected static Buf? M(Buf? b) => b is { } v ? M(v) : null;

    public virtual void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupledWeightDecay, int step) => Inner.AdamUpdate(M(param), M(grad), M(expAvg), M(expAvgSq), n, lr, beta1, beta2, eps, weightDecay, decoupledWeightDecay, step);

    public virtual void AddBias(Buf y, Buf bias, int outer, int channels, int inner) => Inner.AddBias(M(y), M(bias), outer, channels, inner);

    public virtual void ArgMax(Buf x, Buf y, int outer, int size, int inner) => Inner.ArgMax(M(x), M(y), outer, size, inner);

    public virtual void ArgMin(Buf x, Buf y, int outer, int size, int inner) => Inner.ArgMin(M(x), M(y), outer, size, inner);

    public virtual void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad) => Inner.AvgPool2dBackward(M(dy), M(dx), in g, countIncludePad);

    public virtual void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad) => Inner.AvgPool2dForward(M(x), M(y), in g, countIncludePad);

    public virtual void Axpy(float alpha, Buf x, Buf y, int n) => Inner.Axpy(alpha, M(x), M(y), n);

    public virtual void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner) => Inner.BiasGrad(M(dy), M(db), outer, channels, inner);

    public virtual void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape) => Inner.Binary(op, M(a), aStrides, M(b), bStrides, M(y), shape);

    public virtual void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g) => Inner.BoundConvSelect(M(w), M(code), M(y), count, in g);

    public virtual void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g) => Inner.BoundConvTranspose(M(a), M(w), M(dx), in g);

    public virtual void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n, bool accumulate) => Inner.BoundDot(M(a), M(c), cBatchStride, M(radius), radiusBatchStride, eps, M(value), M(mag), batch, rows, n, accumulate);

    public virtual void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows, Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n, bool accumulate) => Inner.BoundRelax(M(a), M(lowSlope), lowSlopeRows, M(lowBias), lowBiasRows, M(upSlope), upSlopeRows, M(upBias), upBiasRows, M(y), M(bias), M(mag), batch, rows, n, accumulate);

    public virtual void BoundSelectRows(Buf x, int xRows, int cols, int[] code, int divisor, Buf y, Buf abs) => Inner.BoundSelectRows(M(x), xRows, cols, code, divisor, M(y), M(abs));

    public virtual void IbpCenterMarginBackward(Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho) => Inner.IbpCenterMarginBackward(M(gCenter), M(gMargin), M(gLower), M(gUpper), n, rho);

    public virtual void IbpCombineBackward(Buf gLower, Buf gUpper, Buf gCenter, Buf gRad, int n) => Inner.IbpCombineBackward(M(gLower), M(gUpper), M(gCenter), M(gRad), n);

    public virtual void ReluRelaxationBackward(Buf lower, Buf upper, Buf gUpSlope, Buf gUpBias, Buf gLower, Buf gUpper, int n) => Inner.ReluRelaxationBackward(M(lower), M(upper), M(gUpSlope), M(gUpBias), M(gLower), M(gUpper), n);

    public virtual void BoundRelaxBackward(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows, Buf upBias, int upBiasRows, Buf gy, Buf gBias, Buf gA, Buf gLowSlope, Buf gUpSlope, Buf gLowBias, Buf gUpBias, int batch, int rows, int n) => Inner.BoundRelaxBackward(M(a), M(lowSlope), lowSlopeRows, M(lowBias), lowBiasRows, M(upSlope), upSlopeRows, M(upBias), upBiasRows, M(gy), M(gBias), M(gA), M(gLowSlope), M(gUpSlope), M(gLowBias), M(gUpBias), batch, rows, n);

    public virtual void BoundDotBackward(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf g, Buf gA, int batch, int rows, int n) => Inner.BoundDotBackward(M(a), M(c), cBatchStride, M(radius), radiusBatchStride, eps, M(g), M(gA), batch, rows, n);

    public virtual void IbpRelu(Buf lower, Buf upper, Buf lo, Buf hi, Buf center, Buf margin, int n, float rho) => Inner.IbpRelu(M(lower), M(upper), M(lo), M(hi), M(center), M(margin), n, rho);

    public virtual void IbpReluBackward(Buf lower, Buf upper, Buf gLo, Buf gHi, Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho) => Inner.IbpReluBackward(M(lower), M(upper), M(gLo), M(gHi), M(gCenter), M(gMargin), M(gLower), M(gUpper), n, rho);

    public virtual void IbpCenterMargin(Buf lower, Buf upper, Buf center, Buf margin, int n, float rho) => Inner.IbpCenterMargin(M(lower), M(upper), M(center), M(margin), n, rho);

    public virtual void IbpCombine(Buf center, Buf rad, Buf bias, int channels, int inner, float rho, float abs, Buf lower, Buf upper, int n) => Inner.IbpCombine(M(center), M(rad), M(bias), channels, inner, rho, abs, M(lower), M(upper), n);

    public virtual void BoundMerge(Buf ibpLower, Buf ibpUpper, Buf rows, int rowCount, int[] index, Buf lower, Buf upper, int n) => Inner.BoundMerge(M(ibpLower), M(ibpUpper), M(rows), rowCount, index, M(lower), M(upper), n);

    public virtual void ReluRelaxation(Buf lower, Buf upper, Buf lowSlope, Buf upSlope, Buf upBias, int n) => Inner.ReluRelaxation(M(lower), M(upper), M(lowSlope), M(upSlope), M(upBias), n);

    public virtual void Col2Im(Buf col, Buf image, in Conv2dGeometry g) => Inner.Col2Im(M(col), M(image), in g);

    public virtual void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g) => Inner.Conv2dBackwardInput(M(dy), M(w), M(dx), in g);

    public virtual void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g) => Inner.Conv2dBackwardWeight(M(x), M(dy), M(dw), in g);

    public virtual void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g) => Inner.Conv2dForward(M(x), M(w), M(bias), M(y), in g);

    public virtual void Copy(Buf src, Buf dst, int n) => Inner.Copy(M(src), M(dst), n);

    public virtual void Expand(Buf x, int[] xStrides, Buf y, int[] shape) => Inner.Expand(M(x), xStrides, M(y), shape);

    public virtual void Fill(Buf y, int n, float value) => Inner.Fill(M(y), n, value);

    public virtual void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Buf a, int lda, long strideA, Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC) => Inner.Gemm(transA, transB, batch, m, n, k, alpha, M(a), lda, strideA, M(b), ldb, strideB, beta, M(c), ldc, strideC);

    public virtual void Im2Col(Buf image, Buf col, in Conv2dGeometry g) => Inner.Im2Col(M(image), M(col), in g);

    public virtual void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices) => Inner.IndexAdd(M(x), M(y), outer, dimOut, inner, indices);

    public virtual void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices) => Inner.IndexSelect(M(x), M(y), outer, dimIn, inner, indices);

    public virtual void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g) => Inner.MaxPool2dBackward(M(dy), M(indices), M(dx), in g);

    public virtual void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g) => Inner.MaxPool2dForward(M(x), M(y), M(indices), in g);

    public virtual void OneHot(Buf labels, Buf y, int n, int numClasses) => Inner.OneHot(M(labels), M(y), n, numClasses);

    public virtual void Permute(Buf x, int[] shape, int[] perm, Buf y) => Inner.Permute(M(x), shape, perm, M(y));

    public virtual void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std) => Inner.RandomNormal(M(y), n, seed, counter, mean, std);

    public virtual void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high) => Inner.RandomUniform(M(y), n, seed, counter, low, high);

    public virtual void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner) => Inner.Reduce(op, M(x), M(y), outer, size, inner);

    public virtual void ScaleInPlace(Buf x, int n, float alpha) => Inner.ScaleInPlace(M(x), n, alpha);

    public virtual void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => Inner.SgdUpdate(M(param), M(grad), M(momentumBuffer), n, lr, momentum, dampening, weightDecay, nesterov, firstStep);

    public virtual void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count) => Inner.SliceCopy(M(x), M(y), outer, dimIn, inner, start, step, count);

    public virtual void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count) => Inner.SliceScatter(M(x), M(y), outer, dimOut, inner, start, step, count);

    public virtual void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log) => Inner.Softmax(M(x), M(y), outer, size, inner, log);

    public virtual void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log) => Inner.SoftmaxBackward(M(y), M(dy), M(dx), outer, size, inner, log);

    public virtual double SumOfSquares(Buf x, int n) => Inner.SumOfSquares(M(x), n);

    public virtual void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta) => Inner.Unary(op, M(x), M(y), n, alpha, beta);

    public virtual void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta) => Inner.UnaryBackward(op, M(x), M(y), M(dy), M(dx), n, alpha, beta);

    public virtual void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape) => Inner.Where(M(cond), condStrides, M(a), aStrides, M(b), bStrides, M(y), shape);
}
