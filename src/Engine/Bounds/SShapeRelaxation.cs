using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Sound linear relaxations of an S-shaped activation f (sigmoid, tanh): increasing, convex for x &lt; 0, concave
/// for x &gt; 0, and point-symmetric about (0, f(0)): f(−x) = 2 f(0) − f(x).
/// Upper line on [l, u]:
/// u ≤ 0 (convex): the chord. l ≥ 0 (concave): the tangent at the midpoint.
/// l &lt; 0 &lt; u: the chord when its slope k ≤ f'(u) (then f' ≥ k on an interval that reaches u, so chord − f first
/// grows then falls back to 0 at u); otherwise the tangent at the d ∈ (0, u) whose tangent passes through (l, f(l)):
/// above f on [0, ∞) by concavity, and on [l, 0] because there (tangent − f) is concave and ≥ 0 at both ends.
/// d is found by bisection keeping the end where the tangent is at or above f(l), so an inexact d stays sound.
/// The lower line is the reflected upper line of [−u, −l]. Nearly point intervals (width &lt; 1e-4) get the constant
/// lines f(l), f(u) (a chord there is all cancellation). Every line is moved outward by a few float32 ulps of its
/// values, for the rounding of f and of the line's evaluation.
/// </summary>
internal static class SShapeRelaxation
{
    private const int BisectionSteps = 30;
    private const float NarrowWidth = 1e-4f;

    /// <summary>f and f' as tensor functions, and f(0).</summary>
    public sealed record Function(Func<Tensor, Tensor> F, Func<Tensor, Tensor> Derivative, float AtZero, float MaxSlope);

    public static readonly Function Sigmoid = new(x => x.Sigmoid(), x => { var s = x.Sigmoid(); return s * (1f - s); }, 0.5f, 0.25f);

    public static readonly Function Tanh = new(x => x.Tanh(), x => { var t = x.Tanh(); return 1f - t * t; }, 0f, 1f);

    /// <summary>Absolute slack for rounding of f (a few ulps of values of magnitude ≤ 1).</summary>
    public const float Slack = 4e-6f;

    /// <summary>Lower and upper lines (slope, intercept) on [l, u], element-wise.</summary>
    public static (Tensor AL, Tensor BL, Tensor AU, Tensor BU) Relax(Function f, Tensor l, Tensor u)
    {
        var (aU, bU) = Upper(f, l, u);
        var (aR, bR) = Upper(f, -u, -l);
        // f(x) = 2 f(0) − f(−x) ≥ 2 f(0) − (aR·(−x) + bR) = aR·x + (2 f(0) − bR).
        return (aR, (2f * f.AtZero) - bR, aU, bU);
    }

    private static (Tensor A, Tensor B) Upper(Function f, Tensor l, Tensor u)
    {
        var fl = f.F(l);
        var fu = f.F(u);
        var width = u - l;
        var narrow = Tensor.Lt(width, NarrowWidth);
        var safeWidth = Tensor.Where(narrow, 1f, width);
        var k = (fu - fl) / safeWidth;

        var mid = (l + u) * 0.5f;
        var dMid = f.Derivative(mid);
        var bMid = f.F(mid) - dMid * mid;

        var crossing = Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
        var chordOk = Tensor.Le(k, f.Derivative(u));
        var useChord = Tensor.Le(u, 0f) + crossing * chordOk; // disjoint cases, so the sum is a 0/1 mask
        var useTangentD = crossing * (1f - chordOk);

        Tensor d;
        using (new NoGrad())
        {
            var ld = l.Detach();
            var fld = fl.Detach();
            var lo = Tensor.ZerosLike(ld);
            var hi = u.Detach().Clamp(0f, null);
            for (int i = 0; i < BisectionSteps; i++)
            {
                var m = (lo + hi) * 0.5f;
                var phi = f.F(m) + f.Derivative(m) * (ld - m) - fld;
                var above = Tensor.Ge(phi, 0f);
                hi = Tensor.Where(above, m, hi);
                lo = Tensor.Where(above, lo, m);
            }
            d = hi;
        }
        var dD = f.Derivative(d);
        var bD = f.F(d) - dD * d;

        var a = Tensor.Where(useChord, k, Tensor.Where(useTangentD, dD, dMid));
        var b = Tensor.Where(useChord, fl - k * l, Tensor.Where(useTangentD, bD, bMid));
        a = Tensor.Where(narrow, 0f, a);
        b = Tensor.Where(narrow, fu, b);
        // Rounding slack: the line's value a·x + b at |x| ≤ max(|l|, |u|) and f itself are each off by a few ulps.
        var reach = Tensor.Maximum(l.Detach().Abs(), u.Detach().Abs());
        b = b + (a.Detach().Abs() * reach * 1e-6f + Slack);
        return (a, b);
    }
}
