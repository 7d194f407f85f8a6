using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using CsvHelper.TypeConversion;

namespace Bench.Harness.Results;

/// <summary>
/// runs.csv, written one row at a time: each row is flushed to disk as its run ends, so a
/// crash later in the suite loses nothing already measured. Rows are written with LF line ends;
/// reading takes RFC 4180 files with LF or CRLF line ends (a CSV saved by a spreadsheet or by
/// Python's csv module), quoted fields holding commas, quotes and line breaks included.
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
            csv.Context.TypeConverterCache.AddConverter<DateTimeOffset>(new IsoUtcTimestampConverter());
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
        if (Incomplete(text) is { } why)
            throw new CorruptResultsException($"{path}: the last row is incomplete ({why}): " +
                                              "the harness that wrote it was stopped mid-write; remove that line to read the rest");
        var config = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            // NewLine is left unset: only then does the parser take \n, \r\n and \r alike as a row's end.
            // Columns added to the schema later are absent from old files: those read as empty.
            HeaderValidated = null,
            MissingFieldFound = args =>
            {
                // A column the file's header lacks (added to the schema later) reads as empty; a row shorter than its header is damage.
                if (args.HeaderNames is { } names && args.Context.Reader?.HeaderRecord is { } header && !names.Any(header.Contains)) return;
                throw new CorruptResultsException($"{path}: line {args.Context.Parser?.RawRow}: too few fields");
            },
            BadDataFound = args => throw new CorruptResultsException($"{path}: line {args.Context.Parser?.RawRow}: malformed field {args.Field}"),
        };
        using var reader = new StringReader(text);
        using var csv = new CsvReader(reader, config);
        csv.Context.TypeConverterCache.AddConverter<DateTimeOffset>(new IsoUtcTimestampConverter());
        try
        {
            var rows = csv.GetRecords<RunRecord>().ToList();
            var required = new[] { "run_id", "server", "workload", "status" };
            if (csv.HeaderRecord is { } header && required.FirstOrDefault(r => !header.Contains(r)) is { } missing)
                throw new CorruptResultsException($"{path}: not a runs.csv (no '{missing}' column)");
            // Files from before the in_flight column are read in today's terms (RunRecord.UpgradeLegacy).
            if (csv.HeaderRecord is { } old && !old.Contains(RunRecord.InFlightColumn))
                foreach (var row in rows) row.UpgradeLegacy();
            return rows;
        }
        catch (CsvHelperException e)
        {
            throw new CorruptResultsException($"{path}: line {e.Context?.Parser?.RawRow}: {(e.InnerException ?? e).Message.Split('\n')[0]}");
        }
    }

    /// <summary>
    /// Why the text does not end at the end of a row, or null when it does. Every row ends in a
    /// line break (LF, CRLF, or a lone CR, which the parser also takes as one), and that break must
    /// lie outside quotes: RFC 4180 escapes a quote inside a quoted field by doubling it, so an odd
    /// number of quote characters means the text stops inside a quoted field (which may hold line breaks).
    /// </summary>
    private static string? Incomplete(string text)
    {
        if (text.Length == 0) return null;
        if (text[^1] is not ('\n' or '\r')) return $"line {LineBreaks(text) + 1} has no line end";
        if (text.Count(c => c == '"') % 2 != 0) return $"it stops inside a quoted field, at line {LineBreaks(text)}";
        return null;
    }

    /// <summary>Line breaks in the text, counting CRLF once.</summary>
    private static int LineBreaks(string text)
    {
        var count = 0;
        for (var i = 0; i < text.Length; i++)
            if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.Length || text[i + 1] != '\n'))) count++;
        return count;
    }
}

/// <summary>
/// The timestamp column: written as ISO 8601 in UTC to the millisecond (2026-11-30T11:48:54.123Z),
/// as docs/results.md says. Read in that form or in the one older harnesses wrote
/// (11/30/2026 11:48:54 +00:00, the invariant culture's); a value without an offset is UTC.
/// </summary>
internal sealed class IsoUtcTimestampConverter : DefaultTypeConverter
{
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public override string? ConvertToString(object? value, IWriterRow row, MemberMapData memberMapData) => value switch
    {
        DateTimeOffset t => t.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture),
        _ => base.ConvertToString(value, row, memberMapData),
    };

    public override object? ConvertFromString(string? text, IReaderRow row, MemberMapData memberMapData)
    {
        if (!string.IsNullOrWhiteSpace(text) &&
            DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var t))
            return t.ToUniversalTime();
        return base.ConvertFromString(text, row, memberMapData); // throws, naming the row and the field
    }
}

public sealed class CorruptResultsException(string message) : Exception(message);
