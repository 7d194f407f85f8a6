using System.Globalization;

namespace Memif.Echo;

/// <summary>"--name value" pairs, checked against the names a command accepts.</summary>
public sealed class Arguments
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> known)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string name = e.Current;
            if (!name.StartsWith("--", StringComparison.Ordinal) || !known.Contains(name[2..]))
                throw new UsageException($"unknown argument '{name}'");
            if (!e.MoveNext()) throw new UsageException($"{name} needs a value");
            _values[name[2..]] = e.Current;
        }
    }

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public int? Int(string name, int min, int max)
    {
        if (Get(name) is not { } s) return null;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new UsageException($"--{name} must be an integer from {min} to {max}, got '{s}'");
        return v;
    }

    public double? Double(string name, double min, double max)
    {
        if (Get(name) is not { } s) return null;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v < min || v > max)
            throw new UsageException($"--{name} must be a number from {min} to {max}, got '{s}'");
        return v;
    }
}
