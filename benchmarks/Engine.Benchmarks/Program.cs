using BenchmarkDotNet.Running;

// ./build.sh bench [--filter *Gemm*] : every benchmark class in this assembly is selectable by filter.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
