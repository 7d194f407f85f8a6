using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Processes;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>
/// The raw TCP echo every language implements (docs/contract.md): a connection carries one
/// request at a time, so requests in flight equal connections, and the harness checks the
/// server byte for byte itself before timing it.
/// </summary>
public abstract class EchoWorkload : Workload
{
    public static readonly int[] SweepConnections = [100, 1_000, 10_000];
    public static readonly int[] SweepPayloads = [64, 1024, 16 * 1024, 64 * 1024];

    public static bool SpeaksEcho(Implementation i) => i.Transports.Contains(Transports.Tcp) && i.Workloads.Any(w => w is EchoWorkload);

    public override async Task<string?> VerifyAsync(Experiment e, ServerProcess server, Func<Experiment, Task<RunRecord>> run, CancellationToken cancel)
    {
        if (e.Transport != Transports.Tcp) return await base.VerifyAsync(e, server, run, cancel);
        var (host, port) = server.Ready.TcpEndpoint;
        return await EchoVerifier.VerifyAsync(host, port, TimeSpan.FromSeconds(10), cancel);
    }

    /// <summary>Each implementation with its own client (over the sweep when asked), then one reference client against every other server.</summary>
    public override IEnumerable<PlannedExperiment> Plan(SuitePlanContext p)
    {
        var o = p.Options;
        var echo = p.Chosen.Where(i => SpeaksEcho(i) && i.Workloads.Contains(this)).ToList();
        var defaults = p.ConnectionsFor(this);
        foreach (var impl in echo.Where(i => i.HasServer && i.HasClient))
        {
            var counts = o.Sweep ? SweepConnections : defaults;
            var cells = counts.SelectMany(c => o.Payloads.Select(b => (c, b)));
            if (o.Sweep) cells = cells.Concat(SweepPayloads.Select(b => (defaults[0], b))).Distinct();
            foreach (var (c, b) in cells)
                foreach (var planned in Cells(p.Experiment(impl, LoadGenerator.ClientOf(impl), Transports.Tcp, this, c, c, b), o))
                    yield return planned;
        }

        // One fixed client against every server separates server cost from client cost (not in --quick).
        if (!o.IsQuick && echo.FirstOrDefault(i => i.Name == o.ReferenceClient && i.HasClient) is { } reference)
            foreach (var server in echo.Where(i => i.HasServer && i != reference))
                foreach (var c in defaults)
                    yield return new(p.Experiment(server, LoadGenerator.ClientOf(reference), Transports.Tcp, this, c, c, o.Payloads[0]));
    }

    /// <summary>The experiments one own-pair cell becomes (persistent adds its open-loop twin).</summary>
    protected virtual IEnumerable<PlannedExperiment> Cells(Experiment closed, SuiteOptions o) => [new(closed)];

    public override ReportSection Section(ExperimentStats s) => new(Order + (s.IsOwnPair ? 0 : 1),
        $"{Title}: {(s.IsOwnPair ? "each implementation with its own client" : "every server with one reference client")}");

    /// <summary>The section and chart title, e.g. "Burst".</summary>
    protected abstract string Title { get; }

    /// <summary>Bar charts of the headline figure, latency percentiles and scaling, for closed-loop TCP runs.</summary>
    public override IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats)
    {
        var closed = stats.Where(s => s.Transport == Transports.Tcp && s.Rate == 0).ToList();
        foreach (var group in closed.GroupBy(s => (s.Connections, s.Payload)))
        {
            var (conns, payload) = group.Key;
            var own = group.Where(s => s.IsOwnPair).ToList();
            var others = group.Where(s => !s.IsOwnPair).ToList();
            // One fixed client against every server (with that client's own server); a matrix is the heatmap instead.
            var reference = others.Select(s => s.Generator).Distinct().Count() == 1
                ? [.. own.Where(s => s.Server == others[0].Generator), .. others] : new List<ExperimentStats>();
            var what = $"{conns:N0} connections, {ChartCanvas.Bytes(payload)}";
            foreach (var (figure, suffix) in BarFigures)
            {
                yield return canvas.Bars($"{Name}-{conns}-{payload}-{suffix}.png", $"{Title}, {what}: {figure.Label} (median, min-max)", figure, own);
                if (figure == Headline && reference.Count > 0)
                    yield return canvas.Bars($"{Name}-{conns}-{payload}-{suffix}-reference.png",
                        $"{Title}, {what}, one reference client ({reference[0].Generator}): {figure.Label}", figure, reference);
            }
            yield return canvas.Percentiles($"{Name}-{conns}-{payload}-latency.png", $"{Title}, {what}: latency percentiles (median of repeats)", own);
        }

        var ownPairs = closed.Where(s => s.IsOwnPair).ToList();
        var scale = Headline == Figures.WallMs ? Figures.ConnPerS : Headline;
        yield return canvas.Scaling($"scaling-connections-{Name}.png", $"{Title}: scaling with connections (100 B)", "connections",
            ownPairs.Where(s => s.Payload == 100), s => s.Connections, scale);
        var most = ownPairs.Select(s => s.Connections).DefaultIfEmpty().Max();
        yield return canvas.Scaling($"scaling-payload-{Name}.png", $"{Title}: scaling with payload", "payload (bytes)",
            ownPairs.Where(s => s.Connections == most), s => s.Payload, scale);
    }

    /// <summary>The bar charts each (connections, payload) cell gets, with the file-name suffix of each.</summary>
    protected abstract IReadOnlyList<(Figure Figure, string Suffix)> BarFigures { get; }
}
