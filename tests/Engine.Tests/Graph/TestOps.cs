using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Tests.Graph;

/// <summary>y[n, f] = x[n, f] * w[f], written with spans so graph tests need no other tensor ops.</summary>
internal sealed class ColumnScaleOp : Op
{
    public override string Type => "ColumnScale";
    public override int MinInputs => 2;

    public static int Calls;

    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        Calls++;
        var (x, w) = (inputs[0], inputs[1]);
        int f = w.Numel, n = x.Numel / f;
        var xs = x.ToArray(); var ws = w.ToArray(); var y = new float[xs.Length];
        for (int i = 0; i < n; i++) for (int j = 0; j < f; j++) y[i * f + j] = xs[i * f + j] * ws[j];
        return GradRecorder.Record(Tensor.FromArray(y, x.Shape), x, w, (g, xx, ww) =>
        {
            var gs = g.ToArray(); var xv = xx.ToArray(); var wv = ww.ToArray();
            var gx = new float[gs.Length]; var gw = new float[f];
            for (int i = 0; i < n; i++) for (int j = 0; j < f; j++) { gx[i * f + j] = gs[i * f + j] * wv[j]; gw[j] += gs[i * f + j] * xv[i * f + j]; }
            return [Tensor.FromArray(gx, xx.Shape), Tensor.FromArray(gw, ww.Shape)];
        });
    }
}

/// <summary>Counts training-mode calls, to check the context reaches ops.</summary>
internal sealed class ModeProbeOp : Op
{
    public override string Type => "ModeProbe";
    public bool? LastTraining;
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { LastTraining = ctx.Training; return inputs[0]; }
}

/// <summary>A module with one parameter using <see cref="ColumnScaleOp"/>.</summary>
internal sealed class ColumnScale : Module
{
    public ColumnScale(int features, float init = 1f)
    {
        Weight = RegisterParameter("weight", Tensor.Full([features], init));
        RegisterBuffer("calls", Tensor.Zeros(1));
    }

    public Tensor Weight { get; }
    public ModeProbeOp Probe { get; } = new();

    public override Value Build(GraphBuilder builder, Value input)
        => builder.Apply(Probe, builder.Apply(new ColumnScaleOp(), input, builder.Parameter("weight", Weight)));
}
