using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Workloads;

namespace Bench.Harness.Run;

/// <summary>What a suite measures; every field has a command-line option (CommandLine/Commands.cs).</summary>
public sealed record SuiteOptions
{
    public IReadOnlyList<string>? Only { get; init; }
    /// <summary>The workloads to run, by name (echo ones and variants' own); null: all.</summary>
    public IReadOnlyList<string>? Workloads { get; init; }
    /// <summary>Transport connections; null: each workload's default.</summary>
    public IReadOnlyList<int>? Connections { get; init; }
    /// <summary>Requests outstanding at once for workloads that multiplex a connection (gRPC, memif).</summary>
    public int InFlight { get; init; } = 200;
    public IReadOnlyList<int> Payloads { get; init; } = [100];
    public double DurationS { get; init; } = 5;
    /// <summary>Open-loop rate; null derives it as half the closed-loop median of the same pair.</summary>
    public double? Rate { get; init; }
    public bool OpenLoop { get; init; } = true;
    public bool Sweep { get; init; }
    public bool Matrix { get; init; }
    public string ReferenceClient { get; init; } = "cpp-epoll";
    /// <summary>The gRPC load client every gRPC server without a client of its own is loaded by (the lean C# one).</summary>
    public string GrpcClient { get; init; } = "csharp-grpc";
    /// <summary>Independent load generators that also load the workloads they drive (every one installed, unless turned off).</summary>
    public IReadOnlyList<IIndependentLoadTool> LoadTools { get; init; } = IndependentLoadTools.All.Where(t => t.IsInstalled).ToList();

    /// <summary>
    /// --quick: a small suite for CI and PR checks, every language and variant once: each
    /// workload sizes itself down (a 1,000-connection burst, one transport per variant, own
    /// clients only), 1 s runs, closed loop only.
    /// </summary>
    public bool IsQuick { get; init; }

    public static SuiteOptions Quick => new()
    {
        IsQuick = true,
        DurationS = 1,
        InFlight = 16,
        OpenLoop = false,
    };

    public bool Wants(Workload workload) => Workloads is null || Workloads.Contains(workload.Name);
}

/// <summary>An experiment whose open-loop rate is set from another experiment's measured closed-loop rate.</summary>
public sealed record PlannedExperiment(Experiment Experiment, Experiment? RateFrom = null)
{
    /// <summary>
    /// The open-loop rate from the rows of <see cref="RateFrom"/>: half the median closed-loop
    /// peak, loaded enough to queue, not so loaded that it only measures overload. Null when no
    /// good closed-loop run is there to derive it from.
    /// </summary>
    public double? DerivedRate(IEnumerable<Results.RunRecord> rows)
    {
        var closed = rows.Where(r => r.Status == Results.RunStatus.Ok && r.Experiment == RateFrom!.Key && r.ReqPerS > 0).Select(r => r.ReqPerS!.Value).ToList();
        return closed.Count == 0 ? null : Math.Round(Results.Statistics.Median(closed) / 2);
    }
}

/// <summary>What a workload plans from: the implementations chosen, the options, and the whole catalog (for a load client not chosen itself).</summary>
public sealed record SuitePlanContext(IReadOnlyList<Implementation> Chosen, SuiteOptions Options, ImplementationCatalog Catalog)
{
    public IReadOnlyList<IIndependentLoadTool> Tools => Options.LoadTools;

    public IReadOnlyList<int> ConnectionsFor(Workload w) => w.ConnectionCounts(Options);

    public Experiment Experiment(Implementation server, LoadGenerator load, string transport, Workload w, int connections, int inFlight, int payload) =>
        new(server, load, transport, w, connections, inFlight, payload, 0, w.IsTimed ? Options.DurationS : 0);
}

/// <summary>Turns the catalog and the options into the list of experiments to run: each workload plans its own cells.</summary>
public static class SuitePlan
{
    public static IReadOnlyList<PlannedExperiment> Build(ImplementationCatalog catalog, SuiteOptions o)
    {
        var chosen = o.Only is { } only ? catalog.Select(only) : catalog.All.Where(i => i.InDefaultSuite).ToList();
        var context = new SuitePlanContext(chosen, o, catalog);
        if (o.Matrix) return Workload.All.SelectMany(w => w.PlanMatrix(context)).ToList();
        return Workload.All.Where(o.Wants).SelectMany(w => w.Plan(context)).ToList();
    }

    /// <summary>
    /// The plan in cells: experiments that differ only in what loads the server (and, with
    /// <paramref name="acrossServers"/>, in which server is loaded), together, in the order each
    /// cell first appears, so a suite can interleave their repeats. An open-loop experiment whose
    /// rate is derived is a cell of its own: its rate comes from its own load's closed loop, so
    /// it is not the same load as another's.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<PlannedExperiment>> Cells(IReadOnlyList<PlannedExperiment> plan, bool acrossServers = false) =>
        plan.Select((p, at) => (p, key: p.RateFrom is null ? CellKey(p.Experiment, acrossServers) : (object)at))
            .GroupBy(x => x.key, x => x.p)
            .Select(IReadOnlyList<PlannedExperiment> (g) => [.. g])
            .ToList();

    private static object CellKey(Experiment e, bool acrossServers) =>
        (acrossServers ? "" : e.Server.Name, e.Transport, e.Workload.Name, e.Connections, e.InFlight, e.Payload, e.Rate, e.DurationS);
}
