using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// One thread's packing buffers for <see cref="Sgemm"/>, 64-byte aligned and kept for the life of the process: a
/// GEMM call rents one per worker and returns it, so steady-state calls allocate nothing.
/// </summary>
internal sealed unsafe class GemmWorkspace
{
    private static readonly Stack<GemmWorkspace> Pool = new();

    /// <summary>Packed A block (MC+MR rows × KC).</summary>
    internal readonly float* A;
    /// <summary>Packed B block (KC × NC).</summary>
    internal readonly float* B;

    /// <summary>Floats in <see cref="A"/> (not counting the packing slack).</summary>
    internal const int AFloats = (Sgemm.MC + Sgemm.MaxMR) * Sgemm.KC;

    private GemmWorkspace()
    {
        A = (float*)NativeMemory.AlignedAlloc((nuint)((long)AFloats + GemmPack.Slack) * sizeof(float), 64);
        B = (float*)NativeMemory.AlignedAlloc((nuint)((long)Sgemm.KC * Sgemm.NC + GemmPack.Slack) * sizeof(float), 64);
    }

    /// <summary>A free workspace (a new one when every pooled one is in use).</summary>
    internal static GemmWorkspace Rent()
    {
        lock (Pool) if (Pool.Count > 0) return Pool.Pop();
        return new GemmWorkspace();
    }

    /// <summary>Hands a workspace back to the pool.</summary>
    internal static void Return(GemmWorkspace ws)
    {
        lock (Pool) Pool.Push(ws);
    }
}
