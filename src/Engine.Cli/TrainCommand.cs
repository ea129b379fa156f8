using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Bounds;
using Engine.Certify;
using Engine.Cpu;
using Engine.Data;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>
/// `engine train`: trains a zoo model on Fashion-MNIST with one of the training methods (standard, PGD, Gaussian
/// noise, or the certified IBP / CROWN-IBP / SABR / CC-IBP / MTL-IBP with their eps and kappa/beta schedules) and saves
/// its weights, recording the method and radius in the file's metadata.
/// </summary>
internal static class TrainCommand
{
    public static Option<string> ModelOption(string defaultModel = "cnn")
    {
        var o = new Option<string>("--model") { Description = "Model architecture", DefaultValueFactory = _ => defaultModel };
        o.AcceptOnlyFromAmong(ModelZoo.Names);
        return o;
    }

    public static Option<string?> DataOption() => new("--data")
    {
        Description = "Directory with the Fashion-MNIST IDX files (default: the embedded 10k/2k subset)",
    };

    /// <summary>The parsed command line of `engine train`.</summary>
    private sealed record Args(
        string? Model, string Method, float? Eps, string Norm, int? Epochs, int? Batch, float? Lr, string Optimizer, ulong Seed,
        string? Data, string? Out, string Device, int? Limit, int? Warmup, int? Ramp, string EpsSchedule, float? KappaStart,
        float? KappaEnd, float? BetaEnd, float? SabrLambda, float? Alpha, int? PgdSteps, float? Sigma, string? LrSchedule, string? LrDecayEpochs,
        float? LrDecay, float? GradClip, string DataParallel, int? MicroBatch);

    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model architecture (default: cnn for standard training, cnn-small for the other methods)" };
        model.AcceptOnlyFromAmong(ModelZoo.Names);
        var method = new Option<string>("--method")
        {
            Description = "standard | pgd (Madry) | noise (Gaussian, for randomized smoothing) | ibp (Gowal) | crown-ibp (Zhang) | sabr (Mueller) | ccibp | mtlibp (De Palma)",
            DefaultValueFactory = _ => "standard",
        };
        method.AcceptOnlyFromAmong([.. TrainMethods.Names]);
        var eps = NonNegative(new Option<float?>("--eps") { Description = "Training radius (needed by pgd and the certified methods), in input units ([0, 1] pixels)" });
        var norm = new Option<string>("--norm") { Description = "Perturbation norm: inf (box clipped to [0, 1]) or 2", DefaultValueFactory = _ => "inf" };
        norm.AcceptOnlyFromAmong("inf", "2");
        var epochs = Positive(new Option<int?>("--epochs") { Description = "Passes over the training set (default: 6 standard, 20 otherwise)" });
        var batch = Positive(new Option<int?>("--batch") { Description = "Mini-batch size (default: 64 standard, 256 otherwise)" });
        var lr = new Option<float?>("--lr") { Description = "Base learning rate (default: 2e-3 standard, 5e-4 otherwise)" };
        lr.Validators.Add(r => { if (r.GetValueOrDefault<float?>() is float v && !(v > 0 && float.IsFinite(v))) r.AddError("--lr must be positive."); });
        var optim = new Option<string>("--optimizer") { Description = "adam, or sgd (momentum 0.9; standard training only)", DefaultValueFactory = _ => "adam" };
        optim.AcceptOnlyFromAmong("adam", "sgd");
        var seed = new Option<ulong>("--seed") { Description = "Seed for initialisation, shuffling, attacks and noise", DefaultValueFactory = _ => 0 };
        var data = DataOption();
        var output = new Option<string?>("--out") { Description = "Where to save the weights (safetensors; default: out/MODEL.safetensors)" };
        var device = DeviceOption.Create();
        var limit = Positive(new Option<int?>("--limit") { Description = "Train on the first N training examples only (quick runs)" });
        var warmup = NonNegative(new Option<int?>("--warmup-epochs") { Description = "Epochs of standard training before the eps ramp (default: 1 for certified methods, 0 otherwise)" });
        var ramp = NonNegative(new Option<int?>("--ramp-epochs") { Description = "Epochs over which eps grows from 0 to --eps (default: half of the rest for certified methods, 0 otherwise)" });
        var epsSchedule = new Option<string>("--eps-schedule") { Description = "Ramp shape: linear (per batch) or smoothed (auto_LiRPA's)", DefaultValueFactory = _ => "linear" };
        epsSchedule.AcceptOnlyFromAmong("linear", "smoothed");
        var kappaStart = Unit(new Option<float?>("--kappa-start") { Description = "Certified methods: weight of the clean loss at the start of the ramp (default 1; 0 skips the clean pass during the ramp)" }, closedBelow: true);
        var kappaEnd = Unit(new Option<float?>("--kappa-end") { Description = "Certified methods: weight of the clean loss at the end of the ramp (kappa goes --kappa-start -> this; default 0)" }, closedBelow: true);
        var betaEnd = Unit(new Option<float?>("--beta-end") { Description = "crown-ibp: weight of CROWN-IBP at the end of the ramp (beta goes 1 -> this; default 0)" }, closedBelow: true);
        var sabrLambda = Unit(new Option<float?>("--sabr-lambda") { Description = "sabr: small-box radius as a fraction of eps, in (0, 1] (default 0.4; 1 = IBP)" }, closedBelow: false);
        var alpha = Unit(new Option<float?>("--alpha") { Description = "ccibp / mtlibp: weight of the IBP term, in [0, 1] (default 0.5; 1 = IBP, 0 = adversarial)" }, closedBelow: true);
        var pgdSteps = Positive(new Option<int?>("--pgd-steps") { Description = "PGD steps per batch (default: 10 for pgd, 5 for sabr / ccibp / mtlibp)" });
        var sigma = new Option<float?>("--sigma") { Description = "noise: standard deviation of the Gaussian noise (needed by --method noise)" };
        sigma.Validators.Add(r => { if (r.GetValueOrDefault<float?>() is float v && !(v > 0 && float.IsFinite(v))) r.AddError("--sigma must be positive."); });
        var lrSchedule = new Option<string?>("--lr-schedule") { Description = "cosine | step | constant (default: cosine for standard, step otherwise)" };
        lrSchedule.AcceptOnlyFromAmong("cosine", "step", "constant");
        var lrDecayEpochs = new Option<string?>("--lr-decay-epochs") { Description = "Step schedule: comma-separated epoch counts after which the lr is multiplied by --lr-decay (default: one at 3/4 of the run, after the ramp)" };
        var lrDecay = Unit(new Option<float?>("--lr-decay") { Description = "Step schedule: decay factor in (0, 1] (default 0.1)" }, closedBelow: false);
        var gradClip = NonNegative(new Option<float?>("--grad-clip") { Description = "Clip the gradient norm to this (0 = off; default 10 for certified methods, off otherwise)" });
        var dataParallel = new Option<string>("--data-parallel")
        {
            Description = "on: on the CPU, each thread trains a shard of the batch on its own replica of the model (stateless models, >= 32 examples per shard); off: the whole batch at once, each kernel spread over the threads",
            DefaultValueFactory = _ => "on",
        };
        dataParallel.AcceptOnlyFromAmong("on", "off");
        var microBatch = NonNegative(new Option<int?>("--micro-batch")
        {
            Description = "With --data-parallel on: examples per forward/backward pass inside a thread's shard (gradient accumulation, so activations stay in cache; 0 = whole shards; default 32)",
        });

        var cmd = new Command("train", "Train a model on Fashion-MNIST (standard, adversarial, noise or certified training); the last stdout line is {\"test_accuracy\":A,\"seconds\":S}")
        {
            model, method, eps, norm, epochs, batch, lr, optim, seed, data, output, device, limit, warmup, ramp, epsSchedule,
            kappaStart, kappaEnd, betaEnd, sabrLambda, alpha, pgdSteps, sigma, lrSchedule, lrDecayEpochs, lrDecay, gradClip, dataParallel,
            microBatch,
        };
        cmd.SetAction(EngineCli.Guard(p => Run(new Args(
            p.GetValue(model), p.GetValue(method)!, p.GetValue(eps), p.GetValue(norm)!, p.GetValue(epochs), p.GetValue(batch), p.GetValue(lr),
            p.GetValue(optim)!, p.GetValue(seed), p.GetValue(data), p.GetValue(output), p.GetValue(device)!, p.GetValue(limit),
            p.GetValue(warmup), p.GetValue(ramp), p.GetValue(epsSchedule)!, p.GetValue(kappaStart), p.GetValue(kappaEnd), p.GetValue(betaEnd), p.GetValue(sabrLambda),
            p.GetValue(alpha), p.GetValue(pgdSteps), p.GetValue(sigma), p.GetValue(lrSchedule), p.GetValue(lrDecayEpochs), p.GetValue(lrDecay),
            p.GetValue(gradClip), p.GetValue(dataParallel)!, p.GetValue(microBatch)))));
        return cmd;
    }

    private static Option<int?> Positive(Option<int?> o)
    {
        o.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError($"{o.Name} must be at least 1."); });
        return o;
    }

    private static Option<int?> NonNegative(Option<int?> o)
    {
        o.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 0) r.AddError($"{o.Name} must be >= 0."); });
        return o;
    }

    private static Option<float?> NonNegative(Option<float?> o)
    {
        o.Validators.Add(r => { if (r.GetValueOrDefault<float?>() is float v && !(v >= 0 && float.IsFinite(v))) r.AddError($"{o.Name} must be finite and >= 0, got {v.ToString(CultureInfo.InvariantCulture)}."); });
        return o;
    }

    private static Option<float?> Unit(Option<float?> o, bool closedBelow)
    {
        o.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<float?>() is not float v) return;
            bool ok = (closedBelow ? v >= 0 : v > 0) && v <= 1;
            if (!ok) r.AddError($"{o.Name} must be in {(closedBelow ? "[" : "(")}0, 1], got {v.ToString(CultureInfo.InvariantCulture)}.");
        });
        return o;
    }

    /// <summary>The library options from the command line, with the per-method CLI defaults; throws on combinations that make no sense.</summary>
    private static CertifiedTrainingOptions Options(Args a, TrainMethod m)
    {
        void Only(bool given, string option, bool applies, string methods)
        {
            if (given && !applies) throw new ArgumentException($"{option} applies to --method {methods} only, not {m.Name()}.");
        }
        if (m.UsesEps() && a.Eps is null) throw new ArgumentException($"--method {m.Name()} needs --eps (the training radius, e.g. --eps 0.1).");
        if (m.UsesEps() && a.Eps == 0) throw new ArgumentException($"--method {m.Name()} needs --eps > 0 (with eps 0 it is standard training).");
        Only(a.Eps != null, "--eps", m.UsesEps(), "pgd|ibp|crown-ibp|sabr|ccibp|mtlibp");
        Only(a.Norm != "inf", "--norm", m.UsesEps(), "pgd|ibp|crown-ibp|sabr|ccibp|mtlibp");
        if (m == TrainMethod.Noise && a.Sigma is null) throw new ArgumentException("--method noise needs --sigma (the noise level, e.g. --sigma 0.25).");
        Only(a.Sigma != null, "--sigma", m == TrainMethod.Noise, "noise");
        Only(a.SabrLambda != null, "--sabr-lambda", m == TrainMethod.Sabr, "sabr");
        Only(a.Alpha != null, "--alpha", m is TrainMethod.CcIbp or TrainMethod.MtlIbp, "ccibp|mtlibp");
        Only(a.BetaEnd != null, "--beta-end", m == TrainMethod.CrownIbp, "crown-ibp");
        Only(a.KappaStart != null, "--kappa-start", m.IsCertified(), "ibp|crown-ibp|sabr|ccibp|mtlibp");
        Only(a.KappaEnd != null, "--kappa-end", m.IsCertified(), "ibp|crown-ibp|sabr|ccibp|mtlibp");
        Only(a.PgdSteps != null, "--pgd-steps", m.UsesAttack(), "pgd|sabr|ccibp|mtlibp");
        Only(a.Optimizer != "adam", "--optimizer sgd", m == TrainMethod.Standard, "standard");
        var schedule = a.LrSchedule switch
        {
            null => (LrSchedule?)null,
            "cosine" => LrSchedule.Cosine,
            "step" => LrSchedule.Step,
            _ => LrSchedule.Constant,
        };
        bool step = (schedule ?? (m == TrainMethod.Standard ? LrSchedule.Cosine : LrSchedule.Step)) == LrSchedule.Step;
        Only(a.LrDecayEpochs != null || a.LrDecay != null, "--lr-decay-epochs / --lr-decay", step, "with --lr-schedule step");
        bool standard = m == TrainMethod.Standard;
        var o = new CertifiedTrainingOptions
        {
            Method = m,
            Eps = a.Eps ?? 0,
            Norm = a.Norm == "2" ? PerturbationNorm.L2 : PerturbationNorm.LInf,
            Epochs = a.Epochs ?? (standard ? 6 : 20),
            BatchSize = a.Batch ?? (standard ? 64 : 256),
            LearningRate = a.Lr ?? (standard ? 2e-3f : 5e-4f),
            WarmupEpochs = a.Warmup,
            RampEpochs = a.Ramp,
            EpsRamp = a.EpsSchedule == "smoothed" ? EpsRamp.Smoothed : EpsRamp.Linear,
            KappaStart = a.KappaStart ?? 1,
            KappaEnd = a.KappaEnd ?? 0,
            BetaEnd = a.BetaEnd ?? 0,
            SabrLambda = a.SabrLambda ?? 0.4f,
            Alpha = a.Alpha ?? 0.5f,
            PgdSteps = a.PgdSteps,
            Sigma = a.Sigma ?? 0,
            LrSchedule = schedule,
            LrDecayEpochs = a.LrDecayEpochs is { } list ? ParseEpochs(list) : null,
            LrDecayFactor = a.LrDecay ?? 0.1f,
            GradClipNorm = a.GradClip,
            Seed = a.Seed,
            DataParallel = a.DataParallel == "on",
            MicroBatch = a.MicroBatch ?? 32,
        };
        try { o.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException(e.Message.Replace("CertifiedTrainingOptions: ", "", StringComparison.Ordinal), e); }
        return o;
    }

    private static int[] ParseEpochs(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var r = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out r[i]))
                throw new ArgumentException($"--lr-decay-epochs must be comma-separated epoch counts, e.g. 15,18; '{parts[i]}' is not one.");
        return r;
    }

    // How the shards are cut into micro-batches, for the header line.
    private static string Pieces(CertifiedTrainingOptions o, int shards) =>
        DataParallel.Pieces(o.BatchSize / shards, o.MicroBatch) is int p && p > 1 ? $", each in {p} micro-batches" : "";

    private static string F(float v) => v.ToString("0.####", CultureInfo.InvariantCulture);

    private static int Run(Args a)
    {
        var clock = Stopwatch.StartNew();
        var m = TrainMethods.Parse(a.Method);
        var opts = Options(a, m);
        string modelName = a.Model ?? (m == TrainMethod.Standard ? "cnn" : "cnn-small");
        string outPath = a.Out ?? Path.Combine("out", modelName + ".safetensors");
        var dev = DeviceOption.Resolve(a.Device);
        bool fancy = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

        var (data, source) = Training.LoadData(a.Data);
        var train = data.Train;
        if (a.Limit is int n && n < train.Count)
        {
            train = new TensorDataset(train.Inputs.NarrowRows(0, n), train.Targets.NarrowRows(0, n));
            source += $" (first {n} training examples)";
        }
        Generator.ManualSeed(a.Seed);
        // Initialised on the CPU (the same weights for a seed on every device), then moved; the optimiser after the move.
        var model = ModelZoo.Create(modelName).To(dev);
        var loader = new DataLoader(train, opts.BatchSize, shuffle: true, seed: a.Seed);
        Optimizer optimizer = a.Optimizer == "sgd"
            ? new Sgd(model.Parameters(), opts.LearningRate, momentum: 0.9f)
            : new Adam(model.Parameters(), opts.LearningRate);
        var trainer = new CertifiedTrainer(model, opts, loader.Count, optimizer);

        Console.WriteLine($"train {modelName} ({model.ParameterCount():N0} parameters) on {source}: {train.Count} train / {data.Test.Count} test, " +
                          $"{opts.Epochs} epochs, batch {opts.BatchSize}, {a.Optimizer} lr {F(opts.LearningRate)} ({Describe(opts.ResolvedLrSchedule, opts)}), seed {a.Seed}, " +
                          (dev == Device.Cpu ? $"{CpuThreads.Count} threads" : $"on {dev.Name}") +
                          (opts.DataParallel && DataParallel.ShardsFor(model, opts.BatchSize, CpuThreads.Count) is int k && k > 1 ? $" (data parallel: {k} shards per batch{Pieces(opts, k)})" : ""));
        if (m != TrainMethod.Standard) Console.WriteLine($"method {Describe(opts)}");

        double testAccuracy = 0;
        void Epoch(int epoch, Action<StepResult>? onBatch)
        {
            var r = trainer.TrainEpoch(loader, onBatch);
            var (tc, tn) = Training.Evaluate(model, data.Test, device: dev);
            testAccuracy = (double)tc / tn;
            string line = string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,2}/{opts.Epochs}  ") + Status(opts, r.Last) +
                          string.Create(CultureInfo.InvariantCulture,
                              $"loss {r.Loss:0.0000}  {(r.TrainAccuracy is double ta ? $"train acc {100 * ta:0.00}%  " : "")}test acc {100 * testAccuracy:0.00}%  ({r.Seconds:0.0} s)");
            if (fancy) AnsiConsole.MarkupLine(Markup.Escape(line));
            else Console.WriteLine(line);
        }

        if (fancy)
        {
            AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    for (int e = 1; e <= opts.Epochs; e++)
                    {
                        var task = ctx.AddTask($"epoch {e}/{opts.Epochs}", maxValue: loader.Count);
                        double sum = 0;
                        int seen = 0;
                        Epoch(e, s =>
                        {
                            sum += (double)s.Loss * s.BatchSize;
                            seen += s.BatchSize;
                            task.Increment(1);
                            task.Description = $"epoch {e}/{opts.Epochs} " + Status(opts, s.Schedule) + string.Create(CultureInfo.InvariantCulture, $"loss {sum / seen:0.000}");
                        });
                        task.StopTask();
                    }
                });
        }
        else
        {
            for (int e = 1; e <= opts.Epochs; e++) Epoch(e, null);
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (dir != null) Directory.CreateDirectory(dir);
        var meta = new Dictionary<string, string>
        {
            ["model"] = modelName,
            ["dataset"] = a.Data is null ? "fashion-mnist-embedded" : "fashion-mnist",
            ["test_accuracy"] = testAccuracy.ToString("0.####", CultureInfo.InvariantCulture),
            ["method"] = m.Name(),
            ["epochs"] = opts.Epochs.ToString(CultureInfo.InvariantCulture),
        };
        if (m.UsesEps())
        {
            meta["eps"] = F(opts.Eps);
            meta["norm"] = opts.Norm == PerturbationNorm.L2 ? "2" : "inf";
        }
        if (m == TrainMethod.Noise) meta["sigma"] = F(opts.Sigma);
        if (m == TrainMethod.Sabr) meta["sabr_lambda"] = F(opts.SabrLambda);
        if (m is TrainMethod.CcIbp or TrainMethod.MtlIbp) meta["alpha"] = F(opts.Alpha);
        model.SaveWeights(outPath, meta);
        Console.WriteLine($"saved weights to {outPath}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"test_accuracy\":{testAccuracy:0.####},\"seconds\":{clock.Elapsed.TotalSeconds:0.##}}}"));
        return 0;
    }

    /// <summary>The schedule values a progress line shows for the method (eps, kappa, beta, sigma, lr), each followed by two spaces.</summary>
    private static string Status(CertifiedTrainingOptions o, ScheduleValues v)
    {
        var s = new System.Text.StringBuilder();
        if (o.Method.UsesEps()) s.Append(CultureInfo.InvariantCulture, $"eps {v.Eps:0.0000}  ");
        if (o.Method.IsCertified()) s.Append(CultureInfo.InvariantCulture, $"kappa {v.Kappa:0.000}  ");
        if (o.Method == TrainMethod.CrownIbp) s.Append(CultureInfo.InvariantCulture, $"beta {v.Beta:0.000}  ");
        if (o.Method == TrainMethod.Noise) s.Append(CultureInfo.InvariantCulture, $"sigma {v.Sigma:0.000}  ");
        if (o.Method != TrainMethod.Standard) s.Append(CultureInfo.InvariantCulture, $"lr {v.LearningRate:0.######}  ");
        return s.ToString();
    }

    private static string Describe(LrSchedule s, CertifiedTrainingOptions o) => s switch
    {
        LrSchedule.Cosine => "cosine",
        LrSchedule.Constant => "constant",
        _ => o.ResolvedLrDecayEpochs.Count == 0 ? "step, no decay" : $"x{F(o.LrDecayFactor)} after epoch {string.Join(", ", o.ResolvedLrDecayEpochs)}",
    };

    private static string Describe(CertifiedTrainingOptions o)
    {
        var parts = new List<string> { o.Method.Name() };
        if (o.Method.UsesEps()) parts.Add($"eps {F(o.Eps)} ({(o.Norm == PerturbationNorm.L2 ? "L2" : "Linf, clipped to [0, 1]")})");
        if (o.Method == TrainMethod.Noise) parts.Add($"sigma {F(o.Sigma)}");
        if (o.ResolvedWarmupEpochs + o.ResolvedRampEpochs > 0)
            parts.Add($"{o.ResolvedWarmupEpochs} warm-up + {o.ResolvedRampEpochs} ramp epochs ({(o.EpsRamp == EpsRamp.Smoothed ? "smoothed" : "linear")})");
        if (o.Method.IsCertified()) parts.Add($"kappa {F(o.KappaStart)} -> {F(o.KappaEnd)}");
        if (o.Method == TrainMethod.CrownIbp) parts.Add($"beta 1 -> {F(o.BetaEnd)}");
        if (o.Method == TrainMethod.Sabr) parts.Add($"lambda {F(o.SabrLambda)}");
        if (o.Method is TrainMethod.CcIbp or TrainMethod.MtlIbp) parts.Add($"alpha {F(o.Alpha)}");
        if (o.Method.UsesAttack()) parts.Add($"PGD {o.ResolvedPgdSteps} steps");
        if (o.ResolvedGradClipNorm > 0) parts.Add($"grad clip {F(o.ResolvedGradClipNorm)}");
        return string.Join(", ", parts);
    }
}
