# One entry point: ./build.ps1 build | test | bench [filter...] | run [engine args...]
param([Parameter(Position = 0)][string]$Verb = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"
switch ($Verb) {
  "build" { dotnet build Engine.sln -c Release --nologo -v q @Rest; exit $LASTEXITCODE }
  "test" {
    dotnet build Engine.sln -c Release --nologo -v q; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
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
  "run" {
    dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    if ($Rest.Count -eq 0) { $Rest = @("train", "--model", "cnn") }
    dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll @Rest; exit $LASTEXITCODE
  }
  default { Write-Error "usage: ./build.ps1 build|test|bench|run [args...]"; exit 2 }
}
