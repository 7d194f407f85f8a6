using System.Net.Sockets;
using Bench.CommandLine;
using GrpcBench;
using GrpcBench.Server;

if (CommandArguments.AsksForHelp(args))
{
    Console.Out.WriteLine(ServerSettings.Usage);
    return 0;
}
ServerSettings settings;
try
{
    settings = ServerSettings.Parse(args, Environment.GetEnvironmentVariable);
}
catch (UsageException e)
{
    // Only what the user got wrong lands here; anything else is a bug and crashes with its stack trace.
    return CommandArguments.ReportUsageError("csharp-grpc-server", e);
}

RunningServer server;
try
{
    server = await BenchServer.StartAsync(settings);
}
catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or InvalidOperationException)
{
    // Port in use, no such address, no VSOCK on this machine, no permission on the socket path.
    Console.Error.WriteLine($"csharp-grpc-server: cannot listen on {Describe(settings.Address)}: {e.Message}");
    return 1;
}

Console.Out.WriteLine(server.ReadyLine);
Console.Out.Flush();
Console.Error.WriteLine(
    $"csharp-grpc-server: {(settings.Defaults ? "Kestrel/grpc defaults" : "tuned")}, {settings.WorkerThreads} worker thread(s), " +
    $"max message {settings.MaxMessageBytes} bytes");

// SIGTERM and SIGINT stop the host (ConsoleLifetime); then the listener closes and we exit 0.
await server.App.WaitForShutdownAsync();
await server.DisposeAsync();
return 0;

static string Describe(ServerAddress endpoint) => endpoint switch
{
    ServerAddress.Tcp t => $"tcp {t.Host}:{t.Port}",
    ServerAddress.Unix u => $"unix {u.Path}",
    ServerAddress.Vsock v => $"vsock {v.Cid}:{v.Port}",
    _ => endpoint.ToString(),
};
