using System.Diagnostics;
using Bench.Harness.Processes;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>
/// Limits of the machine provoked for real, inside a network namespace the test makes itself
/// (the port range is per namespace), so the host's settings are never touched.
/// </summary>
public class NamespaceTests
{
    [Fact]
    public async Task more_connections_than_ephemeral_ports_are_skipped_with_the_limit_named()
    {
        var ns = $"bench-test-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        Run("ip", "netns", "add", ns);
        try
        {
            Run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
            Run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40099");
            using var results = new TempDir();
            var harness = Path.Combine(AppContext.BaseDirectory, "bench.dll");
            await Repo.BuiltAsync("csharp");
            await using var run = ManagedProcess.Start("harness", ["ip", "netns", "exec", ns, "dotnet", harness, "run", "--root", Repo.Root,
                "--only", "csharp", "--workload", "burst", "--connections", "500", "--repeats", "1", "--no-build", "--results", results.Path], Repo.Root);
            Assert.Equal(1, await run.Exited.WaitAsync(Processes.Patience));
            var row = Assert.Single(ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv")));
            Assert.Equal(RunStatus.Skipped, row.Status);
            Assert.Contains("ephemeral ports", row.Error);
            Assert.Contains("(100)", row.Error);
        }
        finally { Run("ip", "netns", "delete", ns); }
    }

    private static void Run(params string[] argv)
    {
        using var p = Process.Start(new ProcessStartInfo(argv[0], argv[1..]) { RedirectStandardError = true })!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{string.Join(' ', argv)}: {error}");
    }
}
