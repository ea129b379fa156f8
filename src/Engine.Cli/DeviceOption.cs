using System.CommandLine;
using System.Text.RegularExpressions;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>`--device cpu|cuda[:N]`, shared by `engine train` and the `engine bench` subcommands.</summary>
internal static partial class DeviceOption
{
    [GeneratedRegex(@"^(cpu|cuda(:\d+)?)$")]
    private static partial Regex Pattern();

    public static Option<string> Create()
    {
        var o = new Option<string>("--device") { Description = "cpu, or cuda[:N] (the N-th GPU; needs the CUDA driver)", DefaultValueFactory = _ => "cpu" };
        o.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (v is null || !Pattern().IsMatch(v)) r.AddError($"--device must be cpu, cuda or cuda:N, got '{v}'.");
        });
        return o;
    }

    /// <summary>
    /// The device named by --device. Any failure to bring it up (no backend, no driver, no GPU, a library that does not
    /// load) becomes an InvalidOperationException whose message says why, which the CLI prints as one "error:" line.
    /// </summary>
    public static Device Resolve(string name)
    {
        try
        {
            var device = Device.Get(name);
            // Touch the device so that a context that cannot be created fails here, with the device's name, rather than
            // inside the first kernel of a benchmark.
            device.Synchronize();
            return device;
        }
        catch (InvalidOperationException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var inner = e;
            while (inner is TypeInitializationException { InnerException: { } next }) inner = next;
            throw new InvalidOperationException($"--device {name}: {inner.Message}", e);
        }
    }
}
