using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Machine;
using Bench.Harness.Run;

namespace Bench.Harness.Torture;

/// <summary>`torture NAME`: start one server, throw every rude peer at it, print a table.</summary>
public static class TortureCommand
{
    public static async Task<(IReadOnlyList<CaseResult> Cases, long RssBeforeKb, long RssAfterKb)> RunAsync(
        Implementation impl, int idleConnections, CancellationToken cancel)
    {
        if (!impl.HasServer || !impl.Transports.Contains(Transports.Tcp) || !impl.Workloads.Contains(Workloads.Burst))
            throw new ArgumentException($"{impl.Name} is not a TCP echo server; torture speaks raw TCP echo");
        if (Limits.EnsureFileDescriptors(idleConnections + 256) is { } limit) throw new ArgumentException(limit);
        await using var server = ManagedProcess.Start($"server {impl.Name}", [.. impl.ServerCommand!, "--host", "127.0.0.1", "--port", "0"], impl.Folder);
        var ready = ReadyLine.Parse(await server.WaitForLineAsync(ReadyLine.Matches, TimeSpan.FromSeconds(30), cancel));
        var (host, port) = ready.TcpEndpoint;
        long Rss() => ProcFs.ReadTree(server.Pid) is not null ? CurrentRssKb(server.Pid) : 0;
        var before = Rss();
        var cases = await new TortureCases(host, port, () => !server.HasExited, Rss, idleConnections).RunAllAsync(cancel);
        var after = Rss();
        if (!await server.StopAsync(TimeSpan.FromSeconds(5)))
            cases = [.. cases, new CaseResult("exits promptly on SIGTERM afterwards", false, "ignored SIGTERM for 5 s; killed")];
        else
            cases = [.. cases, new CaseResult("exits promptly on SIGTERM afterwards", server.ExitCode == 0, $"exit status {server.ExitCode}")];
        return (cases, before, after);
    }

    /// <summary>Resident memory now (VmRSS) of the server and its children.</summary>
    private static long CurrentRssKb(int pid) =>
        new[] { pid }.Concat(ProcFs.Descendants(pid)).Sum(p =>
        {
            try
            {
                var line = File.ReadLines($"/proc/{p}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
                return line is null ? 0 : long.Parse(line[6..].Trim().Split(' ')[0]);
            }
            catch (IOException) { return 0; }
        });

    public static async Task<int> MainAsync(string root, string name, int idle, CancellationToken cancel)
    {
        var impl = ImplementationCatalog.Discover(root).Select([name])[0];
        var build = await Builder.BuildAsync(impl.Folder, impl.Build, TimeSpan.FromMinutes(15), cancel);
        if (!build.Succeeded) { Console.Error.WriteLine($"bench: {name} did not build: {build.Error}"); return 1; }
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
