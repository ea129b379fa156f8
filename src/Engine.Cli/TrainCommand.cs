using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Cpu;
using Engine.Data;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>`engine train`: trains a zoo model on Fashion-MNIST and saves its weights.</summary>
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

    public static Command Create()
    {
        var model = ModelOption();
        var epochs = Positive(new Option<int>("--epochs") { Description = "Passes over the training set", DefaultValueFactory = _ => 6 });
        var batch = Positive(new Option<int>("--batch") { Description = "Mini-batch size", DefaultValueFactory = _ => 64 });
        var lr = new Option<float>("--lr") { Description = "Learning rate (peak of the cosine schedule)", DefaultValueFactory = _ => 2e-3f };
        lr.Validators.Add(r => { if (!(r.GetValueOrDefault<float>() > 0)) r.AddError("--lr must be positive."); });
        var optim = new Option<string>("--optimizer") { Description = "adam, or sgd (momentum 0.9)", DefaultValueFactory = _ => "adam" };
        optim.AcceptOnlyFromAmong("adam", "sgd");
        var seed = new Option<ulong>("--seed") { Description = "Seed for initialisation and shuffling", DefaultValueFactory = _ => 0 };
        var data = DataOption();
        var output = new Option<string?>("--out") { Description = "Where to save the weights (safetensors; default: out/MODEL.safetensors)" };
        var device = DeviceOption.Create();

        var cmd = new Command("train", "Train a model on Fashion-MNIST; the last stdout line is {\"test_accuracy\":A,\"seconds\":S}")
        {
            model, epochs, batch, lr, optim, seed, data, output, device,
        };
        cmd.SetAction(EngineCli.Guard(parse => Run(
            parse.GetValue(model)!, parse.GetValue(epochs), parse.GetValue(batch), parse.GetValue(lr), parse.GetValue(optim)!,
            parse.GetValue(seed), parse.GetValue(data), parse.GetValue(output), DeviceOption.Resolve(parse.GetValue(device)!))));
        return cmd;
    }

    private static Option<int> Positive(Option<int> o)
    {
        o.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError($"{o.Name} must be at least 1."); });
        return o;
    }

    private static int Run(string modelName, int epochs, int batch, float lr, string optimName, ulong seed, string? dataDir, string? outPath, Device device)
    {
        var clock = Stopwatch.StartNew();
        outPath ??= Path.Combine("out", modelName + ".safetensors");
        bool fancy = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

        var (data, source) = Training.LoadData(dataDir);
        Generator.ManualSeed(seed);
        // Initialised on the CPU (the same weights for a seed on every device), then moved; the optimiser after the move.
        var model = ModelZoo.Create(modelName).To(device);
        var loader = new DataLoader(data.Train, batch, shuffle: true, seed: seed);
        Optimizer optimizer = optimName == "sgd"
            ? new Sgd(model.Parameters(), lr, momentum: 0.9f)
            : new Adam(model.Parameters(), lr);
        // Cosine decay to zero over the whole run, stepped per batch: a fixed budget of epochs ends at a low learning rate.
        var schedule = new CosineAnnealingLR(optimizer, epochs * loader.Count);

        Console.WriteLine($"train {modelName} ({model.ParameterCount():N0} parameters) on {source}: {data.Train.Count} train / {data.Test.Count} test, " +
                          $"{epochs} epochs, batch {batch}, {optimName} lr {lr.ToString(CultureInfo.InvariantCulture)}, seed {seed}, " +
                          (device == Device.Cpu ? $"{CpuThreads.Count} threads" : $"on {device.Name}"));

        double testAccuracy = 0;
        void Epoch(int epoch, Action<double>? onBatch)
        {
            double lossSum = 0;
            int correct = 0, seen = 0;
            var t0 = Stopwatch.GetTimestamp();
            foreach (var (hostX, hostY) in loader)
            {
                var x = hostX.To(device);
                var y = hostY.To(device);
                var loss = Training.Step(model, optimizer, x, y, out var logits);
                schedule.Step();
                int b = y.Size(0);
                lossSum += loss * b;
                correct += Training.CountCorrect(logits, y);
                seen += b;
                onBatch?.Invoke(lossSum / seen);
            }
            var (tc, tn) = Training.Evaluate(model, data.Test, device: device);
            testAccuracy = (double)tc / tn;
            string line = string.Create(CultureInfo.InvariantCulture,
                $"epoch {epoch,2}/{epochs}  loss {lossSum / seen:0.0000}  train acc {100.0 * correct / seen:0.00}%  test acc {100 * testAccuracy:0.00}%  ({Stopwatch.GetElapsedTime(t0).TotalSeconds:0.0} s)");
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
                    for (int e = 1; e <= epochs; e++)
                    {
                        var task = ctx.AddTask($"epoch {e}/{epochs}", maxValue: loader.Count);
                        Epoch(e, loss =>
                        {
                            task.Increment(1);
                            task.Description = string.Create(CultureInfo.InvariantCulture, $"epoch {e}/{epochs} loss {loss:0.000}");
                        });
                        task.StopTask();
                    }
                });
        }
        else
        {
            for (int e = 1; e <= epochs; e++) Epoch(e, null);
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (dir != null) Directory.CreateDirectory(dir);
        model.SaveWeights(outPath, new Dictionary<string, string>
        {
            ["model"] = modelName,
            ["dataset"] = dataDir is null ? "fashion-mnist-embedded" : "fashion-mnist",
            ["test_accuracy"] = testAccuracy.ToString("0.####", CultureInfo.InvariantCulture),
        });
        Console.WriteLine($"saved weights to {outPath}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"test_accuracy\":{testAccuracy:0.####},\"seconds\":{clock.Elapsed.TotalSeconds:0.##}}}"));
        return 0;
    }
}
