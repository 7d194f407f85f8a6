using Bench.Harness.Results;

namespace Bench.Harness.Report;

/// <summary>The repeats of one experiment, reduced to the figures a report shows.</summary>
public sealed record ExperimentStats(
    string Server, string Client, string Transport, string Workload, int Connections, int Payload, double Rate,
    IReadOnlyList<RunRecord> Runs)
{
    /// <summary>Only runs where every request echoed exactly count towards figures.</summary>
    public IReadOnlyList<RunRecord> Good => Runs.Where(r => r.Status == RunStatus.Ok).ToList();

    public Summary? Of(Func<RunRecord, double?> figure)
    {
        var values = Good.Select(figure).OfType<double>().ToList();
        return values.Count == 0 ? null : Statistics.Summarize(values);
    }

    public Summary? Wall => Of(r => r.WallMs);
    public Summary? ConnPerS => Of(r => r.ConnPerS);
    public Summary? ReqPerS => Of(r => r.ReqPerS);
    public long Failed => Runs.Sum(r => r.Failed);
    public bool IsBurst => Workload == "burst";
    public bool IsOwnPair => Server == Client;
    public string Pair => IsOwnPair ? Server : $"{Server} ({Client} client)";
    public bool IsVariant => Workload is not ("burst" or "persistent");
    public string Load => IsVariant ? $"{Workload} over {Transport}, {Connections} in flight"
        : Rate > 0 ? $"{Connections} conn @{Rate:F0}/s" : $"{Connections} conn";

    /// <summary>The side that limited most of the good runs.</summary>
    public string Bound => Good.GroupBy(r => r.Bound).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault() ?? "";

    public IEnumerable<string> Statuses => Runs.Where(r => r.Status != RunStatus.Ok).Select(r => $"{r.Status}: {r.Error}").Distinct();

    public static IReadOnlyList<ExperimentStats> Group(IEnumerable<RunRecord> rows) =>
        rows.GroupBy(r => r.Experiment)
            .Select(g => new ExperimentStats(g.Key.Server, g.Key.Client, g.Key.Transport, g.Key.Workload, g.Key.Connections, g.Key.Payload, g.Key.Rate, g.ToList()))
            .ToList();
}
