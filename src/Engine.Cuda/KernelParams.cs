using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Cuda;

/// <summary>A CUDA launch grid or block size.</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1);

/// <summary>
/// A kernel's arguments packed as the kernel's parameter space lays them out (each at its natural C alignment), so a
/// launch passes them in one buffer (cuLaunchKernel's CU_LAUNCH_PARAM_BUFFER_POINTER) with no allocation. Add them in
/// the order of the kernel's parameter list. A fixed-size int array (<see cref="Ints"/>) matches a by-value
/// <c>struct { int v[N]; }</c> parameter, which is how shapes and strides travel.
/// </summary>
internal struct KernelParams
{
    public const int Capacity = 1024;

    [InlineArray(Capacity)]
    private struct Bytes { private byte _e; }

    private Bytes _bytes;
    private int _size;

    /// <summary>Bytes used so far.</summary>
    public readonly int Size => _size;

    /// <summary>A device address (a T* parameter).</summary>
    public void Pointer(ulong address) => Put(address);
    /// <summary>An int parameter.</summary>
    public void Int(int value) => Put(value);
    /// <summary>An unsigned int parameter.</summary>
    public void UInt(uint value) => Put(value);
    /// <summary>A long long parameter.</summary>
    public void Long(long value) => Put(value);
    /// <summary>An unsigned long long parameter.</summary>
    public void ULong(ulong value) => Put(value);
    /// <summary>A float parameter.</summary>
    public void Float(float value) => Put(value);
    /// <summary>A double parameter.</summary>
    public void Double(double value) => Put(value);

    /// <summary>A by-value <c>struct { int v[length]; }</c>: the values, then zeros up to <paramref name="length"/>.</summary>
    public void Ints(ReadOnlySpan<int> values, int length)
    {
        if (values.Length > length) throw new ArgumentException($"{values.Length} values do not fit an int[{length}] kernel parameter.");
        int at = Align(4, length * 4);
        for (int i = 0; i < length; i++)
            Unsafe.WriteUnaligned(ref _bytes[at + 4 * i], i < values.Length ? values[i] : 0);
        _size = at + length * 4;
    }

    /// <summary>The packed bytes (valid while this struct is not moved: pin or copy it before the launch).</summary>
    public readonly ReadOnlySpan<byte> AsSpan() => MemoryMarshal.CreateReadOnlySpan(ref Unsafe.AsRef(in _bytes[0]), _size);

    private unsafe void Put<T>(T value) where T : unmanaged
    {
        int at = Align(sizeof(T), sizeof(T));
        Unsafe.WriteUnaligned(ref _bytes[at], value);
        _size = at + sizeof(T);
    }

    private readonly int Align(int alignment, int bytes)
    {
        int at = (_size + alignment - 1) & ~(alignment - 1);
        if (at + bytes > Capacity) throw new InvalidOperationException($"Kernel parameters exceed {Capacity} bytes.");
        return at;
    }
}
