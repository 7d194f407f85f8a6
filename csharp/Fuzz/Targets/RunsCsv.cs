using Bench.Harness.Results;

namespace Fuzz.Targets;

/// <summary>A runs.csv (<see cref="ResultsCsv.Read"/>). The rejection is a <see cref="CorruptResultsException"/>, which names the line.</summary>
sealed class RunsCsv() : FuzzTarget("runs-csv", "ResultsCsv.Read")
{
    protected override void Feed(ReadOnlySpan<byte> input) => ResultsCsv.Read(Scratch.Write("runs.csv", input));

    protected override bool IsRejection(Exception e) => e is CorruptResultsException;

    /// <summary>Rows as the harness writes them today (corpus/runs-csv also holds an older file, from results/sample).</summary>
    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            var path = Scratch.Write("seed-runs.csv", []);
            File.Delete(path); // Append writes the header into a new file
            var csv = new ResultsCsv(path);
            csv.Append(new RunRecord
            {
                RunId = "20261201-080000", Timestamp = new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero), Server = "rust-tokio",
                Client = "cpp-epoll", Workload = "persistent", Connections = 1000, InFlight = 1000, PayloadBytes = 100, DurationS = 10,
                Ok = 1_538_190, ReqPerS = 153_819, LatP50Us = 6.2, WarmupSteady = true, Status = RunStatus.Ok,
            });
            csv.Append(new RunRecord
            {
                RunId = "20261201-080000", Timestamp = new DateTimeOffset(2026, 12, 1, 8, 0, 5, TimeSpan.Zero), Server = "csharp",
                Client = "csharp", Workload = "burst", Connections = 10000, Failed = 3, Status = RunStatus.Failed, Error = "a \"quoted\",\nmultiline error",
            });
            yield return ("written-today.csv", File.ReadAllBytes(path));
        }
    }
}
