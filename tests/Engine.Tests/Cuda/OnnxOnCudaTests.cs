#if ENGINE_CUDA
using Engine.Tests.Onnx;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>
/// Imported ONNX graphs (every supported operator, the VNN-COMP samples) on the CUDA device, as `engine bounds |
/// certify | bench crown --model X.onnx --device cuda` run them: forward passes and every bound method within float
/// rounding of the CPU's, and the device's bounds sound at sampled points. Skipped without a GPU; `./build.sh test`
/// runs them on the emulated GPU (the real backend over kernels compiled for the CPU).
/// </summary>
[TestFixture]
public class OnnxOnCudaTests
{
    private static IEnumerable<string> Models() => OnnxDeviceCheck.Names();

    private static IEnumerable<string> BoundableModels() => OnnxDeviceCheck.BoundableNames();

    [TestCaseSource(nameof(Models))]
    public void ForwardFollowsTheCpu(string model) => OnnxDeviceCheck.Forward(OnnxDeviceCheck.Find(model), CudaTestEnv.RequireDevice(), relative: 1e-4);

    [TestCaseSource(nameof(BoundableModels))]
    public void BoundsFollowTheCpuAndAreSound(string model) => OnnxDeviceCheck.Bounds(OnnxDeviceCheck.Find(model), CudaTestEnv.RequireDevice(), relative: 1e-4);
}
#endif
