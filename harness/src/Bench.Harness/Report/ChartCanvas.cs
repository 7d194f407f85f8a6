using System.Globalization;
using Bench.Harness.Results;
using Bench.Harness.Workloads;
using ScottPlot;

namespace Bench.Harness.Report;

/// <summary>A chart that was drawn: its file, and what it shows (for the summary).</summary>
public sealed record DrawnChart(string File, string Title);

/// <summary>Whatever draws some charts from a result set's experiments: each workload, or a family of them.</summary>
public interface IChartSource
{
    /// <summary>Charts for these experiments; null for a chart the data is too thin for.</summary>
    IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats);
}

/// <summary>
/// The PNG charts of a result set, drawn from the CSV rows (and, for the percentile spectrum, the
/// histogram logs beside them). Sized for a pull request (900 px wide); every chart names its
/// workload in the title and, below the axis, the machine, the pinning and the run. A bar chart
/// of one bar is not drawn: it compares nothing. The workloads say which charts they have; this draws them.
/// </summary>
public sealed class ChartCanvas(string dir, string machine, string? histograms = null)
{
    private const int Width = 900, Height = 500;

    /// <summary>Every chart the rows have data for, workload by workload, then the ones across workloads.</summary>
    public static IReadOnlyList<DrawnChart> DrawAll(string dir, IReadOnlyList<ExperimentStats> stats, string machine, string? histograms = null)
    {
        var canvas = new ChartCanvas(dir, machine, histograms);
        var charts = stats.GroupBy(s => s.Workload.Charts).OrderBy(g => g.Min(s => s.Workload.Order))
            .SelectMany(g => g.Key.Draw(canvas, g.ToList()));
        // Service demand and memory of every own-pair echo experiment, side by side.
        var echo = stats.Where(s => s.Workload is EchoWorkload && s.Transport == Catalog.Transports.Tcp && s.IsOwnPair && s.Rate == 0).ToList();
        string Label(ExperimentStats s) => $"{s.Server} {s.Workload.Name[0]}{s.Connections}/{Bytes(s.Payload)}";
        DrawnChart?[] common =
        [
            canvas.Bars("cpu-per-request.png", "Server CPU per request (median, min-max), every own-pair experiment", Figures.ServerCpuPerRequest, echo, Label),
            canvas.Bars("server-memory.png", "Server peak resident memory, every own-pair experiment", Figures.ServerRss, echo, Label),
        ];
        // The latency spectrum of every cell: one line per implementation, each workload, load and payload apart.
        var spectra = stats.GroupBy(s => (s.Workload.Name, s.Workload.Order, s.Connections, s.InFlight, s.Payload, Open: s.Rate > 0)).OrderBy(g => g.Key.Order)
            .Select(g => canvas.Spectrum(
                $"spectrum-{g.Key.Name}-{g.Key.Connections}-{g.Key.InFlight}-{g.Key.Payload}{(g.Key.Open ? "-open" : "")}.png",
                $"Latency by percentile, {g.Key.Name}, {g.First().Load}, {Bytes(g.Key.Payload)} (all repeats)", g.ToList()));
        return charts.Concat(common).Concat(spectra).OfType<DrawnChart>().ToList();
    }

    /// <summary>What every chart says below its axis: the machine, the pinning and the run, so a chart read alone still says where it comes from.</summary>
    public static string Caption(Machine.MachineFacts? machine, IEnumerable<RunRecord> rows)
    {
        string Distinct(Func<RunRecord, string> f) => string.Join(", ", rows.Select(f).Where(v => v.Length > 0).Distinct());
        return $"{machine?.Caption ?? "machine unknown"}; server cpu {Distinct(r => r.ServerCpus)}, client cpu {Distinct(r => r.ClientCpus)}; run {Distinct(r => r.RunId)}";
    }

    public static string Bytes(int b) => b >= 1024 && b % 1024 == 0 ? $"{b / 1024} KiB" : $"{b} B";

    private Plot NewPlot(string title, string yLabel)
    {
        var plot = new Plot();
        plot.Title(title, size: 15);
        plot.YLabel(yLabel);
        plot.XLabel(machine, size: 11);
        return plot;
    }

    /// <summary>One bar per experiment: the median of the figure, with its min-max.</summary>
    public DrawnChart? Bars(string file, string title, Figure figure, IEnumerable<ExperimentStats> experiments,
        Func<ExperimentStats, string>? label = null, string? axis = null)
    {
        var items = experiments.Select(e => (Label: (label ?? (s => s.Pair))(e), S: e.Of(figure))).Where(i => i.S is not null).ToList();
        if (items.Count < 2) return null;
        var plot = NewPlot(title, axis ?? figure.Axis);
        plot.XLabel($"bar: median of the good repeats, whisker: their min to max\n{machine}", size: 11);
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
        return Save(plot, file, title);
    }

    private DrawnChart Save(Plot plot, string file, string title)
    {
        plot.SavePng(Path.Combine(dir, file), Width, Height);
        return new DrawnChart(file, title);
    }

    /// <summary>Latency percentiles of each experiment (median of repeats), on a log scale.</summary>
    public DrawnChart? Percentiles(string file, string title, IReadOnlyList<ExperimentStats> experiments)
    {
        var ps = Figures.Percentiles;
        var lines = experiments.Select(e => (e, Values: ps.Select(p => e.Of(p)?.Median).ToArray())).Where(l => l.Values.All(v => v > 0)).ToList();
        if (lines.Count == 0) return null;
        var plot = NewPlot(title, "latency (us, log scale)");
        var xs = Enumerable.Range(0, ps.Count).Select(i => (double)i).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < lines.Count; i++)
        {
            var line = plot.Add.ScatterLine(xs, lines[i].Values.Select(v => Math.Log10(v!.Value)).ToArray(), palette.GetColor(i));
            line.LegendText = lines[i].e.Pair;
            line.MarkerSize = 6;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, ps.Select(p => p.Label).ToArray());
        var all = lines.SelectMany(l => l.Values).Select(v => v!.Value).ToList();
        plot.Axes.Left.TickGenerator = LogTicks(all);
        plot.Axes.SetLimitsY(Math.Log10(all.Min()) - 0.15, Math.Log10(all.Max()) + 0.15);
        plot.ShowLegend(Alignment.UpperLeft);
        return Save(plot, file, title);
    }

    /// <summary>The percentiles a spectrum is drawn at, as wrk2 and HdrHistogram draw it: each a step nearer the tail.</summary>
    private static readonly double[] SpectrumPercentiles = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999];

    /// <summary>
    /// Latency against percentile with the x axis at log10(1 / (1 - p)), so 90%, 99%, 99.9% and
    /// 99.99% are evenly spaced and the tail gets the room it deserves; one line per
    /// implementation, from all its good repeats' histogram logs added together (lossless). A
    /// line stops at the last percentile its samples can tell apart (1 in N).
    /// </summary>
    public DrawnChart? Spectrum(string file, string title, IReadOnlyList<ExperimentStats> experiments)
    {
        if (histograms is null) return null;
        var lines = new List<(string Label, double[] X, double[] Y)>();
        foreach (var e in experiments)
        {
            var logs = e.Good.Select(r => LatencyHistogram.LogPath(histograms, r)).Where(File.Exists).ToList();
            if (logs.Count == 0) continue;
            LatencyHistogram merged;
            try { merged = LatencyHistogram.Merge(logs); }
            catch (FormatException x)
            {
                // A damaged log costs its line on this chart, never the report: the CSV holds the row's figures.
                Console.Error.WriteLine($"bench: {file}: {e.Pair} left out: {x.Message}");
                continue;
            }
            var ps = SpectrumPercentiles.Where(p => p == 0 || 1 / (1 - p / 100) <= merged.Count).ToList();
            var points = ps.Select(p => (X: Math.Log10(1 / (1 - p / 100)), Y: merged.PercentileUs(p))).Where(q => q.Y > 0).ToList();
            if (points.Count < 2) continue;
            lines.Add(($"{e.Pair} {e.Transport}", points.Select(q => q.X).ToArray(), points.Select(q => Math.Log10(q.Y!.Value)).ToArray()));
        }
        if (lines.Count == 0) return null;
        var plot = NewPlot(title, "latency (us, log scale)");
        plot.XLabel($"percentile (log scale of 1 / (1 - p)) - {machine}", size: 11);
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < lines.Count; i++)
        {
            var line = plot.Add.ScatterLine(lines[i].X, lines[i].Y, palette.GetColor(i));
            line.LegendText = lines[i].Label;
            line.MarkerSize = 5;
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var p in new[] { 0, 90, 99, 99.9, 99.99, 99.999 })
            ticks.AddMajor(Math.Log10(1 / (1 - p / 100)), p == 0 ? "0%" : $"{p.ToString(CultureInfo.InvariantCulture)}%");
        plot.Axes.Bottom.TickGenerator = ticks;
        var ys = lines.SelectMany(l => l.Y).ToList();
        plot.Axes.Left.TickGenerator = LogTicks(ys.Select(y => Math.Pow(10, y)));
        plot.Axes.SetLimitsY(ys.Min() - 0.15, ys.Max() + 0.15);
        plot.ShowLegend(Alignment.UpperLeft);
        return Save(plot, file, title);
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

    /// <summary>One line per server: the figure's median against connections or payload, on a log x axis.</summary>
    public DrawnChart? Scaling(string file, string title, string xLabel, IEnumerable<ExperimentStats> experiments,
        Func<ExperimentStats, int> x, Figure figure)
    {
        var series = experiments.GroupBy(e => e.Server).Select(g => (Name: g.Key, Points: g.OrderBy(x)
            .Select(e => (X: x(e), Y: e.Of(figure)?.Median)).Where(p => p.Y is not null).ToList()))
            .Where(s => s.Points.Count > 1).ToList();
        if (series.Count == 0) return null;
        var plot = NewPlot(title, $"{figure.Axis}, median");
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
        return Save(plot, file, title);
    }

    /// <summary>Client-by-server burst wall times: a row that is slow everywhere is a slow client, a column a slow server.</summary>
    public DrawnChart? Heatmap(string file, IReadOnlyList<ExperimentStats> bursts)
    {
        var conns = bursts.Select(b => b.Connections).DefaultIfEmpty().Max();
        var cells = bursts.Where(b => b.Connections == conns && b.Wall is not null).ToList();
        var servers = cells.Select(c => c.Server).Distinct().Order().ToArray();
        var clients = cells.Select(c => c.Generator).Distinct().Order().ToArray();
        if (servers.Length < 2 || clients.Length < 2) return null;
        var values = new double[clients.Length, servers.Length];
        for (var i = 0; i < clients.Length; i++)
            for (var j = 0; j < servers.Length; j++)
                values[clients.Length - 1 - i, j] = cells.FirstOrDefault(c => c.Generator == clients[i] && c.Server == servers[j])?.Wall?.Median ?? double.NaN;
        var title = $"Burst, {conns:N0} connections: median wall time (ms), client x server";
        var plot = NewPlot(title, "client");
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
        // The colour scale, right of the cells: its ends in milliseconds, so a colour reads as a time.
        const int steps = 32;
        var (left, right, bottom, top) = (servers.Length - 0.5 + 0.15, servers.Length - 0.5 + 0.35, -0.5, clients.Length - 0.5);
        for (var k = 0; k < steps; k++)
        {
            var band = plot.Add.Rectangle(left, right, bottom + (top - bottom) * k / steps, bottom + (top - bottom) * (k + 1) / steps);
            band.FillColor = colormap.GetColor((k + 0.5) / steps);
            band.LineWidth = 0;
        }
        foreach (var (v, y, align) in new[] { (lo, bottom, Alignment.LowerLeft), (hi, top, Alignment.UpperLeft) })
        {
            var label = plot.Add.Text($"{v.ToString("F0", CultureInfo.InvariantCulture)} ms", right + 0.03, y);
            label.LabelFontSize = 12;
            label.LabelAlignment = align;
        }
        plot.Axes.SetLimits(-0.5, servers.Length - 0.5 + 0.75, -0.5, clients.Length - 0.5);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, servers.Length).Select(v => (double)v).ToArray(), servers);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, clients.Length).Select(v => (double)(clients.Length - 1 - v)).ToArray(), clients);
        plot.XLabel($"server - {machine}", size: 11);
        return Save(plot, file, "client-by-server burst heatmap");
    }
}
