using Engine.Cli;

#if ENGINE_CUDA
// Probes the driver (cheap, never throws): "cuda" devices resolve, or say why they cannot.
Engine.Cuda.CudaBackend.Register();
#endif
return EngineCli.Build().Parse(args).Invoke();
