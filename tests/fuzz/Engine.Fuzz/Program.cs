using Engine.Onnx;
using SharpFuzz;

namespace Engine.Fuzz;

/// <summary>
/// AFL++ / SharpFuzz harness. <c>Engine.Fuzz onnx|vnnlib</c> runs the fork server (input on stdin, as afl-fuzz
/// gives it); <c>Engine.Fuzz onnx|vnnlib FILE...</c> replays files without AFL and prints each outcome.
/// The exceptions the parsers document for bad input are expected; anything else escapes and is a crash.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Targets.TryGetValue(args[0], out var target))
        {
            Console.Error.WriteLine("usage: Engine.Fuzz onnx|vnnlib [FILE...]");
            return 2;
        }
        if (args.Length > 1)
            return Replay(target, args[1..]);
        Fuzzer.OutOfProcess.Run(stream => Guard(target, stream));
        return 0;
    }

    private static readonly Dictionary<string, Action<Stream>> Targets = new()
    {
        ["onnx"] = stream =>
        {
            var bytes = new MemoryStream();
            stream.CopyTo(bytes);
            OnnxModel.Load(bytes.ToArray());
        },
        ["vnnlib"] = stream =>
        {
            using var reader = new StreamReader(stream, leaveOpen: true);
            Vnnlib.Parse(reader, sourceName: "fuzz");
        },
    };

    /// <summary>Runs the target, swallowing only the documented "bad input" exceptions.</summary>
    private static void Guard(Action<Stream> target, Stream stream)
    {
        try { target(stream); }
        catch (InvalidDataException) { }   // OnnxModel.Load: not a valid ONNX model
        catch (NotSupportedException) { }  // both: valid input using something unsupported
        catch (FormatException) { }        // Vnnlib.Parse: VnnlibFormatException (a FormatException)
    }

    private static int Replay(Action<Stream> target, string[] files)
    {
        int failures = 0;
        foreach (var file in files)
        {
            using var stream = File.OpenRead(file);
            try { target(stream); Console.WriteLine($"{file}: ok"); }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException or FormatException)
            {
                Console.WriteLine($"{file}: expected {e.GetType().Name}: {e.Message}");
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"{file}: CRASH {e}");
            }
        }
        return failures == 0 ? 0 : 1;
    }
}
