using Engine.Tests.Onnx;
using NUnit.Framework;

namespace Engine.Tests.Devices;

/// <summary>
/// Imported ONNX graphs (every supported operator, the VNN-COMP samples) on the emulated device: the forward pass
/// bit for bit the CPU's and every bound method the CPU's (the same kernels run; the CPU's fast chain path for
/// sequential graphs is not taken on a device, so bounds agree to rounding), sound at sampled points. Code that
/// assumes CPU storage or mixes devices throws here.
/// </summary>
[TestFixture]
public class OnnxOnDeviceTests
{
    [OneTimeSetUp]
    public void Setup() => EmulatedDevice.Register();

    private static IEnumerable<string> Models() => OnnxDeviceCheck.Names();

    [TestCaseSource(nameof(Models))]
    public void ForwardIsTheCpus(string model) => OnnxDeviceCheck.Forward(OnnxDeviceCheck.Find(model), EmulatedDevice.Instance, relative: 0);

    private static IEnumerable<string> BoundableModels() => OnnxDeviceCheck.BoundableNames();

    [TestCaseSource(nameof(BoundableModels))]
    public void BoundsAreTheCpus(string model) => OnnxDeviceCheck.Bounds(OnnxDeviceCheck.Find(model), EmulatedDevice.Instance, relative: 1e-5);
}
