using Bench.Harness.Results;
using Bench.Harness.Workloads;

namespace Bench.Harness.Report;

/// <summary>The repeats of one experiment, reduced to the figures a report shows.</summary>
public sealed record ExperimentStats(
    string Server, string Generator, string Transport, Workload Workload, int Connections, int InFlight, int Payload, double Rate,
    IReadOnlyList<RunRecord> Runs)
{
    /// <summary>Only runs where every request echoed exactly count towards figures.</summary>
    public IReadOnlyList<RunRecord> Good => Runs.Where(r => r.Status == RunStatus.Ok).ToList();

    public Summary? Of(Func<RunRecord, double?> figure)
    {
        var values = Good.Select(figure).OfType<double>().ToList();
        return values.Count == 0 ? null : Statistics.Summarize(values);
    }

    public Summary? Of(Figure figure) => Of(figure.Get);

    /// <summary>The median of a figure over the good repeats, printed as the figure says.</summary>
    public string Median(Figure figure) => figure.Print(Of(figure)?.Median);

    public Summary? Wall => Of(Figures.WallMs);
    public Summary? ConnPerS => Of(Figures.ConnPerS);
    public Summary? ReqPerS => Of(Figures.ReqPerS);
    public long Failed => Runs.Sum(r => r.Failed);

    /// <summary>The client implementation that made the load, empty when an independent tool did.</summary>
    public string Client => Runs[0].Client;

    /// <summary>The implementation's own client made the load (not a reference client, not an independent tool).</summary>
    public bool IsOwnPair => Server == Generator;
    public string Pair => IsOwnPair ? Server : Client.Length > 0 ? $"{Server} ({Generator} client)" : $"{Server} ({Generator})";
    public string Load => Workload.DescribeLoad(this);

    /// <summary>The side that limited most of the good runs.</summary>
    public string Bound => Good.GroupBy(r => r.Bound).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault() ?? "";

    public IEnumerable<string> Statuses => Runs.Where(r => r.Status != RunStatus.Ok).Select(r => $"{r.Status}: {r.Error}").Distinct();

    public static IReadOnlyList<ExperimentStats> Group(IEnumerable<RunRecord> rows) =>
        rows.GroupBy(r => r.Experiment)
            .Select(g => new ExperimentStats(g.Key.Server, g.Key.Generator, g.Key.Transport, Workload.FromResults(g.Key.Workload),
                g.Key.Connections, g.Key.InFlight, g.Key.Payload, g.Key.Rate, g.ToList()))
            .ToList();
}
