using System.CommandLine;
using Engine.Diagnostics;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>
/// `engine selftest [--device cuda] [--filter TEXT] [--exclude TEXT...] [--memory-steps N] [--list]`: every kernel on the device against the CPU
/// (the CPU against the scalar reference implementations), one line per op, then "N passed, M failed"; exit code 1
/// when anything failed.
/// </summary>
internal static class SelfTestCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "Device under test: cpu, cuda, cuda:1, ...", DefaultValueFactory = _ => "cpu" };
        var filter = new Option<string?>("--filter") { Description = "Run only the checks whose name contains this text (case-insensitive)" };
        var memorySteps = new Option<int?>("--memory-steps") { Description = "Also train a small MLP for N steps on the device and fail if its allocated memory grows after step 100" };
        var exclude = new Option<string[]>("--exclude") { Description = "Skip the checks whose name contains any of these texts (e.g. after one crashed the device)", AllowMultipleArgumentsPerToken = true };
        var list = new Option<bool>("--list") { Description = "Print the check names and exit" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of the random inputs" };
        memorySteps.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--memory-steps must be at least 1."); });
        var cmd = new Command("selftest", "Run every kernel on random inputs on a device and on the CPU and compare them") { device, filter, exclude, memorySteps, seed, list };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var dev = Device.Get(parse.GetValue(device)!);
            var test = parse.GetValue(seed) is ulong s ? new KernelSelfTest(dev, s) : new KernelSelfTest(dev);
            string? text = parse.GetValue(filter);
            var skip = parse.GetValue(exclude) ?? [];
            if (parse.GetValue(list))
            {
                foreach (var n in test.CheckNames) Console.WriteLine(n);
                return 0;
            }
            Console.WriteLine($"selftest: {dev.Name} against the {test.ReferenceName}, seed 0x{test.Seed:X}{(text == null ? "" : $", filter '{text}'")}");
            int passed = 0, failed = 0;
            void Report(SelfTestResult r)
            {
                Console.WriteLine(r.Message == null ? $"{r}  {r.Elapsed.TotalMilliseconds:0} ms" : r.ToString());
                if (r.Passed) passed++; else failed++;
            }
            bool Selected(string n) => (text == null || n.Contains(text, StringComparison.OrdinalIgnoreCase))
                                       && !skip.Any(x => n.Contains(x, StringComparison.OrdinalIgnoreCase));
            foreach (var r in test.Run(Selected)) Report(r);
            if (parse.GetValue(memorySteps) is int steps) Report(MemoryCheck.Run(dev, steps, line => Console.WriteLine($"     {line}")));
            if (passed + failed == 0) Console.Error.WriteLine($"warning: no check matches the filter '{text}'");
            Console.WriteLine($"{passed} passed, {failed} failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }));
        return cmd;
    }
}
