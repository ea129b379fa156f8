namespace Engine.Autograd;

/// <summary>Whether ops on this thread record backward rules.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabledDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    internal static void Disable() => _disabledDepth++;
    internal static void Restore() => _disabledDepth--;
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
