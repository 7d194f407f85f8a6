using Bench.Harness.Report;
using Bench.Harness.Results;
using Microsoft.Playwright;

namespace Bench.Harness.Tests;

/// <summary>The results page, opened in a real browser (Debian's Chromium, headless, driven by Playwright).</summary>
public class ResultsPageTests
{
    private const string Chromium = "/usr/bin/chromium";

    private const string VisibleExperiments = "[...document.querySelectorAll('tbody.experiment')].filter(b => !b.hidden).length";

    [Fact]
    public async Task the_sample_sets_page_shows_every_row_sorts_filters_and_loads_every_chart_in_chromium()
    {
        using var dir = new TempDir();
        foreach (var file in new[] { "runs.csv", "machine.json" })
            File.Copy(Path.Combine(Repo.Root, "results", "sample", file), dir.File(file));
        var rows = ResultsCsv.Read(dir.File("runs.csv"));
        var implementations = Repo.Catalog.All.Where(i => rows.Any(r => r.Server == i.Name)).Select(i => ImplementationFacts.Of(i, Repo.Root)).ToList();
        // One build log in the set, as the build stage writes it: the rows it belongs to must link it.
        var csharpBuild = implementations.Single(i => i.Name == "csharp").BuildLog;
        File.WriteAllText(dir.File(csharpBuild), "build log\n");
        ReportWriter.Write(dir.Path, ResultSet.Read(dir.File("runs.csv")) with { Implementations = implementations });
        var stats = ExperimentStats.Group(rows);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var problems = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") problems.Add($"console: {m.Text}"); };
        page.PageError += (_, e) => problems.Add($"script: {e}");
        // The page is self-contained: anything but the file itself and its data: URIs would be the network.
        page.Request += (_, r) => { if (!r.Url.StartsWith("file:", StringComparison.Ordinal) && !r.Url.StartsWith("data:", StringComparison.Ordinal)) problems.Add($"request: {r.Url}"); };
        await page.GotoAsync(new Uri(dir.File(ResultsPage.FileName)).AbsoluteUri);

        // Every experiment is a row, every row is shown.
        Assert.Equal(stats.Count, await page.Locator("tbody.experiment").CountAsync());
        Assert.Equal(stats.Count, await page.EvaluateAsync<int>(VisibleExperiments));

        // Filtering by language, then also by transport and workload, shows exactly those experiments.
        string LanguageOf(ExperimentStats e) => implementations.First(i => i.Name == e.Server).Language;
        await page.SelectOptionAsync("select[data-filter=language]", "C++");
        Assert.Equal(stats.Count(e => LanguageOf(e) == "C++"), await page.EvaluateAsync<int>(VisibleExperiments));
        var workload = stats[0].Workload.Name;
        await page.SelectOptionAsync("select[data-filter=workload]", workload);
        await page.SelectOptionAsync("select[data-filter=transport]", "tcp");
        var expected = stats.Count(e => LanguageOf(e) == "C++" && e.Workload.Name == workload && e.Transport == "tcp");
        Assert.InRange(expected, 1, stats.Count - 1);
        Assert.Equal(expected, await page.EvaluateAsync<int>(VisibleExperiments));
        Assert.Equal($"{expected} of {stats.Count} experiments", await page.Locator("#shown").TextContentAsync());
        await page.SelectOptionAsync("select[data-filter=load-tool]", "csharp");
        Assert.Equal(stats.Count(e => LanguageOf(e) == "C++" && e.Workload.Name == workload && e.Transport == "tcp" && e.Generator == "csharp"),
            await page.EvaluateAsync<int>(VisibleExperiments));
        foreach (var filter in new[] { "language", "workload", "transport", "load-tool" }) await page.SelectOptionAsync($"select[data-filter={filter}]", "");
        Assert.Equal(stats.Count, await page.EvaluateAsync<int>(VisibleExperiments));

        // Clicking a heading sorts its table by it, ascending then descending; the notes move with their row.
        var table = page.Locator("table.summary").First;
        var p99 = table.Locator("thead th", new() { HasTextString = Figures.P99.Heading }).First;
        var column = await p99.EvaluateAsync<int>("th => th.cellIndex");
        async Task<double[]> Column() => await table.EvaluateAsync<double[]>(
            $"t => [...t.tBodies].map(b => parseFloat(b.rows[0].cells[{column}].textContent))");
        var before = await Column();
        Assert.NotEqual(before.Order(), before);
        await p99.ClickAsync();
        Assert.Equal(before.Order(), await Column());
        await p99.ClickAsync();
        Assert.Equal(before.OrderDescending(), await Column());
        Assert.True(await table.EvaluateAsync<bool>("t => [...t.querySelectorAll('tr.note')].every(n => n.previousElementSibling && n.parentElement.rows[0] === n.previousElementSibling)"));

        // The notes that explain anomalies sit under the rows they explain.
        var noted = stats.Where(e => Anomalies.Explain(e).Any()).ToList();
        Assert.NotEmpty(noted);
        Assert.Equal(noted.Count, await page.Locator("tr.note").CountAsync());
        Assert.Equal(noted.Sum(e => Anomalies.Explain(e).Count()), await page.Locator("tr.note li").CountAsync());

        // Every chart is there and loads.
        var charts = Directory.GetFiles(dir.Path, "*.png").Length;
        Assert.True(charts > 0);
        Assert.Equal(charts, await page.EvaluateAsync<int>("document.images.length"));
        Assert.True(await page.EvaluateAsync<bool>("[...document.images].every(i => i.complete && i.naturalWidth > 0)"));

        // Each language's design line, and the logs each row links.
        foreach (var i in implementations)
            Assert.Equal(1, await page.Locator("table.designs tr", new() { HasTextString = i.Design }).CountAsync());
        var csharpRows = stats.Count(e => e.Server == "csharp" || e.Client == "csharp");
        Assert.Equal(csharpRows, await page.Locator($"td.logs a[href='{csharpBuild}']").CountAsync());
        Assert.Equal(stats.Count, await page.Locator("td.logs").CountAsync());

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        await page.ScreenshotAsync(new() { Path = dir.File("results-page.png") });
        File.Copy(dir.File("results-page.png"), "/tmp/results-page.png", overwrite: true);
    }
}
