using System.Globalization;
using Bench.Harness.Results;
using ScottPlot;

namespace Bench.Harness.Report;

/// <summary>
/// The PNG charts of a result set, drawn from the CSV rows alone. Sized for a pull request
/// (900 px wide); every chart names its workload in the title and the machine below the axis.
/// </summary>
public static class Charts
{
    private const int Width = 900, Height = 500;

    /// <summary>Draws every chart the rows have data for; returns (file name, what it shows).</summary>
    public static IReadOnlyList<(string File, string Title)> DrawAll(string dir, IReadOnlyList<ExperimentStats> stats, string machine)
    {
        var drawn = new List<(string, string)>();
        void Add(string? file, string title) { if (file is not null) drawn.Add((file, title)); }

        foreach (var group in stats.Where(s => s.Transport == "tcp" && s.Rate == 0).GroupBy(s => (s.Workload, s.Connections, s.Payload)))
        {
            var (workload, conns, payload) = group.Key;
            var own = group.Where(s => s.IsOwnPair).ToList();
            // One fixed client against every server; a matrix (many clients) is drawn as the heatmap instead.
            var others = group.Where(s => !s.IsOwnPair).ToList();
            // The reference client's own server belongs in that chart too, measured by the same client.
            var reference = others.Select(s => s.Client).Distinct().Count() == 1
                ? [.. own.Where(s => s.Server == others[0].Client), .. others] : new List<ExperimentStats>();
            var what = $"{conns:N0} connections, {Bytes(payload)}";
            if (workload == "burst")
            {
                Add(Bars(dir, $"burst-{conns}-{payload}-wall.png", $"Burst, {what}: wall time (median, min-max)", "wall time (ms)", own, s => s.Wall, machine), $"burst wall time, {what}");
                Add(Bars(dir, $"burst-{conns}-{payload}-connps.png", $"Burst, {what}: connections/s (median, min-max)", "connections/s", own, s => s.ConnPerS, machine), $"burst connections/s, {what}");
                if (reference.Count > 0)
                    Add(Bars(dir, $"burst-{conns}-{payload}-wall-reference.png", $"Burst, {what}, one reference client ({reference[0].Client}): wall time", "wall time (ms)", reference, s => s.Wall, machine), $"burst wall time, reference client, {what}");
            }
            else if (workload == "persistent")
            {
                Add(Bars(dir, $"persistent-{conns}-{payload}-rps.png", $"Persistent closed loop, {what}: requests/s (median, min-max)", "requests/s", own, s => s.ReqPerS, machine), $"persistent requests/s, {what}");
                if (reference.Count > 0)
                    Add(Bars(dir, $"persistent-{conns}-{payload}-rps-reference.png", $"Persistent closed loop, {what}, one reference client ({reference[0].Client}): requests/s", "requests/s", reference, s => s.ReqPerS, machine), $"persistent requests/s, reference client, {what}");
            }
            Add(Percentiles(dir, $"{workload}-{conns}-{payload}-latency.png", $"{Title(workload)}, {what}: latency percentiles (median of repeats)", own, machine), $"{workload} latency percentiles, {what}");
        }

        foreach (var group in stats.Where(s => s.Transport == "tcp" && s.Rate > 0 && s.IsOwnPair).GroupBy(s => (s.Connections, s.Payload)))
            Add(Percentiles(dir, $"open-loop-{group.Key.Connections}-{group.Key.Payload}-latency.png",
                $"Open loop at half the closed-loop peak, {group.Key.Connections:N0} conn, {Bytes(group.Key.Payload)}: latency from intended send", group.ToList(), machine),
                "open-loop latency percentiles");

        var ownTcp = stats.Where(s => s.Transport == "tcp" && s.IsOwnPair && s.Rate == 0).ToList();
        Add(Bars(dir, "cpu-per-request.png", "Server CPU per request (median, min-max), every own-pair experiment", "server CPU (us per request)",
            ownTcp, s => s.Of(r => r.ServerCpuUsPerReq), machine, label: s => $"{s.Server} {s.Workload[0]}{s.Connections}/{Bytes(s.Payload)}"), "server CPU per request");
        Add(Bars(dir, "server-memory.png", "Server peak resident memory, every own-pair experiment", "peak RSS (MiB)",
            ownTcp, s => s.Of(r => r.ServerPeakRssKb / 1024.0), machine, label: s => $"{s.Server} {s.Workload[0]}{s.Connections}/{Bytes(s.Payload)}"), "server peak memory");

        foreach (var workload in new[] { "burst", "persistent" })
        {
            Add(Scaling(dir, $"scaling-connections-{workload}.png", $"{Title(workload)}: scaling with connections (100 B)", "connections",
                ownTcp.Where(s => s.Workload == workload && s.Payload == 100), s => s.Connections, workload, machine), $"{workload} scaling with connections");
            Add(Scaling(dir, $"scaling-payload-{workload}.png", $"{Title(workload)}: scaling with payload", "payload (bytes)",
                ownTcp.Where(s => s.Workload == workload && s.Connections == ownTcp.Where(x => x.Workload == workload).Select(x => x.Connections).DefaultIfEmpty().Max()),
                s => s.Payload, workload, machine), $"{workload} scaling with payload");
        }

        // memif moves millions of frames a second, gRPC a few hundred thousand calls: one scale each.
        var variants = stats.Where(s => s.IsVariant).ToList();
        Add(Bars(dir, "grpc-rps.png", "gRPC: calls/s per workload, transport and load tool (median, min-max)", "calls/s",
            variants.Where(s => s.Transport != "memif"), s => s.ReqPerS, machine, label: s => $"{s.Pair} {s.Workload[5..]} {s.Transport}"), "gRPC rates");
        Add(Bars(dir, "memif-pps.png", "memif: frames/s per mode and frame size (median, min-max)", "frames/s",
            variants.Where(s => s.Transport == "memif"), s => s.ReqPerS, machine, label: s => $"{s.Server} {s.Workload[6..]} {s.Payload} B"), "memif rates");

        Add(Heatmap(dir, stats.Where(s => s.Workload == "burst" && s.Transport == "tcp" && s.Rate == 0).ToList(), machine), "client-by-server burst heatmap");
        return drawn;
    }

    private static string Title(string workload) => workload == "burst" ? "Burst" : workload == "persistent" ? "Persistent closed loop" : workload;

    public static string Bytes(int b) => b >= 1024 && b % 1024 == 0 ? $"{b / 1024} KiB" : $"{b} B";

    private static Plot NewPlot(string title, string yLabel, string machine)
    {
        var plot = new Plot();
        plot.Title(title, size: 15);
        plot.YLabel(yLabel);
        plot.XLabel(machine, size: 11);
        return plot;
    }

    private static string? Bars(string dir, string file, string title, string yLabel, IEnumerable<ExperimentStats> experiments,
        Func<ExperimentStats, Summary?> figure, string machine, Func<ExperimentStats, string>? label = null)
    {
        var items = experiments.Select(e => (Label: (label ?? (s => s.Pair))(e), S: figure(e))).Where(i => i.S is not null).ToList();
        if (items.Count == 0) return null;
        var plot = NewPlot(title, yLabel, machine);
        var positions = Enumerable.Range(0, items.Count).Select(i => (double)i).ToArray();
        var bars = plot.Add.Bars(items.Select((it, i) => new Bar { Position = i, Value = it.S!.Median, FillColor = Colors.SteelBlue }).ToArray());
        var medians = items.Select(i => i.S!.Median).ToArray();
        plot.Add.Plottable(new ScottPlot.Plottables.ErrorBar(positions, medians, null, null,
            items.Select(i => i.S!.Max - i.S.Median).ToArray(), items.Select(i => i.S!.Median - i.S.Min).ToArray()) { Color = Colors.Black });
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, items.Select(i => i.Label).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = items.Count > 4 ? -30 : 0;
        plot.Axes.Bottom.TickLabelStyle.Alignment = items.Count > 4 ? Alignment.MiddleRight : Alignment.UpperCenter;
        // Rotated labels need height for their length, plus the machine line drawn below them.
        plot.Axes.Bottom.MinimumSize = items.Count > 4 ? Math.Clamp(4 * items.Max(i => i.Label.Length) + 30, 60, 250) : 40;
        plot.Axes.Margins(bottom: 0);
        plot.SavePng(Path.Combine(dir, file), Width, Height);
        return file;
    }

    private static string? Percentiles(string dir, string file, string title, IReadOnlyList<ExperimentStats> experiments, string machine)
    {
        var ps = new (string Name, Func<RunRecord, double?> Get)[] { ("p50", r => r.LatP50Us), ("p90", r => r.LatP90Us), ("p99", r => r.LatP99Us), ("p99.9", r => r.LatP999Us) };
        var lines = experiments.Select(e => (e, Values: ps.Select(p => e.Of(p.Get)?.Median).ToArray())).Where(l => l.Values.All(v => v > 0)).ToList();
        if (lines.Count == 0) return null;
        var plot = NewPlot(title, "latency (us, log scale)", machine);
        var xs = Enumerable.Range(0, ps.Length).Select(i => (double)i).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < lines.Count; i++)
        {
            var line = plot.Add.ScatterLine(xs, lines[i].Values.Select(v => Math.Log10(v!.Value)).ToArray(), palette.GetColor(i));
            line.LegendText = lines[i].e.Pair;
            line.MarkerSize = 6;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, ps.Select(p => p.Name).ToArray());
        var all = lines.SelectMany(l => l.Values).Select(v => v!.Value).ToList();
        plot.Axes.Left.TickGenerator = LogTicks(all);
        plot.Axes.SetLimitsY(Math.Log10(all.Min()) - 0.15, Math.Log10(all.Max()) + 0.15);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(Path.Combine(dir, file), Width, Height);
        return file;
    }

    /// <summary>Ticks at 1, 2 and 5 times each power of ten, over the data's range on a log10 axis.</summary>
    private static ScottPlot.TickGenerators.NumericManual LogTicks(IEnumerable<double> values)
    {
        var all = values.ToList();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var k = (int)Math.Floor(Math.Log10(all.Min())); k <= (int)Math.Ceiling(Math.Log10(all.Max())); k++)
            foreach (var m in new[] { 1, 2, 5 })
                ticks.AddMajor(Math.Log10(m * Math.Pow(10, k)), (m * Math.Pow(10, k)).ToString("N0", CultureInfo.InvariantCulture));
        return ticks;
    }

    private static string? Scaling(string dir, string file, string title, string xLabel, IEnumerable<ExperimentStats> experiments,
        Func<ExperimentStats, int> x, string workload, string machine)
    {
        var series = experiments.GroupBy(e => e.Server).Select(g => (Name: g.Key, Points: g.OrderBy(x)
            .Select(e => (X: x(e), Y: (workload == "burst" ? e.ConnPerS : e.ReqPerS)?.Median)).Where(p => p.Y is not null).ToList()))
            .Where(s => s.Points.Count > 1).ToList();
        if (series.Count == 0) return null;
        var plot = NewPlot(title, workload == "burst" ? "connections/s (median)" : "requests/s (median)", machine);
        plot.XLabel($"{xLabel} (log scale) - {machine}", size: 11);
        var palette = new ScottPlot.Palettes.Category10();
        var allX = series.SelectMany(s => s.Points.Select(p => p.X)).Distinct().Order().ToArray();
        for (var i = 0; i < series.Count; i++)
        {
            var line = plot.Add.ScatterLine(series[i].Points.Select(p => Math.Log10(p.X)).ToArray(), series[i].Points.Select(p => p.Y!.Value).ToArray(), palette.GetColor(i));
            line.LegendText = series[i].Name;
            line.MarkerSize = 6;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(allX.Select(v => Math.Log10(v)).ToArray(), allX.Select(v => v.ToString("N0", CultureInfo.InvariantCulture)).ToArray());
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(Path.Combine(dir, file), Width, Height);
        return file;
    }

    /// <summary>Client-by-server burst wall times: a row that is slow everywhere is a slow client, a column a slow server.</summary>
    private static string? Heatmap(string dir, IReadOnlyList<ExperimentStats> bursts, string machine)
    {
        var conns = bursts.Select(b => b.Connections).DefaultIfEmpty().Max();
        var cells = bursts.Where(b => b.Connections == conns && b.Wall is not null).ToList();
        var servers = cells.Select(c => c.Server).Distinct().Order().ToArray();
        var clients = cells.Select(c => c.Client).Distinct().Order().ToArray();
        if (servers.Length < 2 || clients.Length < 2) return null;
        var values = new double[clients.Length, servers.Length];
        for (var i = 0; i < clients.Length; i++)
            for (var j = 0; j < servers.Length; j++)
                values[clients.Length - 1 - i, j] = cells.FirstOrDefault(c => c.Client == clients[i] && c.Server == servers[j])?.Wall?.Median ?? double.NaN;
        var plot = NewPlot($"Burst, {conns:N0} connections: median wall time (ms), client x server", "client", machine);
        // Cells drawn as rectangles centred on whole coordinates, so they line up with the ticks.
        var finite = values.Cast<double>().Where(v => !double.IsNaN(v)).ToList();
        var (lo, hi) = (finite.Min(), finite.Max());
        var colormap = new ScottPlot.Colormaps.Viridis();
        for (var i = 0; i < clients.Length; i++)
            for (var j = 0; j < servers.Length; j++)
            {
                var v = values[clients.Length - 1 - i, j];
                if (double.IsNaN(v)) continue;
                var y = clients.Length - 1 - i;
                var cell = plot.Add.Rectangle(j - 0.5, j + 0.5, y - 0.5, y + 0.5);
                cell.FillColor = colormap.GetColor(hi == lo ? 0.5 : (v - lo) / (hi - lo));
                cell.LineWidth = 0;
                var text = plot.Add.Text(v.ToString("F0", CultureInfo.InvariantCulture), j, y);
                text.LabelFontColor = (v - lo) / Math.Max(hi - lo, 1e-9) > 0.6 ? Colors.Black : Colors.White;
                text.LabelFontSize = 16;
                text.LabelAlignment = Alignment.MiddleCenter;
            }
        plot.Axes.SetLimits(-0.5, servers.Length - 0.5, -0.5, clients.Length - 0.5);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, servers.Length).Select(v => (double)v).ToArray(), servers);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, clients.Length).Select(v => (double)(clients.Length - 1 - v)).ToArray(), clients);
        plot.XLabel($"server - {machine}", size: 11);
        plot.SavePng(Path.Combine(dir, "matrix-heatmap.png"), Width, Height);
        return "matrix-heatmap.png";
    }
}
