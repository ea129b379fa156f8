#if ENGINE_CUDA
using Engine.Cuda;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>
/// Every kernels/*.cu compiles under NVRTC for compute_80 and compute_90 (no GPU needed). The cases come from the
/// repository's kernels/ directory, so a new kernel file is checked without touching this test.
/// </summary>
public class KernelCompileTests
{
    private static readonly string[] Archs = ["compute_80", "compute_90"];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var file in CudaTestEnv.KernelFiles())
            foreach (var arch in Archs)
                yield return new TestCaseData(file, arch).SetName($"Compiles({file}.cu, {arch})");
    }

    [TestCaseSource(nameof(Cases))]
    public void Compiles(string module, string arch)
    {
        CudaTestEnv.RequireNvrtc();
        var c = KernelCompiler.Compile(module, arch, useCache: false);
        Assert.That(c.Ptx, Does.Contain($".target sm_{arch[8..]}"), "PTX for the requested architecture");
        Assert.That(c.KernelCount, Is.GreaterThan(0), $"{module}.cu defines no extern \"C\" __global__ kernel");
    }

    /// <summary>
    /// Every kernel the backend launches by a literal name (Launch / Launch1D with a module and a kernel name in the
    /// source of src/Engine.Cuda) is an entry of that module's PTX: a misspelt or missing kernel fails here, in CI,
    /// instead of on the first GPU that runs it.
    /// </summary>
    [Test]
    public void EveryLaunchedKernelNameIsAnEntryOfItsModule()
    {
        CudaTestEnv.RequireNvrtc();
        var launch = new System.Text.RegularExpressions.Regex(@"Launch(?:1D)?\(\s*(EwModule|""(\w+)"")\s*,\s*""(\w+)""");
        var ptx = new Dictionary<string, string>();
        int checkedCount = 0;
        foreach (var file in Directory.GetFiles(Path.Combine(CudaTestEnv.RepoRoot, "src", "Engine.Cuda"), "*.cs"))
            foreach (System.Text.RegularExpressions.Match m in launch.Matches(File.ReadAllText(file)))
            {
                string module = m.Groups[1].Value == "EwModule" ? "elementwise" : m.Groups[2].Value, kernel = m.Groups[3].Value;
                if (!ptx.TryGetValue(module, out var text)) ptx[module] = text = KernelCompiler.Compile(module, "compute_80", useCache: false).Ptx;
                Assert.That(text, Does.Contain($".entry {kernel}("), $"{Path.GetFileName(file)} launches {module}.cu's '{kernel}', which its PTX does not define");
                checkedCount++;
            }
        Assert.That(checkedCount, Is.GreaterThan(20), "the pattern should find the backend's literal launches");
    }

    /// <summary>
    /// The parameters the backend packs for each literal launch (the KernelParams calls between <c>new KernelParams()</c>
    /// and the launch, in order) match the kernel's PTX parameter list in number and type: a pointer is a 64-bit
    /// parameter, an int or float a 32-bit one of that kind, an int array (a geometry struct) a byte array. A swapped, missing or extra
    /// argument fails here, in CI, instead of corrupting memory on a GPU.
    /// </summary>
    [Test]
    public void EveryLiteralLaunchPacksItsKernelsParameters()
    {
        CudaTestEnv.RequireNvrtc();
        var launch = new System.Text.RegularExpressions.Regex(@"Launch(?:1D)?\(\s*(EwModule|""(\w+)"")\s*,\s*""(\w+)""");
        var made = new System.Text.RegularExpressions.Regex(@"var (\w+) = new KernelParams\(\);");
        var ptx = new Dictionary<string, string>();
        int checkedCount = 0;
        foreach (var file in Directory.GetFiles(Path.Combine(CudaTestEnv.RepoRoot, "src", "Engine.Cuda"), "*.cs"))
        {
            string text = File.ReadAllText(file);
            foreach (System.Text.RegularExpressions.Match m in launch.Matches(text))
            {
                string module = m.Groups[1].Value == "EwModule" ? "elementwise" : m.Groups[2].Value, kernel = m.Groups[3].Value;
                var decl = made.Matches(text[..m.Index]).LastOrDefault();
                Assert.That(decl, Is.Not.Null, $"{kernel}: no KernelParams before its launch");
                // ConvArgs / PoolArgs pack the geometry as one by-value int struct.
                string v = decl!.Groups[1].Value;
                var put = new System.Text.RegularExpressions.Regex($@"\b{v}\.(Pointer|Int|UInt|Long|ULong|Float|Double|Ints)\(|\b(?:ConvArgs|PoolArgs)\(ref {v}\b");
                // A block that ends in another launch and a return (a branch for another kernel) packs for that one only.
                string segment = System.Text.RegularExpressions.Regex.Replace(text[decl.Index..m.Index], @"\{[^{}]*Launch(?:1D)?\([^{}]*return;\s*\}", "");
                var packed = put.Matches(segment).Select(x => x.Groups[1].Success ? x.Groups[1].Value : "Ints").ToList();
                if (!ptx.TryGetValue(module, out var code)) ptx[module] = code = KernelCompiler.Compile(module, "compute_80", useCache: false).Ptx;
                var declared = EntryParameters(code, kernel);
                string where = $"{Path.GetFileName(file)}: {module}.{kernel} packs ({string.Join(", ", packed)}), its PTX declares ({string.Join(", ", declared)})";
                Assert.That(packed, Has.Count.EqualTo(declared.Count), where);
                for (int i = 0; i < packed.Count; i++)
                {
                    bool ok = packed[i] switch
                    {
                        "Pointer" or "Long" or "ULong" => declared[i] is "u64" or "s64" or "b64",
                        "Int" or "UInt" => declared[i] is "u32" or "s32" or "b32",
                        "Float" => declared[i] == "f32",
                        "Double" => declared[i] == "f64",
                        "Ints" => declared[i] == "b8[]",
                        _ => false,
                    };
                    Assert.That(ok, Is.True, $"parameter {i}: {where}");
                }
                checkedCount++;
            }
        }
        Assert.That(checkedCount, Is.GreaterThan(20), "the pattern should find the backend's literal launches");
    }

    /// <summary>The types of a PTX entry's parameters, in order ("u64", "f32", ... ; "b8[]" for a byte array).</summary>
    private static List<string> EntryParameters(string ptx, string kernel)
    {
        int at = ptx.IndexOf($".entry {kernel}(", StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"no entry {kernel}");
        int end = ptx.IndexOf(')', at);
        var p = new System.Text.RegularExpressions.Regex(@"\.param\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+\w+(\[\d+\])?");
        return p.Matches(ptx[at..end]).Select(x => x.Groups[1].Value + (x.Groups[2].Success ? "[]" : "")).ToList();
    }

    [Test]
    public void EveryKernelFileIsEmbedded()
    {
        Assert.That(KernelSources.Modules, Is.EqualTo(CudaTestEnv.KernelFiles()),
            "the assembly embeds exactly the repository's kernels/*.cu (rebuild Engine.Cuda after adding one)");
        var headers = Directory.GetFiles(Path.Combine(CudaTestEnv.RepoRoot, "kernels"), "*.cuh").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.That(KernelSources.Headers.Select(h => h.Name), Is.EqualTo(headers));
    }

    [Test]
    public void ACompileErrorNamesTheFileAndCarriesNvrtcsLog()
    {
        CudaTestEnv.RequireNvrtc();
        var ex = Assert.Throws<CudaException>(() => KernelCompiler.CompileSource("broken",
            "#include \"common.cuh\"\nextern \"C\" __global__ void k(float* y) { y[0] = undeclared_name; }\n", "compute_80"));
        Assert.That(ex!.Call, Does.StartWith("nvrtcCompileProgram(broken.cu"));
        Assert.That(ex.Error, Does.Contain("NVRTC_ERROR_COMPILATION").And.Contain("undeclared_name").And.Contain("broken.cu(2)"));
    }

    [Test]
    public void CompiledPtxIsCachedAndKeyedOnEveryInput()
    {
        CudaTestEnv.RequireNvrtc();
        var module = KernelSources.Modules[0];
        var first = KernelCompiler.Compile(module, "compute_80", useCache: false);
        var second = KernelCompiler.Compile(module, "compute_80");
        Assert.That(second.Ptx, Is.EqualTo(first.Ptx));
        if (KernelCompiler.CacheDirectory() != null) Assert.That(second.FromCache, "the compiled PTX was written to the cache and read back");

        (string, string)[] headers = [("common.cuh", "x")];
        string key = KernelCompiler.CacheKey("src", headers, ["-a"], "11.8", "compute_80");
        Assert.That(key, Has.Length.EqualTo(64));
        Assert.That(KernelCompiler.CacheKey("src", headers, ["-a"], "11.8", "compute_80"), Is.EqualTo(key), "deterministic");
        Assert.That(KernelCompiler.CacheKey("src2", headers, ["-a"], "11.8", "compute_80"), Is.Not.EqualTo(key), "source");
        Assert.That(KernelCompiler.CacheKey("src", [("common.cuh", "y")], ["-a"], "11.8", "compute_80"), Is.Not.EqualTo(key), "header text");
        Assert.That(KernelCompiler.CacheKey("src", headers, ["-b"], "11.8", "compute_80"), Is.Not.EqualTo(key), "options");
        Assert.That(KernelCompiler.CacheKey("src", headers, ["-a"], "12.0", "compute_80"), Is.Not.EqualTo(key), "NVRTC version");
        Assert.That(KernelCompiler.CacheKey("src", headers, ["-a"], "11.8", "compute_90"), Is.Not.EqualTo(key), "architecture");
        Assert.That(KernelCompiler.CacheKey("sr", [("ccommon.cuh", "x")], ["-a"], "11.8", "compute_80"), Is.Not.EqualTo(key), "field boundaries");
    }

    [Test]
    public void NoFastMathAndTheDeviceArchitectureIsClamped()
    {
        Assert.That(KernelCompiler.BaseOptions, Has.None.Contains("fast-math").And.None.Contains("fast_math").And.None.Contains("ftz"));
        CudaTestEnv.RequireNvrtc();
        Assert.That(KernelCompiler.ArchFor(8, 0), Is.EqualTo("compute_80"));
        Assert.That(KernelCompiler.ArchFor(9, 0), Is.EqualTo("compute_90"));
        int newest = Engine.Cuda.Native.Nvrtc.SupportedArchs().Max();
        Assert.That(KernelCompiler.ArchFor(99, 9), Is.EqualTo($"compute_{newest}"), "a device newer than NVRTC gets NVRTC's newest PTX (the driver JITs it forward)");
    }
}
#endif
