using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Engine.Onnx;
using Engine.Verification;

namespace Engine.Cli;

/// <summary>`engine verify`: one VNN-COMP instance (MODEL.onnx SPEC.vnnlib) or a whole instance list.</summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("MODEL") { Description = "ONNX model", Arity = ArgumentArity.ZeroOrOne };
        var spec = new Argument<string?>("SPEC") { Description = "VNNLIB property", Arity = ArgumentArity.ZeroOrOne };
        var timeout = new Option<double>("--timeout") { Description = "Time limit in seconds (single instance)", DefaultValueFactory = _ => 60 };
        var output = new Option<string?>("--out") { Description = "VNN-COMP result file (sat/unsat/timeout/unknown, and the counterexample)" };
        var instances = new Option<string?>("--instances") { Description = "CSV list onnx,vnnlib,timeout_s[,expected] to run instead of one instance" };
        var root = new Option<string?>("--root") { Description = "Directory the list's paths are relative to (default: the list's directory)" };
        var shard = new Option<string?>("--shard") { Description = "I/N: run every N-th instance starting at I (0-based)" };
        var results = new Option<string?>("--results") { Description = "Append one CSV line per instance: onnx,vnnlib,timeout_s,expected,verdict,seconds" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the attack's random starts", DefaultValueFactory = _ => 0 };
        timeout.Validators.Add(r => { if (!(r.GetValueOrDefault<double>() > 0)) r.AddError("--timeout must be positive."); });
        var cmd = new Command("verify", "Decide a VNN-COMP property: prints holds, violated, unknown or timeout as its last line")
        {
            model, spec, timeout, output, instances, root, shard, results, seed,
        };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var list = parse.GetValue(instances);
            if (list != null)
            {
                if (parse.GetValue(model) != null) throw new ArgumentException("give either MODEL SPEC or --instances, not both.");
                return RunList(list, parse.GetValue(root), parse.GetValue(shard), parse.GetValue(results), parse.GetValue(seed));
            }
            var m = parse.GetValue(model) ?? throw new ArgumentException("MODEL and SPEC are required (or --instances CSV).");
            var s = parse.GetValue(spec) ?? throw new ArgumentException("SPEC is required.");
            var r = VerifyOne(m, s, parse.GetValue(timeout), parse.GetValue(seed));
            if (parse.GetValue(output) is { } outPath) File.WriteAllText(outPath, VnnResultFile.Format(r.Verdict, r.Counterexample));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {r.Detail} ({r.Elapsed.TotalSeconds:0.###} s, {r.Boxes} domains)"));
            Console.WriteLine(r.VerdictText);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Loads and verifies one instance; a model or property that cannot be read is an error, not a verdict.</summary>
    public static VerificationResult VerifyOne(string onnx, string vnnlib, double timeoutSeconds, ulong seed)
    {
        var sw = Stopwatch.StartNew();
        OnnxModel m;
        try { m = OnnxModel.Load(onnx); }
        catch (NotSupportedException e) { throw new InvalidDataException(e.Message, e); }
        if (m.Inputs.Count != 1 || m.Outputs.Count != 1)
            throw new InvalidDataException($"{onnx}: the verifier needs one input and one output, the model has {m.Inputs.Count} and {m.Outputs.Count}.");
        var shape = Verifier.ExampleShape(m.Inputs[0].Shape);
        VnnlibProperty p;
        try { p = Vnnlib.Parse(vnnlib, m.Inputs[0].Numel, m.Outputs[0].Numel); }
        catch (VnnlibFormatException e) { throw new InvalidDataException(e.Message, e); }
        var problem = new VerificationProblem(p.Cases.Select(c => new VerificationCase(c.InputLower, c.InputUpper, c.Unsafe.Select(u => new UnsafeConjunction(u.C, u.D)))));
        // Loading counts against the limit, as in the competition.
        var left = TimeSpan.FromSeconds(timeoutSeconds) - sw.Elapsed;
        if (left <= TimeSpan.Zero) left = TimeSpan.FromMilliseconds(1);
        try
        {
            return Verifier.Verify(m.Graph, shape, problem, new VerifierOptions { Timeout = left, Seed = seed });
        }
        catch (NotSupportedException e) { throw new InvalidDataException($"{onnx}: {e.Message}", e); }
    }

    private static int RunList(string csv, string? rootArg, string? shardArg, string? resultsPath, ulong seed)
    {
        var all = InstanceList.Parse(File.ReadAllLines(csv), csv);
        var rootDir = rootArg ?? Path.GetDirectoryName(Path.GetFullPath(csv))!;
        var (si, sn) = shardArg == null ? (0, 1) : InstanceList.ParseShard(shardArg);
        var mine = InstanceList.Shard(all, si, sn);
        bool tty = !Console.IsOutputRedirected;
        var rows = new List<(VerificationInstance I, string Verdict, double Seconds, string Detail)>();
        for (int k = 0; k < mine.Count; k++)
        {
            var inst = mine[k];
            if (tty) Console.Write($"\r{Bar(k, mine.Count)} {k}/{mine.Count} {Path.GetFileName(inst.Onnx)} {Path.GetFileName(inst.Vnnlib)}".PadRight(Math.Max(20, SafeWidth() - 1)));
            var sw = Stopwatch.StartNew();
            string verdict, detail;
            try
            {
                var r = VerifyOne(Path.Combine(rootDir, inst.Onnx), Path.Combine(rootDir, inst.Vnnlib), inst.TimeoutSeconds, seed);
                verdict = r.VerdictText; detail = r.Detail;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or InvalidOperationException or FormatException)
            {
                verdict = "error"; detail = e.Message;
            }
            double secs = sw.Elapsed.TotalSeconds;
            rows.Add((inst, verdict, secs, detail));
            bool wrong = IsWrong(inst.Expected, verdict);
            if (tty) Console.Write("\r" + new string(' ', Math.Max(20, SafeWidth() - 1)) + "\r");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{inst.Index,4} {inst.Onnx} {inst.Vnnlib} {verdict} {secs:0.00}s{(inst.Expected != null ? $" (expected {inst.Expected})" : "")}{(wrong ? "  <-- WRONG VERDICT" : "")}"));
            if (resultsPath != null)
                File.AppendAllText(resultsPath, string.Create(CultureInfo.InvariantCulture,
                    $"{inst.Onnx},{inst.Vnnlib},{inst.TimeoutSeconds},{inst.Expected ?? ""},{verdict},{secs:0.###}\n"));
        }
        Console.WriteLine(Summary(rows.Select(r => (r.I, r.Verdict, r.Seconds)).ToList()));
        return rows.Any(r => IsWrong(r.I.Expected, r.Verdict)) ? 2 : 0;
    }

    private static int SafeWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 80; } catch (IOException) { return 80; }
    }

    private static string Bar(int done, int total)
    {
        const int w = 24;
        int f = total == 0 ? w : done * w / total;
        return "[" + new string('#', f) + new string('.', w - f) + "]";
    }

    /// <summary>holds against violated (or the reverse): the errors a verifier must never make.</summary>
    public static bool IsWrong(string? expected, string verdict)
        => expected == "holds" && verdict == "violated" || expected == "violated" && verdict == "holds";

    private static string Summary(List<(VerificationInstance I, string Verdict, double Seconds)> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"instances: {rows.Count}");
        foreach (var v in new[] { "holds", "violated", "unknown", "timeout", "error" })
        {
            var sel = rows.Where(r => r.Verdict == v).ToList();
            if (sel.Count == 0) continue;
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"  {v,-9} {sel.Count,4}   total {sel.Sum(r => r.Seconds),8:0.00}s   max {sel.Max(r => r.Seconds),7:0.00}s"));
        }
        var known = rows.Where(r => r.I.Expected != null).ToList();
        if (known.Count > 0)
        {
            int agree = known.Count(r => r.Verdict == r.I.Expected);
            int undecided = known.Count(r => r.Verdict is not ("holds" or "violated"));
            var wrong = known.Where(r => IsWrong(r.I.Expected, r.Verdict)).ToList();
            sb.AppendLine($"agreement with expected: {agree}/{known.Count} agree, {undecided} undecided, {wrong.Count} WRONG");
            foreach (var w in wrong) sb.AppendLine($"  !!! WRONG VERDICT: {w.I.Onnx} {w.I.Vnnlib}: {w.Verdict}, expected {w.I.Expected}");
        }
        return sb.ToString().TrimEnd();
    }
}
