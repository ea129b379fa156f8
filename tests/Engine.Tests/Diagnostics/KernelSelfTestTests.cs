using System.Reflection;
using Engine.Diagnostics;
using Engine.Tensors;
using Engine.Tests.Devices;
using NUnit.Framework;

namespace Engine.Tests.Diagnostics;

/// <summary>
/// The self-test harness itself: it covers every kernel, passes on a correct non-CPU device (the emulated one, whose
/// kernels are the CPU's behind a storage of its own), and reports exactly the op with a planted bug.
/// </summary>
[TestFixture]
public class KernelSelfTestTests
{
    private static string Report(IEnumerable<SelfTestResult> results) => string.Join("\n", results.Select(r => r.ToString()));

    [Test]
    public void EveryIKernelsMemberHasACheck()
    {
        var names = new KernelSelfTest(EmulatedDevice.Instance).CheckNames;
        var members = typeof(IKernels).GetMethods(BindingFlags.Public | BindingFlags.Instance).Select(m => m.Name).Distinct().ToArray();
        Assert.That(members, Has.Length.EqualTo(53), "IKernels changed: add a check for the new member");
        foreach (var m in members)
            Assert.That(names.Any(n => n == m || n.StartsWith(m + "/", StringComparison.Ordinal)), $"no self-test check for IKernels.{m}");
        foreach (var op in Enum.GetValues<UnaryOp>()) Assert.That(names, Does.Contain($"Unary/{op}").And.Contain($"UnaryBackward/{op}"));
        foreach (var op in Enum.GetValues<BinaryOp>()) Assert.That(names, Does.Contain($"Binary/{op}"));
        foreach (var op in Enum.GetValues<ReduceOp>()) Assert.That(names, Does.Contain($"Reduce/{op}"));
        Assert.That(names, Has.Some.StartsWith("E2E/Bounds/"));
        Assert.That(names.Distinct().Count(), Is.EqualTo(names.Count), "check names must be unique");
    }

    private static bool IsKernel(string name) => !name.StartsWith("E2E/", StringComparison.Ordinal);

    [Test]
    public void EveryKernelCheckPassesOnTheEmulatedDevice()
    {
        var results = new KernelSelfTest(EmulatedDevice.Instance).Run(IsKernel).ToList();
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.That(failed, Is.Empty, Report(failed));
        Assert.That(results.All(r => r.Cases > 0), Report(results.Where(r => r.Cases == 0)));
        // The emulated device runs the CPU kernels: kernel results must be identical, not merely close.
        var inexact = results.Where(r => r.MaxAbsError != 0).ToList();
        Assert.That(inexact, Is.Empty, Report(inexact));
    }

    // CROWN / alpha-CROWN on the CNN are the slow ones; EmulatedDeviceTests compares every bound method bit for bit.
    [TestCase("E2E/MlpTrainStep")]
    [TestCase("E2E/CnnTrainStep")]
    [TestCase("E2E/Bounds/Ibp")]
    [TestCase("E2E/Bounds/CrownIbp")]
    [TestCase("E2E/CertifiedTrainStep")]
    [TestCase("E2E/Pgd")]
    public void EndToEndCheckPassesOnTheEmulatedDevice(string name)
    {
        var r = new KernelSelfTest(EmulatedDevice.Instance).Run(n => n == name).Single();
        Assert.That(r.Passed, Is.True, r.ToString());
        Assert.That(r.Cases, Is.GreaterThan(1));
    }

    [Test]
    public void EveryCpuKernelMatchesTheScalarReference()
    {
        var test = new KernelSelfTest(Device.Cpu);
        Assert.That(test.ReferenceName, Does.Contain("scalar reference"));
        var results = test.Run(IsKernel).ToList();
        var failed = results.Where(r => !r.Passed).ToList();
        Assert.That(failed, Is.Empty, Report(failed));
        // Transcendentals and sums are not bit-exact against double-precision references: the comparison is real.
        Assert.That(results.Single(r => r.Name == "Gemm").MaxAbsError, Is.GreaterThan(0));
    }

    [TestCase(Fault.ExpOffByOnePerMille, "Unary", new[] { "Unary/Exp" })]
    [TestCase(Fault.GemmIgnoresBeta, "Gemm", new[] { "Gemm" })]
    [TestCase(Fault.FillOverruns, "Fill", new[] { "Fill" })]
    [TestCase(Fault.CopyIgnoresOffset, "Copy", new[] { "Copy" })]
    [TestCase(Fault.BinaryBroadcastWrong, "Binary/", new[] { "Binary/Add", "Binary/Sub", "Binary/Mul", "Binary/Div", "Binary/Maximum", "Binary/Minimum", "Binary/Gt", "Binary/Ge", "Binary/Lt", "Binary/Le", "Binary/Eq", "Binary/Ne" })]
    [TestCase(Fault.ReduceDropsLast, "Reduce/", new[] { "Reduce/Sum", "Reduce/Mean", "Reduce/Max", "Reduce/Min", "Reduce/LogSumExp" })]
    public void APlantedBugFailsExactlyItsOp(Fault fault, string filter, string[] expectFailed)
    {
        var results = new KernelSelfTest(FaultyKernels.Device(fault)).Run(filter).ToList();
        Assert.That(results.Count, Is.GreaterThan(expectFailed.Length - 1));
        var failed = results.Where(r => !r.Passed).Select(r => r.Name).ToArray();
        Assert.That(failed, Is.EquivalentTo(expectFailed), Report(results));
        foreach (var r in results.Where(r => !r.Passed))
        {
            Assert.That(r.Message, Is.Not.Null.And.Not.Empty);
            Assert.That(r.ToString(), Does.StartWith("FAIL"));
        }
    }

    [Test]
    public void AnExceptionInOneOpIsReportedAndTheOthersStillRun()
    {
        // Copy with a buffer of the wrong device throws inside the emulated kernels; Fill must still run and pass.
        var results = new KernelSelfTest(new EmulatedDevice("emu-throwing", new ThrowingCopyKernels())).Run("Fill").Concat(
                      new KernelSelfTest(new EmulatedDevice("emu-throwing", new ThrowingCopyKernels())).Run("Copy")).ToList();
        var copy = results.Single(r => r.Name == "Copy");
        Assert.That(copy.Passed, Is.False);
        Assert.That(copy.Message, Does.Contain("NotSupportedException").And.Contain("planted"));
        Assert.That(results.Single(r => r.Name == "Fill").Passed, Is.True);
    }

    [Test]
    public void ADeviceThatStopsWorkingIsReportedOnceNotAsEveryLaterOp()
    {
        var names = new KernelSelfTest(EmulatedDevice.Instance).CheckNames.ToList();
        int at = names.IndexOf("Permute");
        var results = new KernelSelfTest(FaultyKernels.Device(Fault.PermuteCrashesDevice)).Run(n => names.IndexOf(n) >= at - 3 && names.IndexOf(n) <= at + 3).ToList();
        Assert.That(results.Take(3).All(r => r.Passed), Report(results));
        Assert.That(results[3].Name, Is.EqualTo("Permute"));
        Assert.That(results[3].Message, Does.Contain("illegal memory access"));
        foreach (var r in results.Skip(4))
        {
            Assert.That(r.Passed, Is.False);
            Assert.That(r.Message, Does.StartWith("not run: the device stopped working after Permute").And.Contain("sticky"));
        }
    }

    private sealed class ThrowingCopyKernels : EmulatedKernels
    {
        public override void Copy(Buf src, Buf dst, int n) => throw new NotSupportedException("planted failure");
    }

    [Test]
    public void InputsAreDeterministicForASeed()
    {
        var a = new KernelSelfTest(Device.Cpu, 5).Run("Reduce/Sum").Single();
        var b = new KernelSelfTest(Device.Cpu, 5).Run("Reduce/Sum").Single();
        Assert.That(a with { Elapsed = default }, Is.EqualTo(b with { Elapsed = default }));
        Assert.That(a.Passed, Is.True, a.ToString());
    }

    [Test]
    public void MemoryStaysFlatOnTheEmulatedDevice()
    {
        var lines = new List<string>();
        var r = MemoryCheck.Run(new EmulatedDevice("emu-memory"), 150, lines.Add);
        Assert.That(r.Passed, Is.True, r.ToString());
        Assert.That(lines, Has.Count.EqualTo(2));
        Assert.That(lines[0], Does.StartWith("step 100: allocated"));
    }

    [Test]
    public void MemoryCheckFailsWhenStoragesLeak()
    {
        var r = MemoryCheck.Run(new EmulatedDevice("emu-leaky") { Leaks = true }, 120);
        Assert.That(r.Passed, Is.False, r.ToString());
        Assert.That(r.Message, Does.Contain("grew"));
    }
}
