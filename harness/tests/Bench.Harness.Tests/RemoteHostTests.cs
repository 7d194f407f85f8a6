using Bench.Harness.Remote;

namespace Bench.Harness.Tests;

/// <summary>
/// The verify step of a multi-host run against the real test bed (namespaces, sshd): every host's
/// facts read, and each kind of broken host named with its reason before anything runs.
/// </summary>
[Collection("testbed")]
public class RemoteHostTests(TestBed bed)
{
    private static HostDemand CSharp(int connections) => new([Repo.Catalog.Select(["csharp"])[0]], [Repo.Catalog.Select(["csharp"])[0]], connections);

    [TestBedFact]
    public async Task testbed_up_writes_a_hosts_file_of_one_server_and_three_clients_each_reachable_with_its_facts()
    {
        var hosts = bed.Hosts;
        Assert.Equal("bench-h0", hosts.Server.Name);
        Assert.Equal(["bench-h1", "bench-h2", "bench-h3"], hosts.Clients.Select(h => h.Name));
        Assert.All(hosts.Hosts, h => Assert.StartsWith("198.18.0.", h.Address));
        var facts = await HostCheck.VerifyAsync(hosts, CSharp(1000), CancellationToken.None);
        Assert.Equal(4, facts.Count);
        Assert.All(facts, f =>
        {
            Assert.Equal(Environment.OSVersion.Version.ToString(2), string.Join('.', f.Kernel.Split('.').Take(2)));
            Assert.True(f.FdHard > 0 && f.SoMaxConn > 0 && f.EphemeralPorts > 0 && f.CpuCount == Environment.ProcessorCount, f.ToString());
            // One machine, one clock: the offset is within the round trip.
            Assert.True(Math.Abs(f.ClockOffsetMs) <= f.RttMs + 5, f.ToString());
        });
    }

    [TestBedFact]
    public async Task an_unreachable_host_a_wrong_key_and_a_missing_runtime_each_get_one_error_naming_the_host_and_why()
    {
        using var dir = new TempDir();
        // A key no host accepts, in a copy of the test bed's config.
        Assert.Equal(0, TestBed.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.File("stranger")).Exit);
        var config = File.ReadAllText(Path.Combine(bed.State, "ssh_config"));
        File.WriteAllText(dir.File("wrong_key_config"), config.Replace(Path.Combine(bed.State, "id_ed25519"), dir.File("stranger")));
        // A host with no .NET runtime: a second sshd in bench-h3's namespace whose mount namespace hides /usr/share/dotnet.
        var dotnetHome = Path.GetDirectoryName(Path.GetFullPath(new FileInfo("/usr/bin/dotnet").ResolveLinkTarget(true)?.FullName ?? "/usr/share/dotnet/dotnet"))!;
        var sshd = $"mount -t tmpfs none {dotnetHome} && exec /usr/sbin/sshd -f {bed.State}/sshd_config -o ListenAddress=198.18.0.4:2222 -o PidFile={dir.File("sshd.pid")}";
        var started = TestBed.Run("ip", "netns", "exec", "bench-h3", "unshare", "-m", "--propagation", "private", "sh", "-c", sshd);
        Assert.True(started.Exit == 0, started.Stderr);
        File.WriteAllText(dir.File("config"), config + "Host bench-h9\n  HostName 198.18.0.99\nHost bench-h3-nodotnet\n  HostName 198.18.0.4\n  Port 2222\n  HostKeyAlias 198.18.0.4\n");
        await Task.Delay(300);

        async Task<string> ErrorOf(string sshConfig, params object[] hosts)
        {
            var file = HostsFile.Load(bed.WriteHosts(dir.Path, sshConfig, hosts));
            var e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None));
            return e.Message;
        }
        var server = TestBed.Host("bench-h0", "bench-h0", "198.18.0.1", "server");
        var unreachable = await ErrorOf(dir.File("config"), server, TestBed.Host("ghost", "bench-h9", "198.18.0.99", "client", "1"));
        Assert.StartsWith("host ghost (bench-h9, client): cannot log in with ssh", unreachable);
        Assert.DoesNotContain("bench-h0", unreachable);

        var wrongKey = await ErrorOf(dir.File("wrong_key_config"), server, TestBed.Host("bench-h1", "bench-h1", "198.18.0.2", "client", "1"));
        Assert.Contains("host bench-h0 (bench-h0, server): cannot log in with ssh", wrongKey);
        Assert.Contains("host bench-h1 (bench-h1, client): cannot log in with ssh", wrongKey);
        Assert.Contains("Permission denied", wrongKey);

        var noRuntime = await ErrorOf(dir.File("config"), server, TestBed.Host("bench-h3", "bench-h3-nodotnet", "198.18.0.4", "client", "1"));
        Assert.Equal("host bench-h3 (bench-h3-nodotnet, client): missing dotnet (the .NET runtime: dotnet --list-runtimes lists none) (needed by csharp; scripts/setup.sh installs them)", noRuntime);
        if (File.Exists(dir.File("sshd.pid"))) TestBed.Run("kill", File.ReadAllText(dir.File("sshd.pid")).Trim());
    }

    [TestBedFact]
    public async Task a_plan_needing_more_descriptors_than_a_host_allows_one_process_is_refused_naming_the_host()
    {
        var hosts = bed.Hosts;
        var hard = (await HostCheck.VerifyAsync(hosts, CSharp(10), CancellationToken.None)).First(f => f.Host == "bench-h0").FdHard;
        // The server holds every connection; the three client hosts a third each, within their limit.
        var connections = (int)hard;
        var e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(hosts, CSharp(connections), CancellationToken.None));
        Assert.Equal($"host bench-h0 (bench-h0, server): the plan puts {connections} connections on the server process here, which needs {connections + 256} file descriptors, " +
                     $"but the host allows one process {hard} (ulimit -Hn); raise it there (/etc/security/limits.conf) or use fewer connections", e.Message);
    }
}
