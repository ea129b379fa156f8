using System.Globalization;

namespace Engine.Diagnostics;

/// <summary>
/// The outcome of one check of <see cref="KernelSelfTest"/>: one kernel (or one op of a kernel family, e.g.
/// "Unary/Exp"), or one end-to-end check ("E2E/MlpTrainStep").
/// </summary>
/// <param name="Name">The check's name: the <see cref="Tensors.IKernels"/> member, "/" and the op where the member takes one.</param>
/// <param name="Cases">Input cases (shapes, flags, layouts) that ran before the check finished or failed.</param>
/// <param name="MaxAbsError">Largest |device − reference| over every compared element (infinity for a NaN / infinity mismatch).</param>
/// <param name="MaxRelError">
/// Largest |device − reference| / max(|reference|, 1e-3 · max |reference of that output|): relative where values
/// are not tiny, so near-zero elements do not dominate.
/// </param>
/// <param name="Passed">True when every case matched within the check's tolerance and nothing threw.</param>
/// <param name="Message">Why it failed (the first mismatching element or the exception), or a note; null when there is nothing to say.</param>
public sealed record SelfTestResult(string Name, int Cases, double MaxAbsError, double MaxRelError, bool Passed, string? Message)
{
    /// <summary>Wall time of the check (device and reference together, with input generation and read-back).</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>One line: "ok   Unary/Exp  cases=12 maxabs=1.2e-07 maxrel=3.4e-07", then the message where there is one.</summary>
    public override string ToString()
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{(Passed ? "ok  " : "FAIL")} {Name,-28} cases={Cases,-3} maxabs={MaxAbsError:0.0e+00} maxrel={MaxRelError:0.0e+00}");
        return Message == null ? line : $"{line}  {Message}";
    }
}
