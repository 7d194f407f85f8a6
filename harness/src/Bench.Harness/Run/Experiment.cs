using System.Globalization;
using Bench.Harness.Catalog;

namespace Bench.Harness.Run;

/// <summary>One cell of a suite: a server, a client and the load; it is run once per repeat.</summary>
public sealed record Experiment(
    Implementation Server, Implementation Client, string Transport, string Workload,
    int Connections, int Payload, double Rate, double DurationS, string? LoadTool = null)
{
    /// <summary>Load from h2load instead of the client implementation (gRPC unary only).</summary>
    public bool UsesH2Load => LoadTool == LoadTools.H2Load.Name;

    public bool IsBurst => Workload == Workloads.Burst;

    /// <summary>Raw echo servers get the harness's own byte-exact check; others are checked through their client.</summary>
    public bool IsRawEcho => Transport == Transports.Tcp && Workload is Workloads.Burst or Workloads.Persistent;

    public override string ToString()
    {
        var client = LoadTool ?? Client.Name;
        var pair = Server.Name == client ? Server.Name : $"{client} -> {Server.Name}";
        var load = IsBurst ? $"{Connections} conn" : $"{Connections} conn {DurationS.ToString(CultureInfo.InvariantCulture)} s";
        var rate = Rate > 0 ? $" @{Rate.ToString(CultureInfo.InvariantCulture)}/s" : "";
        return $"{pair} [{Transport} {Workload} {load} {Payload} B{rate}]";
    }
}

/// <summary>How every experiment in a suite is run: repeats, pinning, deadlines.</summary>
public sealed record RunSettings(
    int Repeats = 5,
    int Warmups = 1,
    string ServerCpus = "0",
    string ClientCpus = "1",
    TimeSpan? ReadyTimeout = null,
    TimeSpan? ClientTimeout = null,
    bool KeepSamples = false,
    TimeSpan? DeadlineSlack = null,
    TimeSpan? SteadyWarmupCap = null)
{
    /// <summary>The longest a steady-state warm-up may take; zero turns it off (fixed warm-up passes only).</summary>
    public TimeSpan WarmupCap => SteadyWarmupCap ?? TimeSpan.FromSeconds(60);

    public TimeSpan Ready => ReadyTimeout ?? TimeSpan.FromSeconds(30);

    /// <summary>Per-connection deadline handed to clients (--timeout).</summary>
    public TimeSpan ConnectionTimeout => ClientTimeout ?? TimeSpan.FromSeconds(30);

    /// <summary>How long the harness lets a client run before it kills it with its process tree.</summary>
    public TimeSpan ClientDeadline(Experiment e) =>
        ConnectionTimeout + TimeSpan.FromSeconds(e.DurationS * 2) + (DeadlineSlack ?? TimeSpan.FromSeconds(30));
}
