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
        Assert.Equal(bed.H(0), hosts.Server.Name);
        Assert.Equal([bed.H(1), bed.H(2), bed.H(3)], hosts.Clients.Select(h => h.Name));
        Assert.Equal([bed.Ip(0), bed.Ip(1), bed.Ip(2), bed.Ip(3)], hosts.Hosts.Select(h => h.Address));
        Assert.StartsWith("198.18.", bed.Net);
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
    public async Task a_second_named_test_bed_lives_beside_the_tests_own_and_its_down_removes_only_its_own()
    {
        var other = $"u{Environment.ProcessId % 100_000}";
        var (exit, stdout, stderr) = TestBed.Script("up", "--name", other, "--hosts", "2");
        try
        {
            Assert.True(exit == 0, stderr);
            var hosts = HostsFile.Load(stdout.Trim().Split('\n')[^1]);
            Assert.Equal($"/run/{other}-testbed/hosts.json", hosts.Path);
            Assert.Equal([$"{other}-h0", $"{other}-h1"], hosts.Hosts.Select(h => h.Name));
            // Its own subnet: none of its addresses is one of the tests' test bed.
            var net = string.Join('.', hosts.Server.Address.Split('.')[..3]);
            Assert.NotEqual(bed.Net, net);
            Assert.StartsWith("198.18.", net);
            var facts = await HostCheck.VerifyAsync(hosts, CSharp(10), CancellationToken.None);
            Assert.Equal(2, facts.Count);
        }
        finally
        {
            var down = TestBed.Script("down", "--name", other);
            Assert.True(down.Exit == 0, down.Stderr);
        }
        var namespaces = TestBed.Run("ip", "netns", "list").Stdout;
        Assert.DoesNotContain($"{other}-h", namespaces);
        Assert.False(Directory.Exists($"/run/{other}-testbed"));
        // The tests' own test bed is whole: every host in it still answers.
        for (var i = 0; i < TestBed.HostCount; i++) Assert.Contains(bed.H(i), namespaces);
        Assert.Equal(TestBed.HostCount, (await HostCheck.VerifyAsync(bed.Hosts, CSharp(10), CancellationToken.None)).Count);
    }

    [TestBedFact]
    public async Task the_verify_step_reports_each_hosts_accept_and_syn_queue_limits_as_its_own_namespace_has_them()
    {
        string Sysctl(int host, string key) => TestBed.Run("ip", "netns", "exec", bed.H(host), "sysctl", "-n", key).Stdout.Trim();
        // testbed up gives every namespace this machine's values (a namespace would start with the kernel's defaults).
        Assert.Equal(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim(), Sysctl(0, "net.core.somaxconn"));
        Assert.Equal(File.ReadAllText("/proc/sys/net/ipv4/tcp_max_syn_backlog").Trim(), Sysctl(1, "net.ipv4.tcp_max_syn_backlog"));
        var (somaxconn, backlog) = (Sysctl(0, "net.core.somaxconn"), Sysctl(0, "net.ipv4.tcp_max_syn_backlog"));
        TestBed.Run("ip", "netns", "exec", bed.H(0), "sysctl", "-qw", "net.core.somaxconn=1234", "net.ipv4.tcp_max_syn_backlog=777");
        try
        {
            var facts = (await HostCheck.VerifyAsync(bed.Hosts, CSharp(10), CancellationToken.None)).ToDictionary(f => f.Host);
            Assert.Equal((1234, 777), (facts[bed.H(0)].SoMaxConn, facts[bed.H(0)].SynBacklog));
            Assert.Equal((int.Parse(somaxconn), int.Parse(backlog)), (facts[bed.H(1)].SoMaxConn, facts[bed.H(1)].SynBacklog));
        }
        finally
        {
            TestBed.Run("ip", "netns", "exec", bed.H(0), "sysctl", "-qw", $"net.core.somaxconn={somaxconn}", $"net.ipv4.tcp_max_syn_backlog={backlog}");
        }
    }

    [TestBedFact]
    public async Task every_implementation_of_the_default_suite_finds_what_it_needs_on_a_test_bed_host()
    {
        var suite = Repo.Catalog.All.Where(i => i.InDefaultSuite).ToList();
        Assert.Contains(suite, i => i.Name == "python-fast");
        var facts = await HostCheck.VerifyAsync(bed.Hosts, new HostDemand(suite.Where(i => i.HasServer).ToList(), suite.Where(i => i.HasClient).ToList(), 1000),
            CancellationToken.None);
        Assert.Equal(TestBed.HostCount, facts.Count);
        // A host's sessions have sshd's plain PATH: the system's python3 and dotnet, not the rc file of whoever runs the test bed.
        var (exit, stdout, stderr) = await new Ssh(bed.Hosts.SshConfig).ShellAsync(bed.Hosts.Clients[0], "command -v python3; command -v dotnet; echo \"$PATH\"", [],
            TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.True(exit == 0, stderr);
        Assert.Equal(["/usr/bin/python3", "/usr/bin/dotnet", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], stdout.Trim().Split('\n'));
    }

    [TestBedFact]
    public async Task an_unreachable_host_a_wrong_key_and_a_missing_runtime_each_get_one_error_naming_the_host_and_why()
    {
        using var dir = new TempDir();
        // A key no host accepts, in a copy of the test bed's config.
        Assert.Equal(0, TestBed.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.File("stranger")).Exit);
        var config = File.ReadAllText(Path.Combine(bed.State, "ssh_config"));
        File.WriteAllText(dir.File("wrong_key_config"), config.Replace(Path.Combine(bed.State, "id_ed25519"), dir.File("stranger")));
        var noDotnet = await HideDotnet(dir);
        File.WriteAllText(dir.File("config"), config + $"Host {bed.H(9)}\n  HostName {bed.Ip(98)}\n" + noDotnet);

        async Task<string> ErrorOf(string sshConfig, params object[] hosts)
        {
            var file = HostsFile.Load(bed.WriteHosts(dir.Path, sshConfig, hosts));
            var e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None));
            return e.Message;
        }
        var server = bed.Host(bed.H(0), bed.H(0), bed.Ip(0), "server");
        var unreachable = await ErrorOf(dir.File("config"), server, bed.Host("ghost", bed.H(9), bed.Ip(98), "client", "1"));
        Assert.StartsWith($"host ghost ({bed.H(9)}, client): cannot log in with ssh", unreachable);
        Assert.DoesNotContain(bed.H(0), unreachable);

        var wrongKey = await ErrorOf(dir.File("wrong_key_config"), server, bed.Host(bed.H(1), bed.H(1), bed.Ip(1), "client", "1"));
        Assert.Contains($"host {bed.H(0)} ({bed.H(0)}, server): cannot log in with ssh", wrongKey);
        Assert.Contains($"host {bed.H(1)} ({bed.H(1)}, client): cannot log in with ssh", wrongKey);
        Assert.Contains("Permission denied", wrongKey);

        var noRuntime = await ErrorOf(dir.File("config"), server, bed.Host(bed.H(3), $"{bed.H(3)}-nodotnet", bed.Ip(3), "client", "1"));
        Assert.Equal($"host {bed.H(3)} ({bed.H(3)}-nodotnet, client): missing dotnet (the .NET runtime: dotnet --list-runtimes lists none) (needed by csharp; --setup would run scripts/setup.sh there)", noRuntime);
        StopSshd(dir);
    }

    /// <summary>
    /// A host with no .NET runtime: a second sshd in host 3's namespace (port 2222) whose mount
    /// namespace hides /usr/share/dotnet; the ssh config lines that reach it as H(3)-nodotnet.
    /// </summary>
    private static readonly string DotnetHome =
        Path.GetDirectoryName(Path.GetFullPath(new FileInfo("/usr/bin/dotnet").ResolveLinkTarget(true)?.FullName ?? "/usr/share/dotnet/dotnet"))!;

    private async Task<string> HideDotnet(TempDir dir)
    {
        var sshd = $"mount -t tmpfs none {DotnetHome} && exec {bed.State}/sshd -o ListenAddress={bed.Ip(3)}:2222 -o PidFile={dir.File("sshd.pid")}";
        var started = TestBed.Run("ip", "netns", "exec", bed.H(3), "unshare", "-m", "--propagation", "private", "sh", "-c", sshd);
        Assert.True(started.Exit == 0, started.Stderr);
        await Task.Delay(300);
        return $"Host {bed.H(3)}-nodotnet\n  HostName {bed.Ip(3)}\n  Port 2222\n  HostKeyAlias {bed.Ip(3)}\n";
    }

    private static void StopSshd(TempDir dir)
    {
        if (File.Exists(dir.File("sshd.pid"))) TestBed.Run("kill", File.ReadAllText(dir.File("sshd.pid")).Trim());
    }

    [TestBedFact]
    public async Task setup_runs_the_projects_setup_sh_over_ssh_on_only_the_host_lacking_a_runtime_and_a_setup_that_fails_is_named_with_its_last_lines()
    {
        using var dir = new TempDir();
        var config = File.ReadAllText(Path.Combine(bed.State, "ssh_config")) + await HideDotnet(dir);
        File.WriteAllText(dir.File("config"), config);
        try
        {
            var file = HostsFile.Load(bed.WriteHosts(dir.Path, dir.File("config"), bed.Host(bed.H(0), bed.H(0), bed.Ip(0), "server"),
                bed.Host(bed.H(3), $"{bed.H(3)}-nodotnet", bed.Ip(3), "client", "1")));
            var lines = new System.Collections.Concurrent.ConcurrentQueue<(string Host, string Line)>();
            var setup = HostSetup.Of(Repo.Root) with { Output = (h, l) => lines.Enqueue((h, l)) };
            // The real setup.sh, fed on stdin: every package is installed (it installs nothing), but no dotnet is on PATH there, so it fails.
            var e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None, setup));
            Assert.Equal($"host {bed.H(3)} ({bed.H(3)}-nodotnet, client): missing dotnet (the .NET runtime: dotnet --list-runtimes lists none) " +
                         "(needed by csharp; scripts/setup.sh installs them); scripts/setup.sh failed there (exit 1); " +
                         "its last lines: setup: 'dotnet' is not on PATH; install it first", e.Message);
            // Its output arrived, under the host's name; the server host lacked nothing and had no setup run.
            Assert.All(lines, l => Assert.Equal(bed.H(3), l.Host));
            Assert.Contains((bed.H(3), "setup: 'dotnet' is not on PATH; install it first"), lines);

            // A setup that succeeds but supplies nothing: the second verify names what is still missing.
            var idle = new HostSetup("echo nothing to do\n", (h, l) => lines.Enqueue((h, l)));
            e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None, idle));
            Assert.Equal($"host {bed.H(3)} ({bed.H(3)}-nodotnet, client): missing dotnet (the .NET runtime: dotnet --list-runtimes lists none) " +
                         "(needed by csharp; scripts/setup.sh ran there and did not supply them)", e.Message);

            // A setup that does supply the runtime (here: lifting the mount that hides it) is followed by a second verify, which passes.
            var lifting = new HostSetup($"echo lifting; umount {DotnetHome} && echo lifted\n", (h, l) => lines.Enqueue((h, l)));
            lines.Clear();
            var facts = await HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None, lifting);
            Assert.Equal([bed.H(0), bed.H(3)], facts.Select(f => f.Host));
            Assert.Equal([(bed.H(3), $"running scripts/setup.sh on {bed.H(3)}-nodotnet"), (bed.H(3), "lifting"), (bed.H(3), "lifted")], lines);
            // Every host whole now: a setup is run on none.
            lines.Clear();
            Assert.Equal(2, (await HostCheck.VerifyAsync(file, CSharp(100), CancellationToken.None, lifting)).Count);
            Assert.Empty(lines);
        }
        finally { StopSshd(dir); }
    }

    [TestBedFact]
    public async Task a_plan_needing_more_descriptors_than_a_host_allows_one_process_is_refused_naming_the_host()
    {
        var hosts = bed.Hosts;
        var hard = (await HostCheck.VerifyAsync(hosts, CSharp(10), CancellationToken.None)).First(f => f.Host == bed.H(0)).FdHard;
        // The server holds every connection; the three client hosts a third each, within their limit.
        var connections = (int)hard;
        var e = await Assert.ThrowsAsync<HostCheckException>(() => HostCheck.VerifyAsync(hosts, CSharp(connections), CancellationToken.None));
        Assert.Equal($"host {bed.H(0)} ({bed.H(0)}, server): the plan puts {connections} connections on the server process here, which needs {connections + 256} file descriptors, " +
                     $"but the host allows one process {hard} (ulimit -Hn); raise it there (/etc/security/limits.conf) or use fewer connections", e.Message);
    }
}
