using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Engine.Bounds;
using Engine.Onnx;
using Engine.Tensors;
using Engine.Verification;

namespace Engine.Cli;

/// <summary>`engine bounds`: output (or spec-row) bounds of an ONNX model over a norm ball, as one JSON object.</summary>
internal static class BoundsCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "ONNX model" };
        var input = new Option<string>("--input") { Description = "JSON file with a flat array: the centre, in the model's input order", Required = true };
        var eps = new Option<float>("--eps") { Description = "Radius of the ball", Required = true };
        var norm = new Option<string>("--norm") { Description = "inf or 2", DefaultValueFactory = _ => "inf" };
        var method = MethodOption("crown");
        var spec = new Option<string?>("--spec") { Description = "margins:LABEL: bound y_LABEL − y_j for every j ≠ LABEL" };
        var clip = new Option<string?>("--clip") { Description = "LO,HI: intersect the (inf-norm) ball with this input domain" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object {\"lower\":[...],\"upper\":[...]} (the only format)" };
        var device = DeviceOption.Create();
        norm.AcceptOnlyFromAmong("inf", "2");
        var cmd = new Command("bounds", "Bound a model's outputs over an L-inf or L2 ball (IBP, CROWN, CROWN-IBP, alpha-CROWN)")
        {
            model, input, eps, norm, method, spec, clip, json, device,
        };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var dev = DeviceOption.Resolve(parse.GetValue(device)!);
            var m = Load(parse.GetValue(model)!);
            var shape = Verifier.ExampleShape(m.Inputs[0].Shape);
            float[] x = ReadFlatArray(parse.GetValue(input)!);
            if (x.Length != ShapeUtil.Numel(shape))
                throw new ArgumentException($"--input has {x.Length} values but the model takes {ShapeUtil.Numel(shape)} ({ShapeUtil.Format(shape)}).");
            float e = parse.GetValue(eps);
            Perturbation p;
            if (parse.GetValue(norm) == "2")
            {
                if (parse.GetValue(clip) != null) throw new ArgumentException("--clip applies to --norm inf only.");
                p = Perturbation.L2(e);
            }
            else if (parse.GetValue(clip) is { } c)
            {
                var (lo, hi) = ParseClip(c);
                p = Perturbation.LInf(e, lo, hi);
            }
            else p = Perturbation.LInf(e);
            var xt = Tensor.FromArray(x, [1, .. shape]).To(dev);
            Spec? s = parse.GetValue(spec) is { } sp ? Margins(sp, m.Outputs[0].Numel, dev) : null;
            var r = Engine.Bounds.Bounds.Compute(m.Graph.To(dev), xt, p, ParseMethod(parse.GetValue(method)!), s);
            Console.WriteLine(Json(r.Lower.ToArray(), r.Upper.ToArray()));
            return 0;
        }));
        return cmd;
    }

    public static Option<string> MethodOption(string defaultMethod)
    {
        var o = new Option<string>("--method") { Description = "ibp, crown, crown-ibp or alpha-crown", DefaultValueFactory = _ => defaultMethod };
        o.AcceptOnlyFromAmong("ibp", "crown", "crown-ibp", "alpha-crown");
        return o;
    }

    public static BoundMethod ParseMethod(string s) => s switch
    {
        "ibp" => BoundMethod.Ibp,
        "crown" => BoundMethod.Crown,
        "crown-ibp" => BoundMethod.CrownIbp,
        "alpha-crown" => BoundMethod.AlphaCrown,
        _ => throw new ArgumentException($"unknown method '{s}' (ibp, crown, crown-ibp, alpha-crown)."),
    };

    public static OnnxModel Load(string path)
    {
        OnnxModel m;
        try { m = OnnxModel.Load(path); }
        catch (NotSupportedException e) { throw new InvalidDataException(e.Message, e); }
        if (m.Inputs.Count != 1 || m.Outputs.Count != 1)
            throw new InvalidDataException($"{path}: bounds need one input and one output, the model has {m.Inputs.Count} and {m.Outputs.Count}.");
        return m;
    }

    /// <summary>
    /// A JSON file holding one flat array of numbers, read with JsonDocument (reflection-free, so NativeAOT-safe).
    /// </summary>
    public static float[] ReadFlatArray(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"--input: not a flat JSON array of numbers (the top level is {root.ValueKind}).");
            var x = new float[root.GetArrayLength()];
            int i = 0;
            foreach (var v in root.EnumerateArray())
            {
                if (v.ValueKind != JsonValueKind.Number || !v.TryGetSingle(out x[i]) || !float.IsFinite(x[i]))
                    throw new InvalidDataException($"--input: not a flat JSON array of numbers (element {i} is {v.ValueKind} {v.GetRawText()}).");
                i++;
            }
            return x;
        }
        catch (JsonException je) { throw new InvalidDataException($"--input: not a flat JSON array of numbers ({je.Message})", je); }
    }

    private static Spec Margins(string text, int outputs, Device device)
    {
        const string prefix = "margins:";
        if (!text.StartsWith(prefix, StringComparison.Ordinal) || !int.TryParse(text.AsSpan(prefix.Length), CultureInfo.InvariantCulture, out int label))
            throw new ArgumentException($"--spec must be margins:LABEL, got '{text}'.");
        if (label < 0 || label >= outputs) throw new ArgumentException($"--spec label {label} is not in [0, {outputs}).");
        return new Spec(Spec.Margins([label], outputs).C.To(device));
    }

    private static (float, float) ParseClip(string text)
    {
        var p = text.Split(',');
        if (p.Length != 2 || !float.TryParse(p[0], NumberStyles.Float, CultureInfo.InvariantCulture, out float lo)
            || !float.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out float hi) || !(lo <= hi))
            throw new ArgumentException($"--clip must be LO,HI with LO <= HI, got '{text}'.");
        return (lo, hi);
    }

    private static string Json(float[] lower, float[] upper)
        => new StringBuilder().Append("{\"lower\":").Append(JsonArray(lower)).Append(",\"upper\":").Append(JsonArray(upper)).Append('}').ToString();

    /// <summary>A JSON array of the values, round-trip precision; infinities and NaN (not JSON numbers) as null.</summary>
    public static string JsonArray(float[] v)
        => "[" + string.Join(",", v.Select(f => float.IsFinite(f) ? f.ToString("R", CultureInfo.InvariantCulture) : "null")) + "]";
}
