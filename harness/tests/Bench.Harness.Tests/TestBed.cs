using System.Diagnostics;
using System.Text.Json;
using Bench.Harness.Remote;

namespace Bench.Harness.Tests;

/// <summary>
/// The repository's own test bed (scripts/testbed.sh): four hosts in network namespaces, each
/// with a real sshd, made once for the tests of the "testbed" collection and removed after them.
/// Only root can make one; <see cref="TestBedFactAttribute"/> skips the tests elsewhere and says why.
/// </summary>
public sealed class TestBed : IDisposable
{
    public const int HostCount = 4;
    public string HostsPath { get; }
    public HostsFile Hosts => HostsFile.Load(HostsPath);
    public string State => Path.GetDirectoryName(HostsPath)!;

    public TestBed()
    {
        var (exit, stdout, stderr) = Script("up", "--hosts", HostCount.ToString());
        if (exit != 0) throw new InvalidOperationException($"testbed up failed: {stderr}");
        HostsPath = stdout.Trim().Split('\n')[^1];
    }

    public void Dispose() => Script("down");

    public static (int Exit, string Stdout, string Stderr) Script(params string[] args) =>
        Run([Path.Combine(Repo.Root, "scripts", "testbed.sh"), .. args]);

    public static (int Exit, string Stdout, string Stderr) Run(params string[] argv)
    {
        using var p = Process.Start(new ProcessStartInfo(argv[0], argv[1..]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    /// <summary>The pids of every process in the test bed's namespaces now, sshd left out.</summary>
    public static IReadOnlyList<string> ProcessesInNamespaces()
    {
        var found = new List<string>();
        for (var i = 0; i < HostCount; i++)
            foreach (var pid in Run("ip", "netns", "pids", $"bench-h{i}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var cmd = File.Exists($"/proc/{pid}/cmdline") ? File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim() : "";
                if (!cmd.StartsWith("sshd", StringComparison.Ordinal) && !cmd.StartsWith("/usr/sbin/sshd", StringComparison.Ordinal) && cmd.Length > 0)
                    found.Add($"bench-h{i}: {pid} {cmd}");
            }
        return found;
    }

    /// <summary>A hosts file beside the test bed's, with the hosts and ssh config given (a JSON object per host).</summary>
    public string WriteHosts(string folder, string sshConfig, params object[] hosts)
    {
        var path = Path.Combine(folder, $"hosts-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object> { ["ssh_config"] = sshConfig, ["link"] = "test", ["hosts"] = hosts }));
        return path;
    }

    public static object Host(string name, string ssh, string address, string role, string cpus = "0") =>
        new Dictionary<string, string> { ["name"] = name, ["ssh"] = ssh, ["address"] = address, ["cpus"] = cpus, ["role"] = role, ["dir"] = $"/run/bench-testbed/{name}/work" };
}

[CollectionDefinition("testbed")]
public sealed class TestBedCollection : ICollectionFixture<TestBed>;

/// <summary>A test that needs the test bed: skipped, with the reason, where network namespaces or sshd cannot be had.</summary>
public sealed class TestBedFactAttribute : FactAttribute
{
    private static readonly string? WhyNot = Probe();

    public TestBedFactAttribute()
    {
        if (WhyNot is not null) Skip = WhyNot;
    }

    private static string? Probe()
    {
        if (Environment.UserName != "root" && geteuid() != 0) return "the test bed needs root (network namespaces, links, sshd); run the tests as root, as CI does";
        if (!File.Exists("/usr/sbin/sshd")) return "the test bed needs openssh-server (/usr/sbin/sshd): scripts/setup.sh installs it";
        var ns = $"bench-probe-{Environment.ProcessId}";
        var (exit, _, stderr) = TestBed.Run("ip", "netns", "add", ns);
        if (exit != 0) return $"network namespaces cannot be made here: {stderr.Trim()}";
        TestBed.Run("ip", "netns", "delete", ns);
        return null;
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
