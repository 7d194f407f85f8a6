using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Machine;
using Bench.Harness.Processes;
using Bench.Harness.Workloads;

namespace Bench.Harness.Torture;

/// <summary>`torture NAME`: start one server, throw every rude peer at it, print a table.</summary>
public static class TortureCommand
{
    public static async Task<(IReadOnlyList<CaseResult> Cases, long RssBeforeKb, long RssAfterKb)> RunAsync(
        Implementation impl, int idleConnections, CancellationToken cancel)
    {
        if (!impl.HasServer || !EchoWorkload.SpeaksEcho(impl))
            throw new ArgumentException($"{impl.Name} is not a TCP echo server; torture speaks raw TCP echo");
        if (Limits.EnsureFileDescriptors(idleConnections + 256) is { } limit) throw new ArgumentException(limit);
        await using var server = await ServerProcess.StartAsync(impl, ServerProcess.Loopback, cpus: null, cancel);
        var (host, port) = server.Ready.TcpEndpoint;
        long Rss() => ProcFs.ReadFootprint(server.Pid)?.RssKb ?? 0;
        var before = Rss();
        var cases = await new TortureCases(host, port, () => !server.HasExited, Rss, idleConnections).RunAllAsync(cancel);
        var after = Rss();
        if (!await server.StopAsync())
            cases = [.. cases, new CaseResult("exits promptly on SIGTERM afterwards", false, $"ignored SIGTERM for {ServerProcess.StopGrace.TotalSeconds:F0} s; killed")];
        else
            cases = [.. cases, new CaseResult("exits promptly on SIGTERM afterwards", server.Process.ExitCode == 0, $"exit status {server.Process.ExitCode}")];
        return (cases, before, after);
    }

    public static async Task<int> MainAsync(string root, string name, int idle, CancellationToken cancel)
    {
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        if (!await BuildStage.EnsureBuiltAsync(root, [impl], cancel)) return 1;
        Console.Error.WriteLine($"bench: torturing {name}");
        var (cases, before, after) = await RunAsync(impl, idle, cancel);
        Console.WriteLine($"| {name}: case | result | detail |");
        Console.WriteLine("|---|---|---|");
        foreach (var c in cases) Console.WriteLine($"| {c.Case} | {(c.Passed ? "passed" : "**FAILED**")} | {c.Detail} |");
        Console.WriteLine();
        Console.WriteLine($"Server resident memory: {before / 1024.0:F1} MiB before, {after / 1024.0:F1} MiB after.");
        return cases.All(c => c.Passed) ? 0 : 1;
    }
}
