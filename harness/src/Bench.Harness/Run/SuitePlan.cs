using Bench.Harness.Catalog;

namespace Bench.Harness.Run;

/// <summary>What a suite measures; every field has a command-line option (CommandLine/Commands.cs).</summary>
public sealed record SuiteOptions
{
    public IReadOnlyList<string>? Only { get; init; }
    /// <summary>The workloads to run (echo ones and variants' own, such as grpc-unary); null: all.</summary>
    public IReadOnlyList<string>? Workloads { get; init; }
    public IReadOnlyList<int>? Connections { get; init; }
    public IReadOnlyList<int> Payloads { get; init; } = [100];
    public double DurationS { get; init; } = 5;
    /// <summary>Open-loop rate; null derives it as half the closed-loop median of the same pair.</summary>
    public double? Rate { get; init; }
    public bool OpenLoop { get; init; } = true;
    public bool Sweep { get; init; }
    public bool Matrix { get; init; }
    public string ReferenceClient { get; init; } = "cpp-epoll";
    /// <summary>Also load gRPC unary servers with h2load, an independent HTTP/2 load generator.</summary>
    public bool H2Load { get; init; } = LoadTools.H2Load.IsInstalled;
    /// <summary>Connections for gRPC, memif and other implementation-defined workloads.</summary>
    public int VariantConnections { get; init; } = 200;

    public static SuiteOptions Quick => new()
    {
        Connections = [1000],
        DurationS = 1,
        VariantConnections = 16,
    };

    public bool Wants(string workload) => Workloads is null || Workloads.Contains(workload);

    public IReadOnlyList<int> BurstCounts => Connections ?? [10_000];
    public IReadOnlyList<int> PersistentCounts => Connections ?? [1_000];
}

/// <summary>An experiment whose open-loop rate is set from another experiment's measured closed-loop rate.</summary>
public sealed record PlannedExperiment(Experiment Experiment, Experiment? RateFrom = null);

/// <summary>Turns the catalog and the options into the list of experiments to run, in order.</summary>
public static class SuitePlan
{
    public static readonly int[] SweepConnections = [100, 1_000, 10_000];
    public static readonly int[] SweepPayloads = [64, 1024, 16 * 1024, 64 * 1024];

    public static IReadOnlyList<PlannedExperiment> Build(ImplementationCatalog catalog, SuiteOptions o)
    {
        var chosen = o.Only is { } only ? catalog.Select(only) : catalog.All.Where(i => i.InDefaultSuite).ToList();
        var echo = chosen.Where(i => i.Transports.Contains(Transports.Tcp) && i.Workloads.Intersect([Workloads.Burst, Workloads.Persistent]).Any()).ToList();
        var plan = new List<PlannedExperiment>();

        if (o.Matrix)
        {
            foreach (var server in echo.Where(i => i.HasServer))
                foreach (var client in echo.Where(i => i.HasClient && i.Workloads.Contains(Workloads.Burst)))
                    foreach (var c in o.BurstCounts)
                        plan.Add(new(new Experiment(server, client, Transports.Tcp, Workloads.Burst, c, o.Payloads[0], 0, 0)));
            return plan;
        }

        foreach (var impl in echo.Where(i => i.HasServer && i.HasClient))
            foreach (var workload in new[] { Workloads.Burst, Workloads.Persistent }.Where(w => o.Wants(w) && impl.Workloads.Contains(w)))
            {
                var burst = workload == Workloads.Burst;
                var counts = o.Sweep ? SweepConnections : burst ? o.BurstCounts : o.PersistentCounts;
                var cells = counts.SelectMany(c => o.Payloads.Select(p => (c, p)));
                if (o.Sweep) cells = cells.Concat(SweepPayloads.Select(p => (burst ? o.BurstCounts[0] : o.PersistentCounts[0], p))).Distinct();
                foreach (var (c, p) in cells)
                {
                    var closed = new Experiment(impl, impl, Transports.Tcp, workload, c, p, 0, burst ? 0 : o.DurationS);
                    plan.Add(new(closed));
                    if (!burst && o.OpenLoop && o.Rate is not 0)
                        plan.Add(new(closed with { Rate = o.Rate ?? double.NaN }, o.Rate is null ? closed : null));
                }
            }

        // One fixed client against every server separates server cost from client cost; held
        // connections (closed loop) are where server designs differ most.
        if (echo.FirstOrDefault(i => i.Name == o.ReferenceClient && i.HasClient) is { } reference)
            foreach (var server in echo.Where(i => i.HasServer && i != reference))
            {
                if (o.Wants(Workloads.Burst))
                    foreach (var c in o.BurstCounts)
                        plan.Add(new(new Experiment(server, reference, Transports.Tcp, Workloads.Burst, c, o.Payloads[0], 0, 0)));
                if (o.Wants(Workloads.Persistent))
                    foreach (var c in o.PersistentCounts)
                        plan.Add(new(new Experiment(server, reference, Transports.Tcp, Workloads.Persistent, c, o.Payloads[0], 0, o.DurationS)));
            }

        // gRPC, memif and other variants run their own workloads over each transport they speak.
        foreach (var impl in chosen.Where(i => i.HasServer && i.HasClient))
            foreach (var workload in impl.Workloads.Where(w => w is not (Workloads.Burst or Workloads.Persistent) && o.Wants(w)))
                foreach (var transport in impl.Transports.Where(t => t != Transports.Vsock))
                    // memif moves Ethernet frames: the sizes are minimum frames (64 B) and the echo's 100 B.
                    foreach (var payload in transport == Transports.Memif ? [64, 100] : o.Payloads)
                        plan.Add(new(new Experiment(impl, impl, transport, workload, o.VariantConnections, payload, 0, o.DurationS)));

        // The same unary echo under h2load, a load generator that is not ours; server-only
        // entries (a differently tuned server) get their figure this way.
        if (o.H2Load && o.Wants(GrpcUnary))
            foreach (var impl in chosen.Where(i => i.HasServer && i.Supports(Transports.Tcp, GrpcUnary)))
                foreach (var payload in o.Payloads)
                    plan.Add(new(new Experiment(impl, impl, Transports.Tcp, GrpcUnary, o.VariantConnections, payload, 0, o.DurationS, LoadTools.H2Load.Name)));
        return plan;
    }

    public const string GrpcUnary = "grpc-unary";
}
