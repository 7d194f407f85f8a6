using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.Processes;
using Bench.Harness.Run;

namespace Bench.Harness.Tests;

/// <summary>Starting implementations the way the harness does, for tests.</summary>
public static class Processes
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static async Task<(ServerProcess Server, string Host, int Port)> StartServerAsync(Implementation impl, params string[] extra)
    {
        var server = await ServerProcess.StartAsync(impl, [.. ServerProcess.Loopback, .. extra], cpus: null, CancellationToken.None, Patience);
        var (host, port) = server.Ready.TcpEndpoint;
        return (server, host, port);
    }

    /// <summary>Runs a client to the end; returns its exit code, RESULT line (if any) and stderr.</summary>
    public static async Task<(int Exit, ResultLine? Result, string Stderr)> RunClientAsync(Implementation impl, int port, params string[] args)
    {
        await using var client = ManagedProcess.Start($"client {impl.Name}",
            [.. impl.ClientCommand!, "--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), .. args], impl.Folder);
        var exit = await client.Exited.WaitAsync(Patience);
        var line = client.StdoutLines.FirstOrDefault(ResultLine.Matches);
        return (exit, line is null ? null : ResultLine.Parse(line), client.StderrTail);
    }
}
