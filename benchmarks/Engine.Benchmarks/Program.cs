using BenchmarkDotNet.Running;
using Engine.Benchmarks;

// ./build.sh bench [--filter *Gemm*] : every benchmark class in this assembly is selectable by filter.
// --export-bound-nets DIR [--threads T] [--no-time]: the bound nets, inputs and Engine bounds for benchmarks/peers/crown_torch.py.
// --export-certified DIR [--threads T] [--images N]: the certified benchmarks' work for benchmarks/peers/certified_torch.py.
// --host-time [mlp|cnn] [--calls N]: a GPU host's own time in one CROWN call, on the emulated device (HostTimeProbe).
if (args.Length > 0 && args[0] == "--export-bound-nets")
    return BoundNetExport.Run(args[1..]);
if (args.Length > 0 && args[0] == "--export-certified")
    return CertifiedExport.Run(args[1..]);
if (args.Length > 0 && args[0] == "--host-time")
    return HostTimeProbe.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
