using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;

namespace Bench.Harness.Results;

/// <summary>
/// runs.csv, written one row at a time: each row is flushed to disk as its run ends, so a
/// crash later in the suite loses nothing already measured.
/// </summary>
public sealed class ResultsCsv(string path)
{
    private static readonly CsvConfiguration Config = new(CultureInfo.InvariantCulture) { NewLine = "\n" };

    public string Path { get; } = path;

    public void Append(RunRecord record)
    {
        var isNew = !File.Exists(Path) || new FileInfo(Path).Length == 0;
        using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
        using (var writer = new StreamWriter(stream, leaveOpen: true))
        using (var csv = new CsvWriter(writer, Config))
        {
            if (isNew)
            {
                csv.WriteHeader<RunRecord>();
                csv.NextRecord();
            }
            csv.WriteRecord(record);
            csv.NextRecord();
        }
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Reads every row. A file cut off mid-row (a harness killed while writing) or a row that
    /// does not fit the schema is an error naming the line, never silently read as good.
    /// </summary>
    public static IReadOnlyList<RunRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new CorruptResultsException($"{path}: no such file");
        var text = File.ReadAllText(path);
        if (text.Length > 0 && !text.EndsWith('\n'))
            throw new CorruptResultsException($"{path}: the last row is incomplete (line {text.Count(c => c == '\n') + 1} has no line end): " +
                                              "the harness that wrote it was stopped mid-write; remove that line to read the rest");
        var config = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            NewLine = "\n",
            // Columns added to the schema later are absent from old files: those read as empty.
            HeaderValidated = null,
            MissingFieldFound = args => throw new CorruptResultsException($"{path}: line {args.Context.Parser?.RawRow}: too few fields"),
            BadDataFound = args => throw new CorruptResultsException($"{path}: line {args.Context.Parser?.RawRow}: malformed field {args.Field}"),
        };
        using var reader = new StringReader(text);
        using var csv = new CsvReader(reader, config);
        try
        {
            var rows = csv.GetRecords<RunRecord>().ToList();
            var required = new[] { "run_id", "server", "workload", "status" };
            if (csv.HeaderRecord is { } header && required.FirstOrDefault(r => !header.Contains(r)) is { } missing)
                throw new CorruptResultsException($"{path}: not a runs.csv (no '{missing}' column)");
            return rows;
        }
        catch (CsvHelperException e)
        {
            throw new CorruptResultsException($"{path}: line {e.Context?.Parser?.RawRow}: {e.Message.Split('\n')[0]}");
        }
    }
}

public sealed class CorruptResultsException(string message) : Exception(message);
