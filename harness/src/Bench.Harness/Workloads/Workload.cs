using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.Processes;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>
/// What a client does against a server, and everything the harness does differently for it:
/// which cells a suite plans, the client arguments it adds to the contract's, how a server is
/// verified before it is timed, how it warms up, its report section and its charts. One type
/// per workload in this folder; the rest of the harness asks the type, never the name.
/// </summary>
public abstract class Workload : IChartSource
{
    /// <summary>The name manifests, --workload and runs.csv use.</summary>
    public abstract string Name { get; }

    /// <summary>One line for --help.</summary>
    public abstract string Description { get; }

    /// <summary>What an implementation runs when its manifest names no workloads: the contract's two (docs/contract.md).</summary>
    public virtual bool IsManifestDefault => false;

    /// <summary>Position in plans and reports: echo workloads first, then the variants.</summary>
    public abstract int Order { get; }

    /// <summary>Each request opens and closes its own connection (a burst): runs are spaced for TIME_WAIT and report connections/s.</summary>
    public virtual bool OneConnectionPerRequest => false;

    /// <summary>Runs for a --duration (every workload but a burst, which ends when its connections do).</summary>
    public virtual bool IsTimed => true;

    /// <summary>A raw TCP echo connection has exactly one request in flight; multiplexed workloads choose in-flight separately.</summary>
    public virtual bool Multiplexes => false;

    /// <summary>A server of this workload serves one peer at a time, so two clients cannot overlap (a soak runs one).</summary>
    public virtual bool OnePeerAtATime => false;

    /// <summary>The figure a comparison and the section's headline read.</summary>
    public virtual Figure Headline => Figures.ReqPerS;

    /// <summary>Transport connections when none are given (the suite's, and `load`'s).</summary>
    public abstract int DefaultConnections(SuiteOptions o);

    /// <summary>The connection counts a suite runs: --connections, else the default.</summary>
    public virtual IReadOnlyList<int> ConnectionCounts(SuiteOptions o) => o.Connections ?? [DefaultConnections(o)];

    /// <summary>The cells of this workload a suite runs, in order.</summary>
    public abstract IEnumerable<PlannedExperiment> Plan(SuitePlanContext plan);

    /// <summary>--matrix: every client against every server, for the workloads that draw one.</summary>
    public virtual IEnumerable<PlannedExperiment> PlanMatrix(SuitePlanContext plan) => [];

    /// <summary>The arguments this workload adds to the contract's (docs/contract.md, "Clients").</summary>
    public IEnumerable<string> ClientArguments(int inFlight, double rate, double durationS) =>
    [
        .. Multiplexes ? ["--in-flight", Invariant(inFlight)] : Array.Empty<string>(),
        .. IsTimed ? ["--duration", Invariant(durationS)] : Array.Empty<string>(),
        .. rate > 0 ? ["--rate", Invariant(rate)] : Array.Empty<string>(),
    ];

    /// <summary>
    /// Checks a started server before anything is timed; null when it is right. The default runs
    /// the experiment's own load generator once at its smallest (it verifies every byte itself).
    /// </summary>
    public virtual async Task<string?> VerifyAsync(Experiment e, ServerProcess server, Func<Experiment, Task<RunRecord>> run, CancellationToken cancel)
    {
        var row = await run(e with { Connections = 1, InFlight = 1, DurationS = Math.Min(e.DurationS, 1), Rate = 0 });
        return row.Status == RunStatus.Ok && row.Ok > 0 ? null : $"a one-connection check run failed: {row.Status}: {row.Error}";
    }

    /// <summary>Closed-loop timed runs warm up until their rate is steady; bursts and open-loop runs take fixed passes.</summary>
    public virtual bool WarmsUpToSteadyRate(Experiment e) => IsTimed && e.Rate == 0;

    /// <summary>The report section a group of repeats belongs to.</summary>
    public abstract ReportSection Section(ExperimentStats s);

    /// <summary>How the load reads in a table, e.g. "1000 conn @5000/s".</summary>
    public virtual string DescribeLoad(ExperimentStats s) =>
        Multiplexes ? $"{Name} over {s.Transport}, {(s.Connections > 0 ? $"{s.Connections} conn, " : "")}{s.InFlight} in flight"
        : s.Rate > 0 ? string.Create(CultureInfo.InvariantCulture, $"{s.Connections} conn @{s.Rate:F0}/s") : $"{s.Connections} conn";

    /// <summary>What draws this workload's charts; workloads of one family share one (their rates on one chart).</summary>
    public virtual IChartSource Charts => this;

    public virtual IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats) => [];

    /// <summary>Markdown tables of this workload's own for the summary, beside its section's (its experiments only); none by default.</summary>
    public virtual IEnumerable<string> Tables(IReadOnlyList<ExperimentStats> stats) => [];

    /// <summary>Rows written before the in_flight column existed: a variant's connections column held its calls in flight.</summary>
    public virtual void UpgradeLegacyRow(RunRecord row)
    {
        if (row.InFlight is not null) return;
        row.InFlight = row.Connections;
        if (Multiplexes) row.Connections = 0; // not recorded then
    }

    public override string ToString() => Name;

    protected static string Invariant(double v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every workload in this assembly, found by type, in report order.</summary>
    public static IReadOnlyList<Workload> All { get; } = typeof(Workload).Assembly.GetTypes()
        .Where(t => t.IsSubclassOf(typeof(Workload)) && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null)
        .Select(t => (Workload)Activator.CreateInstance(t)!)
        .OrderBy(w => w.Order).ToList();

    public static T Get<T>() where T : Workload => All.OfType<T>().Single();

    public static Workload? Find(string name) => All.FirstOrDefault(w => w.Name == name);

    /// <summary>A workload as a results file names it; one this harness no longer knows still reads (as a variant).</summary>
    public static Workload FromResults(string name) => Find(name) ?? new UnknownWorkload(name);

    public static string Names => string.Join(", ", All.Select(w => w.Name));
}

/// <summary>A report section: where it goes and its heading.</summary>
public sealed record ReportSection(int Order, string Title);

/// <summary>A workload named in an old results file that this harness does not know.</summary>
internal sealed class UnknownWorkload(string name) : Workload
{
    public override string Name => name;
    public override string Description => "not known to this harness";
    public override int Order => 1000;
    public override bool Multiplexes => true;
    public override int DefaultConnections(SuiteOptions o) => 1;
    public override IEnumerable<PlannedExperiment> Plan(SuitePlanContext plan) => [];
    public override ReportSection Section(ExperimentStats s) => new(Order, $"{name} (a workload this harness does not know)");
}
