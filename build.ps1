# One entry point: ./build.ps1 build | test | bench [filter...] | run [engine args...]
param([Parameter(Position = 0)][string]$Verb = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"
switch ($Verb) {
  "build" { dotnet build Engine.sln -c Release --nologo -v q @Rest; exit $LASTEXITCODE }
  "test" {
    dotnet build Engine.sln -c Release --nologo -v q; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    $out = dotnet test tests/Engine.Tests/Engine.Tests.csproj -c Release --no-build --nologo --logger "console;verbosity=normal" @Rest 2>&1
    $rc = $LASTEXITCODE
    $out | Write-Output
    $m = $out | Select-String -Pattern 'Failed: +(\d+), +Passed: +(\d+), +Skipped: +(\d+)' | Select-Object -Last 1
    if ($m) { $g = $m.Matches[0].Groups; Write-Output "$($g[2].Value) passed, $($g[1].Value) failed, $($g[3].Value) skipped" }
    else { Write-Output "0 passed, 1 failed"; if ($rc -eq 0) { $rc = 1 } }
    exit $rc
  }
  "bench" { dotnet run -c Release --project benchmarks/Engine.Benchmarks -- @Rest; exit $LASTEXITCODE }
  "run" {
    dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    if ($Rest.Count -eq 0) { $Rest = @("train", "--model", "cnn") }
    dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll @Rest; exit $LASTEXITCODE
  }
  default { Write-Error "usage: ./build.ps1 build|test|bench|run [args...]"; exit 2 }
}
