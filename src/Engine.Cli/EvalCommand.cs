using System.CommandLine;
using System.Globalization;

namespace Engine.Cli;

/// <summary>`engine eval MODEL`: test accuracy of saved weights or an ONNX classifier.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("MODEL") { Description = "Weights saved by `engine train` (safetensors), or an .onnx classifier" };
        var model = new Option<string?>("--model") { Description = "Architecture (default: the one recorded in the file)" };
        model.AcceptOnlyFromAmong(ModelZoo.Names);
        var data = TrainCommand.DataOption();
        var device = DeviceOption.Create();
        var cmd = new Command("eval", "Print the test accuracy of saved weights or an ONNX classifier; the last stdout line is JSON") { file, model, data, device };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var dev = DeviceOption.Resolve(parse.GetValue(device)!);
            string path = parse.GetValue(file)!;
            var loaded = ModelFiles.Load(path, parse.GetValue(model));
            var (split, source) = Training.LoadData(parse.GetValue(data));
            var onDevice = dev == Tensors.Device.Cpu ? null : dev;
            var (correct, total) = loaded.Module is { } net
                ? Training.Evaluate(net.To(dev), split.Test, device: onDevice)
                : Training.Evaluate(loaded.Graph.To(dev), ModelFiles.Examples(split.Test, loaded.ExampleShape, null, path), device: onDevice);
            string name = loaded.Name;
            double acc = (double)correct / total;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} test accuracy {100 * acc:0.00}% ({correct}/{total}) on {source}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{{\"model\":\"{name}\",\"test_accuracy\":{acc:0.####},\"samples\":{total}}}"));
            return 0;
        }));
        return cmd;
    }
}
