using System.Diagnostics;
using System.Globalization;
using Bench.Harness.Catalog;

namespace Bench.Harness.Remote;

/// <summary>
/// What a host is and allows, as read over ssh before anything runs; recorded in hosts.json beside
/// the results. The net.* sysctls are the host's own network namespace's (on the test bed each
/// host is one, with its own somaxconn and tcp_max_syn_backlog, not this machine's).
/// </summary>
public sealed record HostFacts(
    string Host, string Role, string Address, string Cpus, string Kernel, string CpuModel, int CpuCount,
    long FdSoft, long FdHard, int SoMaxConn, string PortRange, int EphemeralPorts, double ClockOffsetMs, double RttMs,
    int SynBacklog = 0, int SynCookies = 0);

/// <summary>What a plan asks of the hosts: the implementations it starts there and its largest connection count.</summary>
public sealed record HostDemand(IReadOnlyList<Implementation> Servers, IReadOnlyList<Implementation> Clients, int MaxConnections);

/// <summary>
/// The verify step of a multi-host run, before anything is built, shipped or timed: every host
/// is reached (ssh BatchMode, bounded connect), the tools and runtimes the chosen
/// implementations need are looked for, its facts are read (kernel, CPU, ulimit -n, somaxconn,
/// port range, clock offset to this machine), and the plan's connections are held against its
/// limits. Every host that fails gets one line naming it and why, all at once. With a
/// <see cref="HostSetup"/> (--setup), a host lacking tools or runtimes has the project's own
/// scripts/setup.sh run on it over ssh (its text on stdin, as root or through `sudo -n`), its
/// output shown line by line prefixed with the host's name, and is then verified again.
/// </summary>
public static class HostCheck
{
    /// <summary>Descriptors a process needs beside its connections (runtime, logs, epoll, pipes).</summary>
    public const int SpareDescriptors = 256;

    /// <summary>Every host's facts; a <see cref="HostCheckException"/> listing each host that fails and why.</summary>
    public static async Task<IReadOnlyList<HostFacts>> VerifyAsync(HostsFile hosts, HostDemand demand, CancellationToken cancel, HostSetup? setup = null)
    {
        var ssh = new Ssh(hosts.SshConfig);
        var clients = hosts.Clients.Count;
        var checks = hosts.Hosts.Select(async h =>
        {
            var impls = h.Role == HostRoles.Server ? demand.Servers : demand.Clients;
            // A client host's share of the connections, as the run splits them (the first hosts take the remainder).
            var conns = h.Role == HostRoles.Server ? demand.MaxConnections : (demand.MaxConnections + clients - 1) / clients;
            try
            {
                try { return (Facts: await CheckAsync(ssh, h, impls, conns, setup is not null, cancel), Error: (string?)null); }
                catch (HostLacksException e) when (setup is not null)
                {
                    if (await RunSetupAsync(ssh, h, setup, cancel) is { } failed) throw new HostCheckException($"{e.Message}; {failed}");
                    // Verified again: what setup.sh could not supply is named as still missing.
                    try { return (Facts: await CheckAsync(ssh, h, impls, conns, setup: true, cancel, afterSetup: true), Error: (string?)null); }
                    catch (HostLacksException again) { throw new HostCheckException(again.Message); }
                }
            }
            catch (HostCheckException e) { return (Facts: (HostFacts?)null, Error: e.Message); }
        }).ToList();
        var results = await Task.WhenAll(checks);
        var errors = results.Select(r => r.Error).OfType<string>().ToList();
        if (errors.Count > 0) throw new HostCheckException(string.Join("\n", errors));
        return results.Select(r => r.Facts!).ToList();
    }

    /// <summary>The tools every remote program needs: a new session, pinning, and the watchdog's shell.</summary>
    private static readonly string[] BaseTools = ["sh", "setsid", "taskset"];

    /// <summary>What an implementation needs on a host to run: its interpreter when the command names one on PATH, the .NET runtime for a dotnet build.</summary>
    public static IEnumerable<string> ToolsFor(Implementation impl, IReadOnlyList<string> command) =>
    [
        .. command[0].Contains('/') ? Array.Empty<string>() : [command[0]],
        .. impl.Build.Toolchain == Toolchains.Dotnet ? [DotnetRuntime] : Array.Empty<string>(),
    ];

    /// <summary>Stands for "dotnet, with a .NET runtime it lists" in the tool check.</summary>
    private const string DotnetRuntime = "dotnet";

    private const string FactsScript = """
        echo "kernel=$(uname -r)"
        echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
        echo "cpus=$(nproc)"
        echo "fd_soft=$(ulimit -Sn)"
        echo "fd_hard=$(ulimit -Hn)"
        echo "somaxconn=$(cat /proc/sys/net/core/somaxconn)"
        echo "syn_backlog=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"
        echo "syncookies=$(cat /proc/sys/net/ipv4/tcp_syncookies)"
        echo "port_range=$(tr '\t' ' ' < /proc/sys/net/ipv4/ip_local_port_range)"
        for t in "$@"; do
          if [ "$t" = dotnet ]; then
            dotnet --list-runtimes 2>/dev/null | grep -q '^Microsoft.NETCore.App ' || echo "missing=dotnet (the .NET runtime: dotnet --list-runtimes lists none)"
          else
            command -v "$t" >/dev/null 2>&1 || echo "missing=$t"
          fi
        done
        """;

    /// <summary>How long setup.sh may take on one host (apt-get installing a toolchain from nothing).</summary>
    public static readonly TimeSpan SetupTimeout = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Put before the script as run-all.sh does before its own setup.sh: rustup's cargo on PATH
    /// (an ssh session has sshd's plain PATH, and setup.sh would otherwise install Debian's).
    /// </summary>
    private const string RemotePrelude = "if [ -d \"$HOME/.cargo/bin\" ]; then PATH=\"$HOME/.cargo/bin:$PATH\"; fi\n";

    /// <summary>How many of a failed setup.sh's last output lines its error quotes.</summary>
    public const int SetupTailLines = 5;

    /// <summary>
    /// Runs the setup script on the host: `bash -s` when the ssh user is root, `sudo -n bash -s`
    /// (no password prompt) otherwise, the script on stdin. Null when it succeeded, else why not
    /// with its last lines.
    /// </summary>
    private static async Task<string?> RunSetupAsync(Ssh ssh, RemoteHost host, HostSetup setup, CancellationToken cancel)
    {
        setup.Output(host.Name, $"running scripts/setup.sh on {host.Ssh}");
        var argv = ssh.Command(host, ["sh", "-c", "if [ \"$(id -u)\" = 0 ]; then exec bash -s; else exec sudo -n bash -s; fi"]);
        var tail = new Queue<string>();
        void Line(string line)
        {
            lock (tail)
            {
                tail.Enqueue(line);
                while (tail.Count > SetupTailLines) tail.Dequeue();
            }
            setup.Output(host.Name, line);
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(SetupTimeout);
        int exit;
        try
        {
            var result = await CliWrap.Cli.Wrap(argv[0]).WithArguments(argv.Skip(1)).WithValidation(CliWrap.CommandResultValidation.None)
                .WithStandardInputPipe(CliWrap.PipeSource.FromString(RemotePrelude + setup.Script))
                .WithStandardOutputPipe(CliWrap.PipeTarget.ToDelegate(Line))
                .WithStandardErrorPipe(CliWrap.PipeTarget.ToDelegate(Line))
                .ExecuteAsync(deadline.Token);
            exit = result.ExitCode;
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return $"scripts/setup.sh did not finish there within {SetupTimeout.TotalMinutes:F0} min";
        }
        if (exit == 0) return null;
        string last;
        lock (tail) last = tail.Count == 0 ? "no output" : "its last lines: " + string.Join(" | ", tail);
        return $"scripts/setup.sh failed there (exit {exit}{(exit == 1 && tail.Any(l => l.Contains("sudo"))
            ? ", the ssh user is not root and sudo -n was refused" : "")}); {last}";
    }

    private static async Task<HostFacts> CheckAsync(Ssh ssh, RemoteHost host, IReadOnlyList<Implementation> impls, int connections, bool setup,
        CancellationToken cancel, bool afterSetup = false)
    {
        var where = $"host {host.Name} ({host.Ssh}, {host.Role})";
        // Reachable at all: this also opens the multiplexed connection everything after uses.
        var (exit, _, stderr) = await ssh.RunAsync(host, ["true"], TimeSpan.FromSeconds(15), cancel);
        if (exit != 0)
            throw new HostCheckException($"{where}: cannot log in with ssh (exit {exit}): {(stderr.Length > 0 ? stderr : "no reason given")}" +
                                         (stderr.Contains("Permission denied") ? " (the key is not accepted: check IdentityFile and the host's authorized_keys)" : ""));

        var tools = BaseTools.Concat(impls.SelectMany(i => new[] { i.ServerCommand, i.ClientCommand }.OfType<IReadOnlyList<string>>()
            .SelectMany(c => ToolsFor(i, c)))).Distinct().ToList();
        var (fexit, stdout, ferr) = await ssh.ShellAsync(host, FactsScript, tools, TimeSpan.FromSeconds(30), cancel);
        if (fexit != 0) throw new HostCheckException($"{where}: reading its facts failed (exit {fexit}): {ferr}");
        var facts = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToList();
        string Fact(string key) => facts.FirstOrDefault(p => p[0] == key)?[1].Trim() ?? "";
        var missing = facts.Where(p => p[0] == "missing").Select(p => p[1]).ToList();
        var problems = new List<string>();
        if (missing.Count > 0)
            problems.Add($"missing {string.Join(", ", missing)} (needed by {string.Join(", ", impls.Select(i => i.Name))}; " +
                         (afterSetup ? "scripts/setup.sh ran there and did not supply them)" : setup ? "scripts/setup.sh installs them)" : "--setup would run scripts/setup.sh there)"));

        static long Limit(string v) => v == "unlimited" ? long.MaxValue : long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : 0;
        var (soft, hard) = (Limit(Fact("fd_soft")), Limit(Fact("fd_hard")));
        var range = Fact("port_range").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var ports = range.Length == 2 && int.TryParse(range[0], out var lo) && int.TryParse(range[1], out var hi) ? hi - lo + 1 : 0;
        var needed = connections + SpareDescriptors;
        var process = host.Role == HostRoles.Server ? "the server process" : "one client process";
        if (needed > hard)
            problems.Add($"the plan puts {connections} connections on {process} here, which needs {needed} file descriptors, " +
                         $"but the host allows one process {hard} (ulimit -Hn); raise it there (/etc/security/limits.conf) or use fewer connections" +
                         (host.Role == HostRoles.Client ? " or more client hosts" : ""));
        if (host.Role == HostRoles.Client && connections > ports)
            problems.Add($"{connections} connections from one source address need more ephemeral ports than net.ipv4.ip_local_port_range gives here ({ports}); add client hosts");
        var cpuCount = int.TryParse(Fact("cpus"), out var n) ? n : 0;
        var highest = host.Cpus.Split(',').SelectMany(p => p.Split('-')).Select(int.Parse).Max();
        if (highest >= cpuCount) problems.Add($"cpus {host.Cpus} names CPU {highest}, but the host has {cpuCount} (nproc)");
        if (problems.Count > 0)
            throw missing.Count > 0 && !afterSetup
                ? new HostLacksException($"{where}: {string.Join("; ", problems)}")
                : new HostCheckException($"{where}: {string.Join("; ", problems)}");

        var (offset, rtt) = await ClockOffsetAsync(ssh, host, cancel);
        return new HostFacts(host.Name, host.Role, host.Address, host.Cpus, Fact("kernel"), Fact("cpu_model"), cpuCount, soft, hard,
            int.TryParse(Fact("somaxconn"), out var s) ? s : 0, Fact("port_range"), ports, offset, rtt,
            int.TryParse(Fact("syn_backlog"), out var b) ? b : 0, int.TryParse(Fact("syncookies"), out var c) ? c : 0);
    }

    /// <summary>
    /// The host's clock minus this one's, in ms, from the fastest of three round trips (the remote
    /// reading taken as the midpoint of its round trip), and that round trip.
    /// </summary>
    private static async Task<(double OffsetMs, double RttMs)> ClockOffsetAsync(Ssh ssh, RemoteHost host, CancellationToken cancel)
    {
        var best = (Offset: double.NaN, Rtt: double.MaxValue);
        for (var i = 0; i < 3; i++)
        {
            var sent = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            var (exit, stdout, _) = await ssh.RunAsync(host, ["date", "+%s%N"], TimeSpan.FromSeconds(10), cancel);
            var rtt = clock.Elapsed.TotalMilliseconds;
            if (exit != 0 || !long.TryParse(stdout.Trim(), CultureInfo.InvariantCulture, out var remoteNs)) continue;
            var localMidNs = (sent.ToUnixTimeMilliseconds() + rtt / 2) * 1e6;
            if (rtt < best.Rtt) best = (Math.Round((remoteNs - localMidNs) / 1e6, 3), Math.Round(rtt, 3));
        }
        return best;
    }
}

public class HostCheckException(string message) : Exception(message);

/// <summary>A host that lacks tools or runtimes: what --setup runs scripts/setup.sh for.</summary>
public sealed class HostLacksException(string message) : HostCheckException(message);

/// <summary>
/// --setup: the setup script's text (scripts/setup.sh), run on every host that lacks tools or
/// runtimes, and where each line it prints goes (the host's name, the line).
/// </summary>
public sealed record HostSetup(string Script, Action<string, string> Output)
{
    /// <summary>The repository's own scripts/setup.sh, its output on stderr prefixed with the host's name.</summary>
    public static HostSetup Of(string root) =>
        new(File.ReadAllText(Path.Combine(root, "scripts", "setup.sh")), (host, line) => Console.Error.WriteLine($"{host}: {line}"));
}
