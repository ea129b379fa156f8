#if ENGINE_CUDA
using Engine.Cuda;
using Engine.Cuda.Native;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

public class CudaBackendTests
{
    [Test]
    public void RegisterNeverThrowsAndGetSaysWhyCudaIsMissing()
    {
        bool ok = CudaBackend.Register();
        Assert.That(CudaBackend.Register(), Is.EqualTo(ok), "repeated calls give the first answer");
        if (ok)
        {
            Assert.That(Device.Get("cuda").Name, Is.EqualTo("cuda:0"));
            Assert.That(Device.Get("cuda:0"), Is.SameAs(Device.Get("cuda")), "one device instance per ordinal (tensors compare devices by reference)");
            var ex = Assert.Throws<InvalidOperationException>(() => Device.Get($"cuda:{CudaBackend.DeviceCount}"));
            Assert.That(ex!.Message, Does.Contain("does not exist"));
            Assert.That(CudaBackend.Describe(), Does.Contain("compute capability").And.Contain("driver CUDA"));
        }
        else
        {
            string reason = CudaBackend.UnavailableReason!;
            Assert.That(reason, Is.Not.Empty);
            var ex = Assert.Throws<InvalidOperationException>(() => Device.Get("cuda"));
            Assert.That(ex!.Message, Does.Contain("'cuda'").And.Contain(reason));
            Assert.That(CudaBackend.Describe(), Is.EqualTo($"not available: {reason}"));
            Assert.That(CudaBackend.DeviceCount, Is.Zero);
        }
    }

    [Test]
    public void LibrariesAreProbedExplicitDirectoryFirstNewestVersionFirst()
    {
        var env = new Dictionary<string, string?> { ["ENGINE_CUDA_LIB"] = "/opt/a: /opt/b", ["CUDA_HOME"] = "/h" };
        var nvrtc = NativeLibraries.Candidates(CudaLibrary.Nvrtc, k => env.GetValueOrDefault(k));
        string[] names = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"];
        string[] dirs = ["/opt/a", "/opt/b", "/h/lib64", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"];
        Assert.That(nvrtc, Is.EqualTo(dirs.SelectMany(d => names.Select(n => $"{d}/{n}")).Concat(names)));

        var cublas = NativeLibraries.Candidates(CudaLibrary.Cublas, _ => null);
        Assert.That(cublas.Take(4), Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so" }.Select(n => $"/usr/local/cuda/lib64/{n}")));
        Assert.That(cublas.TakeLast(4), Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so" }));

        // The driver must match the kernel module: never from a toolkit directory.
        var driver = NativeLibraries.Candidates(CudaLibrary.Driver, k => env.GetValueOrDefault(k));
        Assert.That(driver, Is.EqualTo(new[] { "/opt/a/libcuda.so.1", "/opt/a/libcuda.so", "/opt/b/libcuda.so.1", "/opt/b/libcuda.so", "libcuda.so.1", "libcuda.so" }));

        env["ENGINE_CUDA_LIB_STRICT"] = "1";
        var strict = NativeLibraries.Candidates(CudaLibrary.Nvrtc, k => env.GetValueOrDefault(k));
        Assert.That(strict, Is.EqualTo(new[] { "/opt/a", "/opt/b" }.SelectMany(d => names.Select(n => $"{d}/{n}"))), "strict: only ENGINE_CUDA_LIB");
    }

    [Test]
    public void ErrorsNameTheCallAndTheLibrarysError()
    {
        var e = new CudaException("cuMemAlloc_v2(4096 bytes)", "CUDA_ERROR_OUT_OF_MEMORY (out of memory)", 2);
        Assert.That(e.Message, Is.EqualTo("cuMemAlloc_v2(4096 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"));
        Assert.That(e, Is.InstanceOf<InvalidOperationException>());
        Assert.That(Cublas.Describe(7), Does.StartWith("CUBLAS_STATUS_INVALID_VALUE"));
        Assert.That(Cublas.Describe(99), Is.EqualTo("cublasStatus_t 99"));
        CudaTestEnv.RequireNvrtc();
        Assert.That(Nvrtc.Describe(6), Is.EqualTo("NVRTC_ERROR_COMPILATION"));
        Assert.That(Nvrtc.VersionString(), Does.Match(@"^\d+\.\d+$"));
    }
}
#endif
