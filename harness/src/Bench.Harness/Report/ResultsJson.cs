using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bench.Harness.Machine;
using Bench.Harness.Results;
using CsvHelper.Configuration.Attributes;

namespace Bench.Harness.Report;

/// <summary>
/// results.json: the whole result set in one self-describing file (docs/results.schema.json):
/// the suite's settings, the machine and its toolchains, the source revision, and each
/// experiment with its figures, its notes and every repeat's row under runs.csv's column names.
/// </summary>
public static class ResultsJson
{
    public const string FileName = "results.json";

    /// <summary>Raised by one whenever the layout changes; a reader refuses versions it does not know.</summary>
    public const int SchemaVersion = 1;

    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Every runs.csv column and the property that holds it: a repeat in JSON is its CSV row, name for name.</summary>
    private static readonly IReadOnlyList<(string Column, PropertyInfo Property)> Columns =
        typeof(RunRecord).GetProperties().Select(p => (p.GetCustomAttribute<NameAttribute>()?.Names[0], p))
            .Where(c => c.Item1 is not null).Select(c => (c.Item1!, c.p)).ToList();

    public static void Write(string path, ResultSet set, IReadOnlyList<ExperimentStats> stats, IReadOnlyList<DrawnChart> charts)
    {
        var suite = set.Suite;
        var doc = new JsonObject
        {
            ["schema_version"] = SchemaVersion,
            ["run_ids"] = new JsonArray([.. set.Rows.Select(r => r.RunId).Distinct().Select(id => JsonValue.Create(id))]),
            ["settings"] = suite?.Settings.DeepClone(),
            ["source"] = suite?.Source is { } source ? new JsonObject { ["commit"] = source.Commit, ["dirty"] = source.Dirty } : null,
            ["machine"] = set.Machine is null ? null : JsonSerializer.SerializeToNode(set.Machine),
            ["implementations"] = new JsonArray([.. set.Implementations.Select(i => new JsonObject
            {
                ["name"] = i.Name, ["language"] = i.Language, ["design"] = i.Design, ["build_log"] = i.BuildLog,
            })]),
            ["experiments"] = new JsonArray([.. stats.Select(Experiment)]),
            ["charts"] = new JsonArray([.. charts.Select(c => new JsonObject { ["title"] = c.Title, ["file"] = c.File })]),
        };
        File.WriteAllText(path, doc.ToJsonString(Options));
    }

    private static JsonObject Experiment(ExperimentStats e) => new()
    {
        ["section"] = e.Workload.Section(e).Title,
        ["server"] = e.Server,
        ["generator"] = e.Generator,
        ["transport"] = e.Transport,
        ["workload"] = e.Workload.Name,
        ["connections"] = e.Connections,
        ["in_flight"] = e.InFlight,
        ["payload_bytes"] = e.Payload,
        ["rate"] = e.Rate,
        ["load"] = e.Load,
        ["figures"] = new JsonObject(Figures.All.Select(f => (f, s: e.Of(f))).Where(x => x.s is not null).Select(x =>
            KeyValuePair.Create<string, JsonNode?>(x.f.Column, new JsonObject
            {
                ["unit"] = x.f.Unit, ["n"] = x.s!.N, ["median"] = x.s.Median, ["min"] = x.s.Min, ["max"] = x.s.Max,
                ["mean"] = x.s.Mean, ["ci95_low"] = x.s.CiLow, ["ci95_high"] = x.s.CiHigh,
            }))),
        ["notes"] = new JsonArray([.. Anomalies.Explain(e).Select(n => JsonValue.Create(n))]),
        ["repeats"] = new JsonArray([.. e.Runs.Select(Row)]),
    };

    private static JsonObject Row(RunRecord row) =>
        new(Columns.Select(c => KeyValuePair.Create(c.Column, JsonSerializer.SerializeToNode(c.Property.GetValue(row), c.Property.PropertyType))));

    /// <summary>Reads a results.json back into the set it describes; a damaged file or an unknown version is an error naming the file.</summary>
    public static ResultSet Read(string path)
    {
        if (!File.Exists(path)) throw new CorruptResultsException($"{path}: no such file");
        try
        {
            var doc = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new CorruptResultsException($"{path}: empty");
            var version = doc["schema_version"]?.GetValue<int>();
            if (version != SchemaVersion)
                throw new CorruptResultsException($"{path}: schema_version {version?.ToString() ?? "missing"}; this harness reads version {SchemaVersion}");
            var rows = doc["experiments"]!.AsArray().SelectMany(e => e!["repeats"]!.AsArray()).Select(r => ReadRow(r!.AsObject())).ToList();
            var source = doc["source"] is JsonObject s ? new SourceRevision(s["commit"]!.GetValue<string>(), s["dirty"]!.GetValue<bool>()) : null;
            return new ResultSet(rows, doc["machine"]?.Deserialize<MachineFacts>(), [])
            {
                Suite = doc["settings"] is JsonObject settings ? new SuiteFacts((JsonObject)settings.DeepClone(), source) : null,
                Implementations = [.. doc["implementations"]!.AsArray().Select(i => new ImplementationFacts(
                    i!["name"]!.GetValue<string>(), i["language"]!.GetValue<string>(), i["design"]!.GetValue<string>(), i["build_log"]!.GetValue<string>()))],
            };
        }
        catch (Exception x) when (x is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new CorruptResultsException($"{path}: not a results.json this harness can read: {x.Message}");
        }
    }

    private static RunRecord ReadRow(JsonObject json)
    {
        var row = new RunRecord();
        foreach (var (column, property) in Columns)
            if (json[column] is { } value) property.SetValue(row, value.Deserialize(property.PropertyType));
        return row;
    }
}
