namespace Engine.Autograd;

/// <summary>Whether ops on this thread record backward rules.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabledDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    internal static void Disable() => _disabledDepth++;
    internal static void Restore() => _disabledDepth--;

    /// <summary>Turns recording on inside a NoGrad scope (alpha-CROWN needs gradients whatever the caller's mode); returns the depth to <see cref="Resume"/>.</summary>
    internal static int Suspend()
    {
        int depth = _disabledDepth;
        _disabledDepth = 0;
        return depth;
    }

    /// <summary>Restores the no-grad depth saved by <see cref="Suspend"/>.</summary>
    internal static void Resume(int depth) => _disabledDepth = depth;
}

/// <summary>
/// Turns gradient recording off on this thread until disposed, like torch.no_grad():
/// <c>using (new NoGrad()) { ... }</c>. Scopes nest.
/// </summary>
public sealed class NoGrad : IDisposable
{
    private bool _disposed;
    /// <summary>Enters the scope.</summary>
    public NoGrad() { GradMode.Disable(); }
    /// <summary>Leaves the scope.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        GradMode.Restore();
    }
}
