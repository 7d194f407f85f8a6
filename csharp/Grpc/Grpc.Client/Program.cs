using Bench.CommandLine;
using GrpcBench.Client;

if (CommandArguments.AsksForHelp(args))
{
    Console.Out.WriteLine(ClientSettings.Usage);
    return 0;
}
ClientSettings settings;
try
{
    settings = ClientSettings.Parse(args, Environment.GetEnvironmentVariable);
}
catch (UsageException e)
{
    // Only what the user got wrong lands here; anything else is a bug and crashes with its stack trace.
    return CommandArguments.ReportUsageError("csharp-grpc-client", e);
}

FileLimit.RaiseTo(settings.InFlight + settings.Connections + 1024, "csharp-grpc-client");
// The lean engine's reader completes calls inline and sends what they wrote at the end of its
// batch; with socket completions run on the epoll thread too, a batch of answers becomes a batch
// of requests on one thread, as in h2load's event loop. By hand against cpp-grpc, go-grpc and
// rust-h2 it cut the client's CPU per call by 15-35%. Read once, before the first socket.
if (settings.Engine == EngineKind.Lean) Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
using var interrupt = new CancellationTokenSource();
var bench = new Workbench(settings);
await using ILoadEngine engine = settings.Engine == EngineKind.Lean ? new LeanEngine(bench) : new GrpcNetEngine(bench);

try
{
    using var connectDeadline = CancellationTokenSource.CreateLinkedTokenSource(interrupt.Token);
    connectDeadline.CancelAfter(settings.Timeout);
    await engine.StartAsync(connectDeadline.Token);
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    // Nothing could be sent: every call that would have run counts as failed.
    Console.Error.WriteLine($"csharp-grpc-client: cannot reach the server at {settings.Describe()}: {e.Message}");
    Console.Out.WriteLine($"RESULT ok=0 failed={settings.InFlight} wall_ns=0 bytes=0 conn_min=0 conn_max=0");
    return 1;
}

if (engine is LeanEngine lean) settings = settings with { Connections = lean.Connections }; // as opened, for the report
var run = await new LoadRunner(settings, engine).RunAsync(interrupt.Token);
if (engine is LeanEngine { Reconnects: > 0 } reconnected)
    Console.Error.WriteLine($"csharp-grpc-client: {reconnected.Reconnects} new connection(s) replaced ones the server sent GOAWAY on or that were lost");
if (settings.SamplesPath is { } path) Report.WriteSamples(path, run);
Report.Write(settings, run, Console.Out);
return run.Failed == 0 ? 0 : 1;
