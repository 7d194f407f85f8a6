using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>
/// A variant's own protocol (gRPC, memif), where one connection carries many requests at once:
/// connections and requests in flight are chosen separately. Checked through a one-request run
/// of its load generator, which verifies every byte, and loaded by independent tools that drive it.
/// </summary>
public abstract class MultiplexedWorkload : Workload
{
    public override bool Multiplexes => true;

    /// <summary>Whether this workload runs over a transport (memif only over memif, gRPC over sockets).</summary>
    public abstract bool RunsOver(string transport);

    /// <summary>Payload sizes of a suite's cells.</summary>
    protected virtual IReadOnlyList<int> Payloads(SuiteOptions o) => o.Payloads;

    /// <summary>The short name in chart labels, e.g. "unary".</summary>
    public abstract string ShortName { get; }

    public override IEnumerable<PlannedExperiment> Plan(SuitePlanContext p)
    {
        var inFlight = p.Options.InFlight;
        // Never more connections than calls: the extra ones would carry nothing.
        var counts = p.ConnectionsFor(this).Select(c => Math.Min(c, inFlight)).Distinct().ToList();
        // Each server with its own client, or else with the family's shared client (one load client for every gRPC server).
        foreach (var impl in p.Chosen.Where(i => i.HasServer && i.Workloads.Contains(this)))
            if ((impl.HasClient ? impl : SharedClient(p)) is { } client)
                foreach (var transport in TransportsOf(impl, p.Options).Where(client.Transports.Contains))
                    foreach (var payload in Payloads(p.Options))
                        foreach (var c in counts)
                            yield return new(p.Experiment(impl, LoadGenerator.ClientOf(client), transport, this, c, inFlight, payload));

        // The same cells under a load generator that is not ours; server-only entries get their figure this way.
        foreach (var tool in p.Tools.Where(t => t.Drives(this)))
            foreach (var impl in p.Chosen.Where(i => i.HasServer && i.Workloads.Contains(this)))
                foreach (var transport in TransportsOf(impl, p.Options).Where(tool.Speaks))
                    foreach (var payload in Payloads(p.Options))
                        foreach (var c in counts)
                            yield return new(p.Experiment(impl, LoadGenerator.ToolOf(tool), transport, this, c, inFlight, payload));
    }

    /// <summary>The client that loads this family's servers that have none of their own; null: such servers get only the independent tools' rows.</summary>
    protected virtual Implementation? SharedClient(SuitePlanContext p) => null;

    /// <summary>The transports an implementation runs this workload over in a suite: each it speaks (no vsock route here), the first only in --quick.</summary>
    private IEnumerable<string> TransportsOf(Implementation impl, SuiteOptions o)
    {
        var all = impl.Transports.Where(t => t != Transports.Vsock && RunsOver(t));
        return o.IsQuick ? all.Take(1) : all;
    }

    /// <summary>One bar chart of a family's rates: all its workloads, transports and load tools on one scale.</summary>
    protected sealed class FamilyRates(string file, string title, string axis, Func<ExperimentStats, string> label) : IChartSource
    {
        public IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats) =>
            [canvas.Bars(file, title, Figures.ReqPerS, stats, label, axis)];
    }
}
