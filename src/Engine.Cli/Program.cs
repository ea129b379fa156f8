using Engine.Cli;

return EngineCli.Build().Parse(args).Invoke();
