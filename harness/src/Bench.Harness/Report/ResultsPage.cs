using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Bench.Harness.Results;

namespace Bench.Harness.Report;

/// <summary>
/// index.html: the summary as one self-contained page (no network; CSS, script and the charts
/// inline, the charts as data: URIs so the file can be mailed or attached alone). Its tables
/// are the summary's (<see cref="SummaryColumns"/>), sortable by any column and filtered by
/// language, workload, transport and load tool; each experiment's notes sit under its row.
/// Links to the logs are relative, so they work beside the file in its result set.
/// </summary>
public static partial class ResultsPage
{
    public const string FileName = "index.html";

    /// <summary>What the filters choose by: the heading and the attribute each experiment carries.</summary>
    private static readonly (string Heading, string Attribute)[] Filters =
        [("language", "language"), ("workload", "workload"), ("transport", "transport"), ("load tool", "load-tool")];

    public static void Write(string path, ResultSet set, IReadOnlyList<ExperimentStats> stats, IReadOnlyList<DrawnChart> charts)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var languages = set.Implementations.ToDictionary(i => i.Name, i => i.Language);
        string Language(ExperimentStats e) => languages.GetValueOrDefault(e.Server, "unknown");
        string[] FilterValues(ExperimentStats e) => [Language(e), e.Workload.Name, e.Transport, e.Generator];

        var html = new StringBuilder();
        var title = ReportWriter.Title(set.Rows);
        html.Append($"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{E(title)}</title>
            <style>{Style}</style>
            </head>
            <body>
            <h1>{E(title)}</h1>
            <p>{Markup(ReportWriter.Intro(set.Rows))}</p>
            <form id="filters">
            """);
        for (var f = 0; f < Filters.Length; f++)
        {
            html.Append($"<label>{E(Filters[f].Heading)} <select data-filter=\"{Filters[f].Attribute}\"><option value=\"\">all</option>");
            foreach (var value in stats.Select(e => FilterValues(e)[f]).Distinct().Order(StringComparer.Ordinal))
                html.Append($"<option>{E(value)}</option>");
            html.Append("</select></label>\n");
        }
        html.Append($"<output id=\"shown\">{stats.Count} of {stats.Count} experiments</output></form>\n");

        foreach (var (section, experiments) in ReportWriter.Sections(stats))
        {
            var cells = experiments.Select(e => SummaryColumns.All.Select(c => c.Cell(e)).ToArray()).ToList();
            var shown = SummaryColumns.Shown(cells);
            html.Append($"<h2>{E(section.Title)}</h2>\n<table class=\"summary\">\n<thead><tr><th>language</th>");
            foreach (var i in shown) html.Append($"<th title=\"{E(SummaryColumns.All[i].Legend)}\">{E(SummaryColumns.All[i].Heading)}</th>");
            html.Append("<th>logs</th></tr></thead>\n");
            for (var row = 0; row < experiments.Count; row++)
            {
                var e = experiments[row];
                var values = FilterValues(e);
                html.Append("<tbody class=\"experiment\"");
                for (var f = 0; f < Filters.Length; f++) html.Append($" data-{Filters[f].Attribute}=\"{E(values[f])}\"");
                html.Append($"><tr><td>{E(Language(e))}</td>");
                foreach (var i in shown) html.Append($"<td>{E(cells[row][i])}</td>");
                html.Append($"<td class=\"logs\">{Logs(e, set, dir)}</td></tr>");
                var notes = Anomalies.Explain(e).ToList();
                if (notes.Count > 0)
                    html.Append($"<tr class=\"note\"><td colspan=\"{shown.Count + 2}\"><ul>{string.Concat(notes.Select(n => $"<li>{E(n)}</li>"))}</ul></td></tr>");
                html.Append("</tbody>\n");
            }
            html.Append("</table>\n<p class=\"legend\">");
            html.Append(string.Join("; ", shown.Select(i => $"<b>{E(SummaryColumns.All[i].Heading)}</b>: {E(SummaryColumns.All[i].Legend)}")));
            html.Append(".</p>\n");
        }

        if (set.Implementations.Count > 0)
        {
            html.Append("<h2>Implementations</h2>\n<table class=\"designs\"><thead><tr><th>language</th><th>implementation</th><th>design</th></tr></thead><tbody>\n");
            foreach (var i in set.Implementations.OrderBy(i => i.Language, StringComparer.Ordinal).ThenBy(i => i.Name, StringComparer.Ordinal))
                html.Append($"<tr><td>{E(i.Language)}</td><td>{E(i.Name)}</td><td>{E(i.Design)}</td></tr>\n");
            html.Append("</tbody></table>\n");
        }

        if (charts.Count > 0)
        {
            html.Append("<h2>Charts</h2>\n");
            foreach (var chart in charts)
                html.Append($"<figure><img alt=\"{E(chart.Title)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(Path.Combine(dir, chart.File)))}\"><figcaption>{E(chart.Title)}</figcaption></figure>\n");
        }

        if (set.Machine is { } machine)
        {
            html.Append("<h2>Machine</h2>\n<table class=\"machine\"><tbody>\n");
            foreach (var (k, v) in machine.Rows()) html.Append($"<tr><th>{E(k)}</th><td>{E(v)}</td></tr>\n");
            html.Append("</tbody></table>\n");
        }
        html.Append($"<script>{Script}</script>\n</body>\n</html>\n");
        File.WriteAllText(path, html.ToString());
    }

    /// <summary>Links to the logs of an experiment that are in its result set: each repeat's histogram log, and the builds of its server and client.</summary>
    private static string Logs(ExperimentStats e, ResultSet set, string dir)
    {
        var links = new List<string>();
        foreach (var run in e.Runs)
            if (File.Exists(Path.Combine(dir, LatencyHistogram.LogFile(run))))
                links.Add($"<a href=\"{E(LatencyHistogram.LogFile(run))}\" title=\"HdrHistogram log of repeat {run.Repeat}\">latency {run.Repeat}</a>");
        foreach (var build in set.Implementations.Where(i => i.Name == e.Server || i.Name == e.Client).Select(i => i.BuildLog).Distinct())
            if (File.Exists(Path.Combine(dir, build)))
                links.Add($"<a href=\"{E(build)}\">{E(build)}</a>");
        return links.Count == 0 ? "<span class=\"none\">none kept</span>" : string.Join(" ", links);
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    /// <summary>The summary's own markup in a line of text: `code` spans.</summary>
    private static string Markup(string text) => CodeSpan().Replace(E(text), "<code>$1</code>");

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeSpan();

    private const string Style = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0; }
        th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
        table.summary th { background: #f0f0f0; cursor: pointer; user-select: none; }
        table.summary th[data-dir="asc"]::after { content: " \25B2"; }
        table.summary th[data-dir="desc"]::after { content: " \25BC"; }
        tr.note td { background: #fff8e0; font-size: 90%; }
        tr.note ul { margin: 0; padding-left: 1.2em; }
        .legend { font-size: 85%; color: #555; max-width: 80em; }
        #filters { position: sticky; top: 0; background: #fff; padding: 0.5em 0; border-bottom: 1px solid #ddd; }
        #filters label { margin-right: 1em; }
        .none { color: #999; }
        figure { margin: 1em 0; }
        img { max-width: 100%; }
        """;

    /// <summary>Sorting and filtering: an experiment is a tbody (its row and its notes), so both move and hide together.</summary>
    private const string Script = """
        const filters = [...document.querySelectorAll('select[data-filter]')];
        const experiments = [...document.querySelectorAll('tbody.experiment')];
        function applyFilters() {
          let shown = 0;
          for (const body of experiments) {
            body.hidden = !filters.every(f => f.value === '' || body.getAttribute('data-' + f.dataset.filter) === f.value);
            if (!body.hidden) shown++;
          }
          document.getElementById('shown').textContent = `${shown} of ${experiments.length} experiments`;
        }
        filters.forEach(f => f.addEventListener('change', applyFilters));
        // Numbers sort as numbers (a cell's leading figure), text as text, and "-" (not measured) last either way.
        function sortKey(cell) {
          const text = cell.textContent.trim();
          const number = parseFloat(text);
          return text === '-' ? null : isNaN(number) ? text : number;
        }
        function compare(a, b) {
          if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
          if (typeof a === typeof b) return typeof a === 'number' ? a - b : a.localeCompare(b);
          return typeof a === 'number' ? -1 : 1;
        }
        for (const th of document.querySelectorAll('table.summary thead th')) {
          th.addEventListener('click', () => {
            const table = th.closest('table');
            const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
            table.querySelectorAll('thead th').forEach(h => delete h.dataset.dir);
            th.dataset.dir = dir;
            const sign = dir === 'asc' ? 1 : -1;
            const bodies = [...table.tBodies];
            bodies.sort((x, y) => {
              const a = sortKey(x.rows[0].cells[th.cellIndex]), b = sortKey(y.rows[0].cells[th.cellIndex]);
              return a === null || b === null ? compare(a, b) : sign * compare(a, b);
            });
            bodies.forEach(b => table.appendChild(b));
          });
        }
        """;
}
