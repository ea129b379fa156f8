using System.Globalization;
using System.Text;
using Engine.Autograd;

namespace Engine.Tensors;

/// <summary>
/// A float32, row-major, contiguous n-dimensional array on one <see cref="Tensors.Device"/>, with reverse-mode
/// autodiff. Reshape is a view (shares storage); every other layout change is an explicit op that copies.
/// Ops live in the partial files beside this one (Tensor.Elementwise.cs, Tensor.Reduce.cs, ...).
/// </summary>
public sealed partial class Tensor
{
    internal readonly int[] Dims;

    internal Tensor(Storage storage, int offset, int[] shape)
    {
        Storage = storage;
        Offset = offset;
        Dims = shape;
        Numel = ShapeUtil.Numel(shape);
        if (offset < 0 || (long)offset + Numel > storage.Length)
            throw new ArgumentException($"Tensor of shape {ShapeUtil.Format(shape)} at offset {offset} does not fit in storage of {storage.Length} elements.");
    }

    /// <summary>The storage this tensor (or view) reads.</summary>
    public Storage Storage { get; private set; }
    /// <summary>Element offset of element 0 inside <see cref="Storage"/>.</summary>
    public int Offset { get; private set; }
    /// <summary>Storage plus offset, as kernels take it.</summary>
    public Buf Buf => new(Storage, Offset);
    /// <summary>The device holding the data.</summary>
    public Device Device => Storage.Device;
    /// <summary>Total number of elements.</summary>
    public int Numel { get; }
    /// <summary>Number of dimensions.</summary>
    public int Rank => Dims.Length;
    /// <summary>A copy of the shape.</summary>
    public int[] Shape => (int[])Dims.Clone();
    /// <summary>Size of one dimension (negative counts from the end).</summary>
    public int Size(int dim) => Dims[ShapeUtil.NormalizeAxis(dim, Dims.Length)];
    /// <summary>The device's kernels.</summary>
    internal IKernels K => Storage.Device.Kernels;

    // ---------------------------------------------------------------- autograd state

    private bool _requiresGrad;

    /// <summary>
    /// True for a leaf that accumulates <see cref="Grad"/>, or for a result computed from one while grad mode was on.
    /// Only leaves may be set.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn != null;
        set
        {
            if (GradFn != null) throw new InvalidOperationException("RequiresGrad can only be set on a leaf tensor; use Detach() first.");
            _requiresGrad = value;
        }
    }

    /// <summary>
    /// The accumulated gradient of a leaf after <see cref="Backward"/>; null before. Like torch's .grad, later backward
    /// passes add into this same tensor in place (a buffer of the leaf's shape and device set here is added to, not
    /// replaced): copy it first to keep a snapshot.
    /// </summary>
    public Tensor? Grad { get; set; }

    /// <summary>The backward node that produced this tensor; null for leaves.</summary>
    public GradFn? GradFn { get; internal set; }

    /// <summary>True when this tensor was not produced by a recorded op.</summary>
    public bool IsLeaf => GradFn == null;

    /// <summary>Fluent form of setting <see cref="RequiresGrad"/>.</summary>
    public Tensor RequiresGrad_(bool value = true) { RequiresGrad = value; return this; }

    /// <summary>
    /// Reverse-mode pass from this tensor. A scalar needs no <paramref name="gradient"/>; otherwise pass dL/dthis.
    /// Gradients accumulate (+=) into leaves' <see cref="Grad"/>.
    /// </summary>
    public void Backward(Tensor? gradient = null) => BackwardEngine.Run(this, gradient);

    /// <summary>A view of the same data that is cut out of the graph.</summary>
    public Tensor Detach() => new(Storage, Offset, Dims);

    /// <summary>Clears <see cref="Grad"/>.</summary>
    public void ZeroGrad() => Grad = null;

    // ---------------------------------------------------------------- creation

    /// <summary>Uninitialised tensor (contents undefined).</summary>
    public static Tensor Empty(int[] shape, Device? device = null)
    {
        var dev = device ?? Device.Cpu;
        var s = (int[])shape.Clone();
        return new Tensor(dev.Allocate(ShapeUtil.Numel(s)), 0, s);
    }

    /// <summary>Uninitialised tensor with this one's device.</summary>
    internal Tensor NewEmpty(int[] shape) => Empty(shape, Device);

    /// <summary>Tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(int[] shape, float value, Device? device = null)
    {
        var t = Empty(shape, device);
        t.K.Fill(t.Buf, t.Numel, value);
        return t;
    }

    /// <summary>All zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Full(shape, 0f);
    /// <summary>All zeros on a device.</summary>
    public static Tensor Zeros(int[] shape, Device device) => Full(shape, 0f, device);
    /// <summary>All ones.</summary>
    public static Tensor Ones(params int[] shape) => Full(shape, 1f);
    /// <summary>All ones on a device.</summary>
    public static Tensor Ones(int[] shape, Device device) => Full(shape, 1f, device);
    /// <summary>Zeros with the shape and device of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Full(like.Dims, 0f, like.Device);
    /// <summary>Ones with the shape and device of <paramref name="like"/>.</summary>
    public static Tensor OnesLike(Tensor like) => Full(like.Dims, 1f, like.Device);
    /// <summary>A rank-0 tensor.</summary>
    public static Tensor Scalar(float value, Device? device = null) => Full([], value, device);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Device Device, int Bits), Tensor> s_operands = new();

    /// <summary>
    /// A rank-0 operand for an element-wise op with a number (Lt(x, 0f), Where(c, x, 1f)): for the common values (+0,
    /// ±1, ±∞) one shared read-only tensor per device, made outside any scope, so the op costs no allocation and, on a
    /// GPU, no fill launch; other values get a fresh <see cref="Scalar"/>. Never returned to callers: only ops that read
    /// their operands and make new outputs may take it.
    /// </summary>
    internal static Tensor ScalarOperand(float value, Device device)
    {
        if (!(value == 1f || value == -1f || float.IsInfinity(value) || BitConverter.SingleToInt32Bits(value) == 0)) return Scalar(value, device);
        var key = (device, BitConverter.SingleToInt32Bits(value));
        if (s_operands.TryGetValue(key, out var t)) return t;
        using (TensorScope.Suspend()) t = Scalar(value, device);
        return s_operands.GetOrAdd(key, t);
    }

    /// <summary>Copies host data into a new tensor of the given shape (element count must match).</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
        => FromSpan(data, shape.Length == 0 && data.Length != 1 ? [data.Length] : shape, null);

    /// <summary>Copies host data into a new tensor of the given shape on a device.</summary>
    public static Tensor FromSpan(ReadOnlySpan<float> data, int[] shape, Device? device)
    {
        int n = ShapeUtil.Numel(shape);
        if (n != data.Length) throw new ArgumentException($"{data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({n} elements).");
        var t = Empty(shape, device);
        t.Device.CopyFromHost(data, t.Storage, t.Offset);
        return t;
    }

    /// <summary>[start, start+step, ...) below <paramref name="end"/>, like torch.arange.</summary>
    public static Tensor Arange(float start, float end, float step = 1f, Device? device = null)
    {
        if (step == 0 || float.IsNaN(step)) throw new ArgumentException("Arange step must be non-zero.");
        int n = Math.Max(0, (int)Math.Ceiling((end - start) / step));
        var host = new float[n];
        for (int i = 0; i < n; i++) host[i] = start + i * step;
        return FromSpan(host, [n], device);
    }

    /// <summary>[0, n).</summary>
    public static Tensor Arange(int n, Device? device = null) => Arange(0, n, 1, device);

    /// <summary>Uniform in [low, high) from a counter-based stream (same numbers on every device).</summary>
    public static Tensor Uniform(int[] shape, float low = 0f, float high = 1f, Generator? generator = null, Device? device = null)
    {
        var g = generator ?? Generator.Default;
        var t = Empty(shape, device);
        ulong counter = g.Advance(((ulong)t.Numel + 3) / 4);
        t.K.RandomUniform(t.Buf, t.Numel, g.Seed, counter, low, high);
        return t;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public static Tensor Rand(params int[] shape) => Uniform(shape);

    /// <summary>Normal(mean, std) from a counter-based stream (same numbers on every device).</summary>
    public static Tensor Normal(int[] shape, float mean = 0f, float std = 1f, Generator? generator = null, Device? device = null)
    {
        var g = generator ?? Generator.Default;
        var t = Empty(shape, device);
        ulong counter = g.Advance(((ulong)t.Numel + 1) / 2);
        t.K.RandomNormal(t.Buf, t.Numel, g.Seed, counter, mean, std);
        return t;
    }

    /// <summary>Standard normal.</summary>
    public static Tensor Randn(params int[] shape) => Normal(shape);

    // ---------------------------------------------------------------- host access and copies

    /// <summary>Copies the data to a new host array.</summary>
    public float[] ToArray()
    {
        var r = new float[Numel];
        Device.CopyToHost(Storage, Offset, r);
        return r;
    }

    /// <summary>Copies the data into <paramref name="destination"/> (exactly <see cref="Numel"/> elements long).</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != Numel)
            throw new ArgumentException($"CopyTo: the destination holds {destination.Length} elements; the tensor of shape {ShapeUtil.Format(Dims)} has {Numel}.", nameof(destination));
        Device.CopyToHost(Storage, Offset, destination);
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() needs a tensor with one element, not shape {ShapeUtil.Format(Dims)}.");
        Span<float> v = stackalloc float[1];
        Device.CopyToHost(Storage, Offset, v);
        return v[0];
    }

    /// <summary>The data as a span; CPU tensors only. Writing through it bypasses autograd.</summary>
    public Span<float> AsSpan()
    {
        if (Storage is not CpuStorage cpu) throw new InvalidOperationException($"AsSpan() needs a CPU tensor; this one is on {Device.Name}. Use ToArray() or To(Device.Cpu).");
        return cpu.Data.AsSpan(Offset, Numel);
    }

    /// <summary>A copy on <paramref name="device"/> (this tensor itself when already there). Differentiable.</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return this;
        var host = ToArray();
        var r = FromSpan(host, Dims, device);
        return GradRecorder.Record(r, this, static (g, x) => [g.To(x.Device)]);
    }

    /// <summary>A copy on the CPU (this tensor itself when already there). Differentiable.</summary>
    public Tensor ToCpu() => To(Device.Cpu);

    /// <summary>A contiguous copy with its own storage. Differentiable.</summary>
    public Tensor Clone()
    {
        var r = NewEmpty(Dims);
        K.Copy(Buf, r.Buf, Numel);
        return GradRecorder.Record(r, this, static (g, _) => [g]);
    }

    /// <summary>Overwrites this tensor's values with <paramref name="source"/>'s (same shape); not recorded by autograd.</summary>
    public void CopyFrom(Tensor source)
    {
        CheckSameDevice(this, source, "CopyFrom");
        if (!ShapeUtil.SameShape(Dims, source.Dims)) throw new ArgumentException($"CopyFrom: shape {ShapeUtil.Format(source.Dims)} does not match {ShapeUtil.Format(Dims)}.");
        K.Copy(source.Buf, Buf, Numel);
    }

    /// <summary>Sets every element; not recorded by autograd.</summary>
    public void Fill_(float value) => K.Fill(Buf, Numel, value);

    // ---------------------------------------------------------------- views

    /// <summary>A view with a new shape (one dimension may be -1). Differentiable.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var s = ShapeUtil.ResolveReshape(Dims, shape);
        var r = new Tensor(Storage, Offset, s);
        var inShape = Dims;
        return GradRecorder.Record(r, this, (g, _) => [g.Reshape(inShape)]);
    }

    /// <summary>Alias of <see cref="Reshape"/>.</summary>
    public Tensor View(params int[] shape) => Reshape(shape);

    /// <summary>Collapses dimensions [startDim, endDim] into one, like torch.flatten.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = ShapeUtil.NormalizeAxis(startDim, Rank), e = ShapeUtil.NormalizeAxis(endDim, Rank);
        if (s > e) throw new ArgumentException($"Flatten: startDim {startDim} is after endDim {endDim}.");
        var shape = new List<int>();
        for (int i = 0; i < s; i++) shape.Add(Dims[i]);
        int m = 1; for (int i = s; i <= e; i++) m *= Dims[i];
        shape.Add(m);
        for (int i = e + 1; i < Rank; i++) shape.Add(Dims[i]);
        return Reshape([.. shape]);
    }

    /// <summary>Adds a dimension of size 1 at <paramref name="dim"/>.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = ShapeUtil.NormalizeAxis(dim, Rank + 1);
        var s = new List<int>(Dims); s.Insert(d, 1);
        return Reshape([.. s]);
    }

    /// <summary>Removes a dimension of size 1 (all of them when <paramref name="dim"/> is null).</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var s = new List<int>(Dims);
        if (dim is int d0)
        {
            int d = ShapeUtil.NormalizeAxis(d0, Rank);
            if (s[d] == 1) s.RemoveAt(d);
        }
        else s.RemoveAll(x => x == 1);
        return Reshape([.. s]);
    }

    /// <summary>A view of rows [start, start+length) along dimension 0; no copy. Differentiable.</summary>
    public Tensor NarrowRows(int start, int length)
    {
        if (Rank == 0) throw new ArgumentException("NarrowRows needs rank >= 1.");
        if (start < 0 || length < 0 || start + length > Dims[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows [{start}, {start + length}) are outside dimension 0 of size {Dims[0]}.");
        int row = Dims[0] == 0 ? 0 : Numel / Dims[0];
        var s = Shape; s[0] = length;
        var r = new Tensor(Storage, Offset + start * row, s);
        var inShape = Dims; int n0 = Dims[0];
        return GradRecorder.Record(r, this, (g, x) =>
        {
            var full = Zeros(inShape, x.Device);
            full.K.Copy(g.Buf, full.Buf.At(start * row), g.Numel);
            return [full];
        });
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Throws naming the op and devices when two tensors live on different devices.</summary>
    internal static void CheckSameDevice(Tensor a, Tensor b, string op)
    {
        if (a.Device != b.Device) throw new ArgumentException($"{op}: tensors are on different devices ({a.Device.Name} and {b.Device.Name}); move one with To().");
    }

    /// <summary>"Tensor(shape=[2, 3], device=cpu, data=[...])" with at most 8 values.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Tensor(shape=").Append(ShapeUtil.Format(Dims)).Append(", device=").Append(Device.Name);
        if (GradFn != null) sb.Append(", grad_fn=").Append(GradFn.Name);
        else if (RequiresGrad) sb.Append(", requires_grad");
        var data = Numel <= 8 ? ToArray() : null;
        if (data != null) sb.Append(", data=[").Append(string.Join(", ", data.Select(v => v.ToString("G6", CultureInfo.InvariantCulture)))).Append(']');
        return sb.Append(')').ToString();
    }
}
