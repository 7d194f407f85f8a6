using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Processes;
using Bench.Harness.Workloads;

namespace Bench.Harness.Run;

/// <summary>
/// One cell of a suite: a server, what loads it, and the load. It is run once per repeat.
/// Connections are transport connections; in-flight is how many requests are outstanding at
/// once (equal to connections for the raw echo, whose connections carry one request at a time).
/// </summary>
public sealed record Experiment(
    Implementation Server, LoadGenerator Load, string Transport, Workload Workload,
    int Connections, int InFlight, int Payload, double Rate, double DurationS)
{
    /// <summary>The implementations this experiment runs: the server's, and the client's unless an independent tool makes the load.</summary>
    public IEnumerable<Implementation> Implementations => Load.Client is { } client ? [Server, client] : [Server];

    /// <summary>What its rows in runs.csv carry to say which experiment they belong to.</summary>
    public Results.RunRecord.ExperimentKey Key => new(Server.Name, Load.Name, Transport, Workload.Name, Connections, InFlight, Payload, Rate);

    public override string ToString()
    {
        var pair = Server.Name == Load.Name ? Server.Name : $"{Load.Name} -> {Server.Name}";
        var load = $"{Connections} conn" + (Workload.Multiplexes ? $" {InFlight} in flight" : "") +
                   (Workload.IsTimed ? $" {DurationS.ToString(CultureInfo.InvariantCulture)} s" : "");
        var rate = Rate > 0 ? $" @{Rate.ToString(CultureInfo.InvariantCulture)}/s" : "";
        return $"{pair} [{Transport} {Workload.Name} {load} {Payload} B{rate}]";
    }
}

/// <summary>
/// How every experiment in a suite is run: repeats, pinning, deadlines. ClientWarmupS is the
/// contract's --warmup for measured runs: the client warms itself up before its timed window.
/// </summary>
public sealed record RunSettings(
    int Repeats = 5,
    int Warmups = 1,
    string ServerCpus = "0",
    string ClientCpus = "1",
    TimeSpan? ReadyTimeout = null,
    TimeSpan? ClientTimeout = null,
    bool KeepSamples = false,
    TimeSpan? DeadlineSlack = null,
    TimeSpan? SteadyWarmupCap = null,
    double ClientWarmupS = 0,
    bool CountSyscalls = false,
    bool PairServers = false)
{
    /// <summary>The longest a steady-state warm-up may take; zero turns it off (fixed warm-up passes only).</summary>
    public TimeSpan WarmupCap => SteadyWarmupCap ?? TimeSpan.FromSeconds(60);

    public TimeSpan Ready => ReadyTimeout ?? ServerProcess.DefaultReadyTimeout;

    /// <summary>Per-connection deadline handed to clients (--timeout).</summary>
    public TimeSpan ConnectionTimeout => ClientTimeout ?? TimeSpan.FromSeconds(30);

    /// <summary>How long the harness lets a client run before it kills it with its process tree.</summary>
    public TimeSpan ClientDeadline(Experiment e) =>
        ConnectionTimeout + TimeSpan.FromSeconds(e.DurationS * 2 + ClientWarmupS) + (DeadlineSlack ?? TimeSpan.FromSeconds(30));
}
