using System.CommandLine;
using System.Globalization;
using Engine.Attacks;
using Engine.Bounds;
using Engine.Certify;
using Engine.Cpu;
using Engine.Data;
using Engine.Tensors;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>
/// `engine certify MODEL --eps E`: clean, PGD and verified accuracy of a classifier on the Fashion-MNIST test set
/// (or randomized smoothing's certified accuracy); the last stdout line is
/// {"clean":c,"pgd":p,"verified":v,"eps":E,"method":"..."}.
/// </summary>
internal static class CertifyCommand
{
    private static readonly string[] Methods = ["ibp", "crown", "alpha-crown", "bab", "smoothing"];

    public static Command Create()
    {
        var file = new Argument<string>("MODEL") { Description = "Weights saved by `engine train` (safetensors), or an .onnx classifier" };
        var model = new Option<string?>("--model") { Description = "Architecture of a weights file (default: the one recorded in the file)" };
        model.AcceptOnlyFromAmong(ModelZoo.Names);
        var data = TrainCommand.DataOption();
        var eps = new Option<float>("--eps") { Description = "Radius of the perturbation ball", Required = true };
        var norm = new Option<string?>("--norm") { Description = "inf (a box, inputs clipped to [0, 1]) or 2 (default: inf; 2 for smoothing)" };
        norm.AcceptOnlyFromAmong("inf", "2");
        var method = new Option<string>("--method")
        {
            Description = "ibp, crown, alpha-crown, bab (IBP, CROWN, alpha-CROWN, then branch and bound on what is left; Linf), or smoothing (randomized smoothing, L2)",
            DefaultValueFactory = _ => "crown",
        };
        method.AcceptOnlyFromAmong(Methods);
        var plot = new Option<string?>("--plot") { Description = "Write a PNG of verified and PGD accuracy against eps (0 .. E)" };
        var sigma = new Option<float>("--sigma") { Description = "Smoothing: noise standard deviation", DefaultValueFactory = _ => 0.25f };
        var n0 = new Option<int>("--n0") { Description = "Smoothing: samples that choose the top class", DefaultValueFactory = _ => 100 };
        var n = new Option<int>("--n") { Description = "Smoothing: samples that estimate its probability", DefaultValueFactory = _ => 1000 };
        var alpha = new Option<double>("--alpha") { Description = "Smoothing: failure probability of each certificate", DefaultValueFactory = _ => 0.001 };
        var pgdSteps = new Option<int>("--pgd-steps") { Description = "PGD steps", DefaultValueFactory = _ => 20 };
        var pgdRestarts = new Option<int>("--pgd-restarts") { Description = "PGD restarts", DefaultValueFactory = _ => 1 };
        var limit = new Option<int?>("--limit") { Description = "Certify only the first N test images" };
        var batch = new Option<int?>("--batch") { Description = "Examples per batch (default 128; smoothing: noisy copies per pass, default 1000)" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the attack's random starts and the smoothing noise", DefaultValueFactory = _ => 0 };
        var babTimeout = new Option<double>("--bab-timeout") { Description = "bab: time limit of branch and bound per example, in seconds", DefaultValueFactory = _ => 2 };
        var device = DeviceOption.Create();

        var cmd = new Command("certify", "Clean, PGD and verified accuracy on the test set; the last stdout line is {\"clean\":c,\"pgd\":p,\"verified\":v,\"eps\":E,\"method\":M}")
        {
            file, model, data, eps, norm, method, plot, sigma, n0, n, alpha, pgdSteps, pgdRestarts, limit, batch, seed, babTimeout, device,
        };
        cmd.SetAction(EngineCli.Guard(parse => Run(new Settings(
            parse.GetValue(file)!, parse.GetValue(model), parse.GetValue(data), parse.GetValue(eps), parse.GetValue(norm), parse.GetValue(method)!,
            parse.GetValue(plot), parse.GetValue(sigma), parse.GetValue(n0), parse.GetValue(n), parse.GetValue(alpha),
            parse.GetValue(pgdSteps), parse.GetValue(pgdRestarts), parse.GetValue(limit), parse.GetValue(batch), parse.GetValue(seed), parse.GetValue(babTimeout),
            parse.GetValue(device)!))));
        return cmd;
    }

    private sealed record Settings(string File, string? Model, string? Data, float Eps, string? Norm, string Method, string? Plot,
                                   float Sigma, int N0, int N, double Alpha, int PgdSteps, int PgdRestarts, int? Limit, int? Batch, ulong Seed, double BabTimeout,
                                   string Device);

    private static void Validate(Settings s)
    {
        if (!(s.Eps >= 0) || float.IsInfinity(s.Eps)) throw new ArgumentException($"--eps must be a finite number >= 0, got {F(s.Eps)}.");
        if (s.PgdSteps < 1) throw new ArgumentException($"--pgd-steps must be at least 1, got {s.PgdSteps}.");
        if (s.PgdRestarts < 1) throw new ArgumentException($"--pgd-restarts must be at least 1, got {s.PgdRestarts}.");
        if (s.Limit is < 1) throw new ArgumentException($"--limit must be at least 1, got {s.Limit}.");
        if (s.Batch is < 1) throw new ArgumentException($"--batch must be at least 1, got {s.Batch}.");
        if (s.Method == "smoothing")
        {
            if (!(s.Sigma > 0) || float.IsInfinity(s.Sigma)) throw new ArgumentException($"--sigma must be a finite number > 0, got {F(s.Sigma)}.");
            if (s.N0 < 1) throw new ArgumentException($"--n0 must be at least 1, got {s.N0}.");
            if (s.N < 1) throw new ArgumentException($"--n must be at least 1, got {s.N}.");
            if (!(s.Alpha > 0 && s.Alpha < 1)) throw new ArgumentException($"--alpha must be in (0, 1), got {s.Alpha.ToString(CultureInfo.InvariantCulture)}.");
            if (s.Norm == "inf") throw new ArgumentException("--method smoothing certifies L2 radii: use --norm 2 (or leave --norm out).");
        }
        if (!(s.BabTimeout > 0) || !(s.BabTimeout <= 86400))
            throw new ArgumentException($"--bab-timeout must be a number of seconds in (0, 86400], got {s.BabTimeout.ToString(CultureInfo.InvariantCulture)}.");
        if (s.Method == "bab" && s.Norm == "2")
            throw new ArgumentException("--method bab certifies Linf radii only (branch and bound works on input boxes); use --method crown for --norm 2.");
        if (s.Plot != null)
        {
            if (!s.Plot.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--plot must name a .png file, got '{s.Plot}'.");
            if (s.Eps == 0) throw new ArgumentException("--plot needs --eps > 0 (it plots accuracy from eps 0 to E).");
        }
    }

    private static int Run(Settings s)
    {
        Validate(s);
        var device = DeviceOption.Resolve(s.Device);
        if (s.Method == "bab" && device != Tensors.Device.Cpu) throw new ArgumentException("--method bab runs branch and bound on the CPU; leave --device out.");
        var loaded = ModelFiles.Load(s.File, s.Model);
        var graph = loaded.Module is { } module ? module.To(device).Graph : loaded.Graph.To(device);
        var (split, source) = Training.LoadData(s.Data);
        var test = ModelFiles.Examples(split.Test, loaded.ExampleShape, s.Limit, s.File);
        bool smoothing = s.Method == "smoothing";
        bool l2 = smoothing || s.Norm == "2";
        bool fancy = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        var radii = s.Plot != null ? Certification.Radii(s.Eps, 6) : [s.Eps];
        // Fail before a long run, not after it, where the plot cannot be drawn.
        if (s.Plot != null) Plotting(() => new ScottPlot.Plot().GetImageBytes(8, 8, ScottPlot.ImageFormat.Png));

        var threads = device == Tensors.Device.Cpu ? $"{CpuThreads.Count} threads" : $"on {device.Name}";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"certify {loaded.Name} on {source}: {test.Count} test images, eps {F(s.Eps)} ({(l2 ? "L2" : "Linf, inputs clipped to [0, 1]")}), method {s.Method}, {threads}"));

        IReadOnlyList<CertificationReport> reports = null!;
        void Work(Action<int, int> progress)
        {
            if (smoothing)
            {
                var o = new SmoothingOptions
                {
                    Sigma = s.Sigma, N0 = s.N0, N = s.N, Alpha = s.Alpha, BatchSize = s.Batch ?? 1000, Eps = s.Eps,
                    PgdSteps = s.PgdSteps, PgdRestarts = s.PgdRestarts, Seed = s.Seed,
                };
                reports = Smoothing.Sweep(graph, test, o, radii, progress);
            }
            else
            {
                bool bab = s.Method == "bab";
                var o = new CertificationOptions
                {
                    Eps = s.Eps, Norm = l2 ? PerturbationNorm.L2 : PerturbationNorm.LInf, Method = bab ? BoundMethod.Crown : ParseMethod(s.Method),
                    BatchSize = s.Batch ?? 128, PgdSteps = s.PgdSteps, PgdRestarts = s.PgdRestarts, Seed = s.Seed,
                };
                var babOptions = new BabOptions { Timeout = TimeSpan.FromSeconds(s.BabTimeout), Seed = s.Seed };
                Func<CertificationOptions, IRobustnessCertifier>? certifier = bab ? c => new BabCertifier(graph, babOptions, c.BoundOptions, c.RecheckBelow) : null;
                int total = test.Count * radii.Length;
                reports = Certification.Sweep(graph, test, o, radii, certifier, progress: done => progress(done, total));
            }
        }

        if (fancy)
        {
            AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("certify", maxValue: 1);
                    Work((done, total) => { task.MaxValue = total; task.Value = done; });
                    task.StopTask();
                });
        }
        else
        {
            int lastDecile = 0;
            Work((done, total) =>
            {
                int decile = (int)(10L * done / Math.Max(1, total));
                if (decile <= lastDecile || done == total) return;
                lastDecile = decile;
                Console.WriteLine($"progress {done}/{total}");
            });
        }

        var r = reports[^1];
        Print(r);
        if (s.Plot != null) Plot(reports, s.Plot, loaded.Name, r.Method, l2);
        Console.WriteLine(r.ToJson());
        return 0;
    }

    private static void Print(CertificationReport r)
    {
        string Pct(int k) => string.Create(CultureInfo.InvariantCulture, $"{100.0 * k / Math.Max(1, r.Total),6:0.00}% ({k}/{r.Total})");
        Console.WriteLine($"clean accuracy     {Pct(r.Clean)}");
        Console.WriteLine($"PGD accuracy       {Pct(r.Pgd)}  {r.Attack}");
        string how = r.Smoothing is { } sm
            ? string.Create(CultureInfo.InvariantCulture, $"smoothing: sigma {F(sm.Sigma)}, n0 {sm.N0}, n {sm.N}, alpha {sm.Alpha}; abstained {sm.Abstained}")
            : $"{r.Method}" + (r.Rechecked > 0 ? $"; {r.Rechecked} near-zero bounds re-checked in float64, {r.RecheckRejected} not proved there" : "");
        Console.WriteLine($"verified accuracy  {Pct(r.Verified)}  {how}");
        if (r.RecheckUnavailable is { } why) Console.WriteLine($"  the float64 re-check could not run: {why}");
        if (r.Bab is { } b)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  bounds ({b.BoundSeconds:0.0} s): IBP {b.Ibp}, + CROWN {b.Crown}, + alpha-CROWN {b.AlphaCrown}; screening attack ({b.AttackSeconds:0.0} s) broke {b.Attacked} open examples"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  branch and bound ({b.BranchAndBoundSeconds:0.0} s): {b.BranchAndBound} examples, {b.Proved} proved, {b.Counterexamples} counterexamples, {b.Timeouts} timed out, {b.Unknown} unknown"));
        }
        if (r.Smoothing != null)
        {
            var radii = r.Examples.Where(e => e.Clean).Select(e => e.Radius).Order().ToArray();
            if (radii.Length > 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"certified L2 radius of the correct predictions: median {radii[radii.Length / 2]:0.###}, max {radii[^1]:0.###}"));
            if (r.Inconsistent > 0)
                Console.WriteLine($"note: {r.Inconsistent} certified example(s) were broken by the attack (each certificate fails with probability <= alpha)");
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"time {r.Seconds:0.0} s"));
    }

    private static void Plot(IReadOnlyList<CertificationReport> reports, string path, string model, string method, bool l2)
    {
        var xs = reports.Select(r => (double)r.Eps).ToArray();
        Plotting(() =>
        {
            var plt = new ScottPlot.Plot();
            var v = plt.Add.Scatter(xs, reports.Select(r => 100 * r.VerifiedAccuracy).ToArray());
            v.LegendText = $"verified ({method})";
            var p = plt.Add.Scatter(xs, reports.Select(r => 100 * r.PgdAccuracy).ToArray());
            p.LegendText = "PGD";
            plt.Title($"{model}: accuracy against eps");
            plt.XLabel(l2 ? "eps (L2)" : "eps (Linf)");
            plt.YLabel("accuracy (%)");
            plt.Axes.SetLimitsY(0, 100);
            plt.ShowLegend();
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir != null) Directory.CreateDirectory(dir);
            plt.SavePng(path, 800, 500);
        });
        Console.WriteLine($"plot written to {path}");
    }

    /// <summary>
    /// Runs ScottPlot code, turning a missing native library (SkiaSharp's libSkiaSharp, which `./build.sh publish` puts
    /// beside the binary) into one clear error line.
    /// </summary>
    private static void Plotting(Action draw)
    {
        try { draw(); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            var inner = e;
            while (inner.InnerException is { } next) inner = next;
            string first = inner.Message.Split('\n', 2)[0].TrimEnd('.', ' ', ':');
            throw new InvalidOperationException(
                $"--plot: the plotting library (SkiaSharp) could not load its native library; keep libSkiaSharp.so and libHarfBuzzSharp.so beside the engine binary ({first}).", e);
        }
    }

    private static BoundMethod ParseMethod(string m) => m switch
    {
        "ibp" => BoundMethod.Ibp,
        "crown" => BoundMethod.Crown,
        "alpha-crown" => BoundMethod.AlphaCrown,
        _ => throw new ArgumentException($"unknown method '{m}' ({string.Join(", ", Methods)})."),
    };

    private static string F(float v) => v.ToString("R", CultureInfo.InvariantCulture);
}
