using System.Text.Json;
using System.Text.Json.Nodes;
using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Json.Schema;

namespace Bench.Harness.Tests;

/// <summary>results.json holds the whole set, follows its published schema, and reads back to the same report.</summary>
public class ResultsJsonTests
{
    private static readonly string Sample = Path.Combine(Repo.Root, "results", "sample");

    private static readonly JsonSchema Schema = JsonSchema.FromText(File.ReadAllText(Path.Combine(Repo.Root, "docs", "results.schema.json")));

    private static string Errors(EvaluationResults results) =>
        string.Join("\n", Flatten(results).Where(r => r.Errors is { Count: > 0 }).SelectMany(r => r.Errors!.Select(e => $"{r.InstanceLocation}: {e.Key}: {e.Value}")).Take(20));

    private static IEnumerable<EvaluationResults> Flatten(EvaluationResults r) => [r, .. (r.Details ?? []).SelectMany(Flatten)];

    private static EvaluationResults Validate(string json) =>
        Schema.Evaluate(JsonDocument.Parse(json).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });

    /// <summary>A copy of the sample set, redrawn: every file a report writes, from the committed runs.csv.</summary>
    private static ResultSet SampleWithCatalog() => ResultSet.Read(Path.Combine(Sample, "runs.csv")) with
    {
        Implementations = [.. Repo.Catalog.All.Select(i => ImplementationFacts.Of(i, Repo.Root))],
    };

    [Fact]
    public void results_json_round_trips_through_report_to_the_same_summary()
    {
        using var first = new TempDir();
        using var second = new TempDir();
        var summary = File.ReadAllText(ReportWriter.Write(first.Path, SampleWithCatalog()));
        var json = first.File(ResultsJson.FileName);

        var again = File.ReadAllText(ReportWriter.WriteFromCsv(json, second.Path));
        Assert.Equal(summary, again);
        Assert.Equal(File.ReadAllText(json), File.ReadAllText(second.File(ResultsJson.FileName)));
        // Every row of the CSV is in it, figure for figure.
        var fromCsv = ResultsCsv.Read(Path.Combine(Sample, "runs.csv"));
        var fromJson = ResultsJson.Read(json).Rows;
        Assert.Equal(fromCsv.Count, fromJson.Count);
        static string Figures(RunRecord r) => $"{r.Experiment} {r.Repeat} {r.Status} {r.LatP99Us:R} {r.ReqPerS:R} {r.Timestamp:O}";
        Assert.Equal(fromCsv.Select(Figures).Order(StringComparer.Ordinal), fromJson.Select(Figures).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void results_json_follows_its_schema_with_settings_source_machine_and_notes()
    {
        using var dir = new TempDir();
        var set = SampleWithCatalog() with
        {
            Suite = SuiteFacts.Of(new RunSettings(Repeats: 3), new SourceRevision(new string('a', 40), Dirty: true)),
        };
        ReportWriter.Write(dir.Path, set);
        var text = File.ReadAllText(dir.File(ResultsJson.FileName));
        var results = Validate(text);
        Assert.True(results.IsValid, Errors(results));

        var doc = JsonNode.Parse(text)!;
        Assert.Equal(3, doc["settings"]!["repeats"]!.GetValue<int>());
        Assert.True(doc["source"]!["dirty"]!.GetValue<bool>());
        Assert.Equal(set.Machine!.Toolchains["rustc"], doc["machine"]!["Toolchains"]!["rustc"]!.GetValue<string>());
        var experiments = doc["experiments"]!.AsArray();
        Assert.Equal(ExperimentStats.Group(set.Rows).Count, experiments.Count);
        // The summary's notes are there, experiment by experiment.
        var summary = File.ReadAllText(dir.File("summary.md"));
        var notes = experiments.SelectMany(e => e!["notes"]!.AsArray().Select(n => n!.GetValue<string>())).ToList();
        Assert.NotEmpty(notes);
        Assert.All(notes, n => Assert.Contains(n, summary));

        // The schema is not a formality: a damaged document fails it.
        var broken = JsonNode.Parse(text)!;
        broken["experiments"]![0]!["repeats"]![0]!["status"] = "great";
        Assert.False(Validate(broken.ToJsonString()).IsValid);
        broken = JsonNode.Parse(text)!;
        broken.AsObject().Remove("machine");
        Assert.False(Validate(broken.ToJsonString()).IsValid);
    }

    [Fact]
    public void report_and_compare_take_a_results_json_as_well_as_a_runs_csv()
    {
        using var dir = new TempDir();
        ReportWriter.Write(dir.Path, SampleWithCatalog());
        var json = dir.File(ResultsJson.FileName);
        var csv = Path.Combine(Sample, "runs.csv");
        Assert.Equal(ResultsCsv.Read(csv).Count, ResultSet.Read(json).Rows.Count);
        var fromJson = Comparison.Compute(ResultSet.Read(json).Rows, ResultSet.Read(json).Rows, 0.1, 0.05);
        var fromCsv = Comparison.Compute(ResultSet.Read(csv).Rows, ResultSet.Read(csv).Rows, 0.1, 0.05);
        Assert.Equal((fromCsv.Broken, fromCsv.Regressions), (fromJson.Broken, fromJson.Regressions));

        File.WriteAllText(dir.File("future.json"), """{ "schema_version": 99 }""");
        var e = Assert.Throws<CorruptResultsException>(() => ResultSet.Read(dir.File("future.json")));
        Assert.Contains("schema_version 99", e.Message);
    }
}
