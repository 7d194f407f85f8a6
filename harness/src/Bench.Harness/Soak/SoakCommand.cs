using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Machine;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;
using ScottPlot;

namespace Bench.Harness.Soak;

/// <summary>How long a soak runs, how it loads the server and how often it looks.</summary>
public sealed record SoakSettings(TimeSpan Duration, TimeSpan Interval, double RunSeconds, string ServerCpus, string ClientCpus);

/// <summary>
/// `soak NAME`: one server held under load for minutes with churn, its footprint sampled, and a
/// verdict on whether it leaks. The load is the implementation's own client, run again and again
/// for short runs; two of them overlap by half a run (one at a time where the server takes one
/// peer at a time), so connections keep closing and reopening while others stay open. Every few
/// seconds the server's resident memory, open descriptors and threads are read from /proc.
/// Everything lands in results/soak/&lt;run-id&gt;/ as it is measured: footprint.csv, clients.csv,
/// then soak.md and the charts.
/// </summary>
public static class SoakCommand
{
    /// <summary>One run of a client: when it ended, what it reported.</summary>
    private sealed record ClientRun(double EndSeconds, int Client, long Ok, long Failed, double ReqPerS, string Problem);

    /// <summary>
    /// The suite's own cell for this server under a client (its transport, connections and calls in flight): its own
    /// client where it has one, else the one the suite loads it with (a gRPC server without a client: the one load
    /// client for them all); null when the suite runs no client against it.
    /// </summary>
    public static Experiment? Cell(ImplementationCatalog catalog, Implementation server, Workload workload, int? connections)
    {
        var options = new SuiteOptions { Only = [server.Name], Workloads = [workload.Name], Connections = connections is { } c ? [c] : null, OpenLoop = false, LoadTools = [] };
        // Calls multiplexed over connections: as many in flight as connections at least, so every connection is held busy.
        if (workload.Multiplexes && connections is { } n) options = options with { InFlight = Math.Max(options.InFlight, n) };
        var cells = SuitePlan.Build(catalog, options).Select(p => p.Experiment).Where(x => x.Server == server && x.Load.Client is not null).ToList();
        return cells.FirstOrDefault(x => x.Load.Client == server) ?? cells.FirstOrDefault();
    }

    public static async Task<int> RunAsync(Experiment e, SoakSettings s, string resultsRoot, CancellationToken cancel)
    {
        var (runId, dir) = SuiteRunner.NewResultSet(resultsRoot);
        var clients = e.Workload.OnePeerAtATime ? 1 : 2;
        // Each client carries its share of the load: together they hold the experiment's.
        var share = e with { Connections = Math.Max(1, e.Connections / clients), InFlight = Math.Max(1, (e.Workload.Multiplexes ? e.InFlight : e.Connections) / clients) };
        share = share with { DurationS = s.RunSeconds };
        Console.Error.WriteLine($"bench: soak {runId}: {e.Server.Name} for {s.Duration.TotalMinutes:0.#} min under {clients} overlapping {e.Load.Name} client(s) of {share} each; results in {dir}");

        var scratch = Directory.CreateTempSubdirectory("bench-soak-").FullName;
        var footprint = new List<(double Seconds, Footprint F)>();
        var runs = new ConcurrentQueue<ClientRun>();
        string? died = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await using var server = await ServerProcess.StartAsync(e.Server, ServerProcess.Listen(e.Transport, e.Server.Name, scratch), s.ServerCpus, cancel);
            using var footprintCsv = new StreamWriter(Path.Combine(dir, "footprint.csv")) { AutoFlush = true };
            using var clientsCsv = new StreamWriter(Path.Combine(dir, "clients.csv")) { AutoFlush = true };
            footprintCsv.WriteLine("seconds,rss_kb,fds,threads");
            clientsCsv.WriteLine("end_seconds,client,ok,failed,req_per_s,problem");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            stop.CancelAfter(s.Duration);

            var loops = Enumerable.Range(0, clients).Select(i => Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(s.RunSeconds * i / clients), stop.Token);
                while (!stop.IsCancellationRequested && !server.HasExited)
                {
                    var run = await RunClientAsync(share, server, i, s, scratch, clock, cancel);
                    runs.Enqueue(run);
                    lock (clientsCsv) clientsCsv.WriteLine(Invariant($"{run.EndSeconds:F1},{run.Client},{run.Ok},{run.Failed},{run.ReqPerS:F0},{run.Problem.Replace(',', ';')}"));
                }
            })).ToList();

            var lastNote = 0.0;
            while (!stop.IsCancellationRequested)
            {
                if (ProcFs.ReadFootprint(server.Pid) is not { } now || server.HasExited)
                {
                    died = $"the server exited after {clock.Elapsed.TotalMinutes:F1} min: {new ProcessExitedException(server.Process).Message}";
                    break;
                }
                var t = clock.Elapsed.TotalSeconds;
                footprint.Add((t, now));
                footprintCsv.WriteLine(Invariant($"{t:F1},{now.RssKb},{now.Fds},{now.Threads}"));
                if (t - lastNote >= 30 || footprint.Count == 1)
                {
                    lastNote = t;
                    Console.Error.WriteLine(Invariant($"[soak {t / 60:F1}/{s.Duration.TotalMinutes:0.#} min] rss {now.RssKb / 1024.0:F1} MiB, {now.Fds} descriptors, {now.Threads} threads, {runs.Count} client runs"));
                }
                try { await Task.Delay(s.Interval, stop.Token); } catch (OperationCanceledException) { }
            }
            stop.Cancel();
            try { await Task.WhenAll(loops); } catch (OperationCanceledException) { }
            if (!server.HasExited && !await server.StopAsync())
                Console.Error.WriteLine($"bench: {e.Server.Name} ignored SIGTERM for {ServerProcess.StopGrace.TotalSeconds:F0} s and was killed");
        }
        catch (ServerStartException x) { died = x.Message; }
        finally { Directory.Delete(scratch, recursive: true); }

        var warmup = LeakDetector.WarmupSeconds(clock.Elapsed.TotalSeconds);
        var trends = new[]
        {
            LeakDetector.Judge("resident memory", "MiB", footprint.Select(f => (f.Seconds, f.F.RssKb / 1024.0)).ToList(), warmup, floor: 4, share: 0.05),
            LeakDetector.Judge("open descriptors", "", footprint.Select(f => (f.Seconds, (double)f.F.Fds)).ToList(), warmup, floor: 8, share: 0.05),
            LeakDetector.Judge("threads", "", footprint.Select(f => (f.Seconds, (double)f.F.Threads)).ToList(), warmup, floor: 4, share: 0.10),
        };
        var caption = $"{(await MachineFacts.ReadAsync()).Caption}; server cpu {s.ServerCpus}, client cpu {s.ClientCpus}; run {runId}";
        var report = Write(dir, e, s, clients, warmup, trends, footprint, [.. runs], died, caption);
        Console.WriteLine(File.ReadAllText(report));
        var failed = runs.Count(r => r.Failed > 0 || r.Problem.Length > 0);
        return died is null && failed == 0 && !trends.Any(t => t.Leaks) && !cancel.IsCancellationRequested ? 0 : 1;
    }

    private static async Task<ClientRun> RunClientAsync(Experiment e, ServerProcess server, int index, SoakSettings s, string scratch,
        System.Diagnostics.Stopwatch clock, CancellationToken cancel)
    {
        var args = ContractArguments.Client([.. e.Load.Command, .. ContractArguments.Address(server.Ready)], e.Workload,
            e.Connections, e.InFlight, e.Payload, e.Rate, e.DurationS, samplesPath: null, TimeSpan.FromSeconds(30));
        ClientRun Ended(long ok, long failed, double rate, string problem) => new(clock.Elapsed.TotalSeconds, index, ok, failed, rate, problem);
        try
        {
            await using var client = ManagedProcess.Start($"client {e.Load.Name}", args, e.Load.Folder, s.ClientCpus);
            var result = ResultLine.Parse(await client.WaitForLineAsync(ResultLine.Matches, TimeSpan.FromSeconds(s.RunSeconds * 2 + 60), cancel));
            var exit = await client.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancel);
            return Ended(result.Ok, result.Failed, result.WallNs > 0 ? result.Ok / (result.WallNs / 1e9) : 0,
                exit == 0 ? "" : $"exit status {exit}: {client.StderrTail}");
        }
        catch (Exception x) when (x is ProcessStartException or ProcessExitedException or TimeoutException or FormatException)
        {
            return Ended(0, 0, 0, x.Message);
        }
    }

    private static string Write(string dir, Experiment e, SoakSettings s, int clients, double warmup, IReadOnlyList<Trend> trends,
        IReadOnlyList<(double Seconds, Footprint F)> footprint, IReadOnlyList<ClientRun> runs, string? died, string caption)
    {
        var md = new StringBuilder();
        var leaks = trends.Where(t => t.Leaks).Select(t => t.Figure).ToList();
        var failed = runs.Where(r => r.Failed > 0 || r.Problem.Length > 0).ToList();
        var settled = trends.Where(t => t.Settled).Select(t => t.Figure).ToList();
        var verdict = died is not null ? $"the server died: {died}"
            : leaks.Count > 0 ? $"leaks: {string.Join(", ", leaks)} grew steadily after the warm-up"
            : settled.Count > 0 ? $"no leak: {string.Join(", ", settled)} rose after the warm-up and then settled"
            : "no leak: nothing grew steadily after the warm-up";
        md.AppendLine($"## Soak: {e.Server.Name}, {s.Duration.TotalMinutes:0.#} min");
        md.AppendLine();
        md.AppendLine($"**{verdict}; {runs.Count} client runs, {failed.Count} with failures.**");
        md.AppendLine();
        md.AppendLine(Invariant($"Load: {clients} overlapping {e.Load.Name} client(s) ({e.Workload.Name} over {e.Transport}, {s.RunSeconds:0.#} s runs, so connections close and reopen every {s.RunSeconds / clients:0.#} s while the others stay), server on cpu {s.ServerCpus}, clients on cpu {s.ClientCpus}; footprint read every {s.Interval.TotalSeconds:0.#} s; the first {warmup:F0} s are warm-up."));
        md.AppendLine();
        md.AppendLine("| figure | after warm-up | at the end | growth after warm-up (Theil-Sen) | allowed | trend p (Mann-Kendall) | growth over the second half | its p | verdict |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var t in trends)
            md.AppendLine(Invariant($"| {t.Figure} | {t.AtStart:0.#} {t.Unit} | {t.AtEnd:0.#} {t.Unit} | {t.Growth:+0.#;-0.#;0} {t.Unit} | {t.Allowed:0.#} {t.Unit} | {t.P:0.####} | {t.LastHalfGrowth:+0.#;-0.#;0} {t.Unit} | {t.LastHalfP:0.####} | {t.Verdict} |"));
        md.AppendLine();
        if (runs.Count > 0)
        {
            var byMinute = runs.Where(r => r.ReqPerS > 0).GroupBy(r => (int)(r.EndSeconds / 60)).OrderBy(g => g.Key)
                .Select(g => Invariant($"{g.Key + 1}: {g.Sum(r => r.ReqPerS) / g.Count() * clients:N0}")).ToList();
            md.AppendLine($"Rate, requests/s of all clients together, by minute: {string.Join("; ", byMinute)}.");
            md.AppendLine();
        }
        foreach (var r in failed.Take(5)) md.AppendLine(Invariant($"- client {r.Client} run ending at {r.EndSeconds:F0} s: {r.Failed} failed {r.Problem}"));
        md.AppendLine("A series rises when, after the warm-up, it trends up (Mann-Kendall p < 0.01) and its Theil-Sen line grows by more than allowed (4 MiB or 5% of memory, 8 or 5% of descriptors, 4 or 10% of threads). It leaks when its second half is still rising too (p < 0.01, by more than half the allowance): a leak grows for as long as the server runs, while a heap or a pool that takes minutes to reach its size rises and then settles. footprint.csv and clients.csv hold every sample.");
        md.AppendLine();
        foreach (var chart in Charts(dir, footprint, runs, clients, warmup, caption)) md.AppendLine($"![{chart}]({chart})");
        var path = Path.Combine(dir, "soak.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    /// <summary>The footprint and the rate over time, the warm-up marked.</summary>
    private static IEnumerable<string> Charts(string dir, IReadOnlyList<(double Seconds, Footprint F)> footprint, IReadOnlyList<ClientRun> runs, int clients,
        double warmup, string caption)
    {
        if (footprint.Count < 2) yield break;
        double[] minutes = [.. footprint.Select(f => f.Seconds / 60)];
        foreach (var (file, title, axis, values) in new (string, string, string, Func<Footprint, double>[])[]
        {
            ("soak-memory.png", "Server resident memory over the soak", "MiB", [f => f.RssKb / 1024.0]),
            ("soak-descriptors.png", "Server descriptors and threads over the soak", "count", [f => f.Fds, f => f.Threads]),
        })
        {
            var plot = new Plot();
            plot.Title(title, size: 15);
            plot.XLabel($"minutes - {caption}", size: 11);
            plot.YLabel(axis);
            foreach (var (value, i) in values.Select((v, i) => (v, i)))
            {
                var line = plot.Add.ScatterLine(minutes, footprint.Select(f => value(f.F)).ToArray());
                line.LegendText = values.Length == 1 ? axis : i == 0 ? "descriptors" : "threads";
            }
            plot.Add.VerticalLine(warmup / 60, color: Colors.Gray, pattern: LinePattern.Dashed).LegendText = "end of warm-up";
            plot.ShowLegend();
            plot.SavePng(Path.Combine(dir, file), 900, 420);
            yield return file;
        }
        var good = runs.Where(r => r.ReqPerS > 0).OrderBy(r => r.EndSeconds).ToList();
        if (good.Count < 2) yield break;
        var rate = new Plot();
        rate.Title("Rate over the soak (each client run, times the clients)", size: 15);
        rate.XLabel($"minutes - {caption}", size: 11);
        rate.YLabel("requests/s");
        rate.Add.ScatterPoints(good.Select(r => r.EndSeconds / 60).ToArray(), good.Select(r => r.ReqPerS * clients).ToArray());
        rate.SavePng(Path.Combine(dir, "soak-rate.png"), 900, 420);
        yield return "soak-rate.png";
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
