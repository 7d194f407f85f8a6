using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using CsvHelper.Configuration.Attributes;

namespace Bench.Harness.Microbench;

/// <summary>One BenchmarkDotNet result, as a row of the result set's microbench.csv.</summary>
public sealed class MicrobenchRecord
{
    [Name("run_id")] public string RunId { get; set; } = "";
    [Name("project")] public string Project { get; set; } = "";
    [Name("benchmark")] public string Benchmark { get; set; } = "";
    [Name("parameters")] public string Parameters { get; set; } = "";
    [Name("mean_ns")] public double MeanNs { get; set; }
    [Name("error_ns")] public double? ErrorNs { get; set; }
    [Name("stddev_ns")] public double? StdDevNs { get; set; }
    [Name("allocated_bytes")] public double? AllocatedBytes { get; set; }

    private static readonly CsvConfiguration Config = new(CultureInfo.InvariantCulture) { NewLine = "\n" };

    public static void WriteAll(string path, IEnumerable<MicrobenchRecord> rows)
    {
        using var writer = new StreamWriter(path);
        using var csv = new CsvWriter(writer, Config);
        csv.WriteRecords(rows);
    }

    public static IReadOnlyList<MicrobenchRecord> ReadAll(string path)
    {
        if (!File.Exists(path)) return [];
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, Config);
        return csv.GetRecords<MicrobenchRecord>().ToList();
    }
}

/// <summary>Reads BenchmarkDotNet's `*-report.csv`, whose figures carry units ("12.3 ns", "1.2 KB").</summary>
public static class BdnReport
{
    // Columns BenchmarkDotNet always writes; anything else between Method and Mean is a [Params] value.
    private static readonly HashSet<string> Fixed = ["Method", "Job", "AnalyzeLaunchVariance", "EvaluateOverhead", "MaxAbsoluteError", "MaxRelativeError",
        "MinInvokeCount", "MinIterationTime", "OutlierMode", "Affinity", "EnvironmentVariables", "Jit", "LargeAddressAware", "Platform", "PowerPlanMode",
        "Runtime", "AllowVeryLargeObjects", "Concurrent", "CpuGroups", "Force", "HeapAffinitizeMask", "HeapCount", "NoAffinitize", "RetainVm", "Server",
        "Arguments", "BuildConfiguration", "Clock", "EngineFactory", "NuGetReferences", "Toolchain", "IsMutator", "InvocationCount", "IterationCount",
        "IterationTime", "LaunchCount", "MaxIterationCount", "MaxWarmupIterationCount", "MemoryRandomization", "MinIterationCount", "MinWarmupIterationCount",
        "RunStrategy", "UnrollFactor", "WarmupCount", "Mean", "Error", "StdDev", "Median", "Gen0", "Gen1", "Gen2", "Allocated", "Ratio", "RatioSD",
        "Alloc Ratio", "Code Size", "Completed Work Items", "Lock Contentions"];

    public static IEnumerable<MicrobenchRecord> Read(string path, string runId, string project)
    {
        using var reader = new StreamReader(path);
        using var csv = new CsvReader(reader, new CsvConfiguration(CultureInfo.InvariantCulture));
        csv.Read();
        csv.ReadHeader();
        var header = csv.HeaderRecord!;
        var type = Path.GetFileName(path).Split('-')[0].Split('.').Last();
        while (csv.Read())
        {
            var parameters = header.Where(h => !Fixed.Contains(h)).Select(h => $"{h}={csv.GetField(h)}");
            yield return new MicrobenchRecord
            {
                RunId = runId,
                Project = project,
                Benchmark = $"{type}.{csv.GetField("Method")}",
                Parameters = string.Join(' ', parameters),
                MeanNs = Nanoseconds(csv.GetField("Mean")) ?? double.NaN,
                ErrorNs = Nanoseconds(csv.GetField("Error")),
                StdDevNs = Nanoseconds(csv.GetField("StdDev")),
                AllocatedBytes = header.Contains("Allocated") ? Bytes(csv.GetField("Allocated")) : null,
            };
        }
    }

    public static double? Nanoseconds(string? text) => Scaled(text, new() { ["ns"] = 1, ["us"] = 1e3, ["μs"] = 1e3, ["ms"] = 1e6, ["s"] = 1e9 });

    public static double? Bytes(string? text) => text is "-" ? 0 : Scaled(text, new() { ["B"] = 1, ["KB"] = 1024, ["MB"] = 1 << 20, ["GB"] = 1 << 30 });

    private static double? Scaled(string? text, Dictionary<string, double> units)
    {
        if (string.IsNullOrWhiteSpace(text) || text == "NA") return null;
        var parts = text.Trim().Split(' ', 2);
        if (!double.TryParse(parts[0].Replace(",", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return null;
        return parts.Length == 2 && units.TryGetValue(parts[1], out var scale) ? value * scale : value;
    }
}
