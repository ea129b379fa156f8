# One entry point: ./build.ps1 build | test | bench [filter...] | run [engine args...] | publish [RID]
# (The second run of the CUDA tests on the CPU-emulated GPU, native/cuda-emu, is build.sh's: it needs g++ on x86-64 Linux.)
param([Parameter(Position = 0)][string]$Verb = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"
# `build --cpu-only` / `test --cpu-only` leave the CUDA backend (src/Engine.Cuda) out entirely.
$CpuOnly = $false
if ($Rest.Count -gt 0 -and $Rest[0] -eq "--cpu-only") { $CpuOnly = $true; $Rest = @($Rest | Select-Object -Skip 1) }
function Build-All([string[]]$Extra) {
  if ($CpuOnly) {
    # Every project except Engine.Cuda (the solution would build it anyway), with nothing referencing it.
    foreach ($p in @("tests/Engine.Tests/Engine.Tests.csproj", "benchmarks/Engine.Benchmarks/Engine.Benchmarks.csproj")) {
      dotnet build $p -c Release --nologo -v q -p:CpuOnly=true @Extra; if ($LASTEXITCODE -ne 0) { return $LASTEXITCODE }
    }
    return 0
  }
  dotnet build Engine.sln -c Release --nologo -v q @Extra
  return $LASTEXITCODE
}
switch ($Verb) {
  "build" { $rc = Build-All $Rest; exit $rc }
  "test" {
    $rc = Build-All @(); if ($rc -ne 0) { exit $rc }
    $results = Join-Path ([System.IO.Path]::GetTempPath()) ([System.Guid]::NewGuid().ToString())
    dotnet test tests/Engine.Tests/Engine.Tests.csproj -c Release --no-build --nologo --logger "console;verbosity=normal" `
      --logger "trx;LogFileName=results.trx" --results-directory $results @Rest
    $rc = $LASTEXITCODE
    # The plain summary line CI reads: "N passed, M failed, K skipped", from the TRX counters.
    $trx = Join-Path $results "results.trx"
    if (Test-Path $trx) {
      $c = ([xml](Get-Content $trx)).TestRun.ResultSummary.Counters
      $skipped = [int]$c.total - [int]$c.passed - [int]$c.failed
      Write-Output "$($c.passed) passed, $($c.failed) failed, $skipped skipped"
    } else { Write-Output "0 passed, 1 failed"; if ($rc -eq 0) { $rc = 1 } }
    Remove-Item -Recurse -Force $results -ErrorAction SilentlyContinue
    exit $rc
  }
  "bench" { dotnet run -c Release --project benchmarks/Engine.Benchmarks -- @Rest; exit $LASTEXITCODE }
  "run" {
    dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    $engine = "src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll"
    if ($Rest.Count -gt 0) { dotnet $engine @Rest; exit $LASTEXITCODE }
    # The main job (same as build.sh): IBP training of the small CNN on the embedded subset, then certify at Linf 0.1.
    dotnet $engine train --model cnn-small --method ibp --eps 0.1 --epochs 30 --batch 64 --lr 1e-3 --seed 0 --out out/main.safetensors
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    dotnet $engine certify out/main.safetensors --eps 0.1 --method crown; exit $LASTEXITCODE
  }
  "publish" {
    # NativeAOT, one self-contained file: out/engine-RID/engine[.exe] (default RID linux-x64); x64 code for x86-64-v3
    # (AVX2/FMA) unless $env:ENGINE_ISA says otherwise.
    $rid = if ($Rest.Count -gt 0) { $Rest[0] } else { "linux-x64" }
    $dir = "out/engine-$rid"
    $isa = @(); if ($rid -like "*-x64") { $isa = @("-p:IlcInstructionSet=$(if ($env:ENGINE_ISA) { $env:ENGINE_ISA } else { 'x86-64-v3' })") }
    if (Test-Path $dir) { Remove-Item -Recurse -Force $dir }
    dotnet publish src/Engine.Cli/Engine.Cli.csproj -c Release -r $rid -p:PublishAot=true @isa --nologo -v q -o $dir
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    $exe = if ($rid -like "win-*") { ".exe" } else { "" }
    Move-Item -Force "$dir/Engine.Cli$exe" "$dir/engine$exe"
    Remove-Item -Force "$dir/*.dbg", "$dir/*.pdb", "$dir/*.xml" -ErrorAction SilentlyContinue
    Get-ChildItem $dir; exit 0
  }
  default { Write-Error "usage: ./build.ps1 build|test [--cpu-only] [args...] | bench|run [args...] | publish [RID]"; exit 2 }
}
