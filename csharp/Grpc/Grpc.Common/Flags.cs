using System.Globalization;

namespace GrpcBench;

public sealed class UsageException(string message) : Exception(message);

/// <summary>`--name value` pairs (and bare switches), parsed once; unknown names are errors.</summary>
public sealed class Flags
{
    private readonly Dictionary<string, string> _values = new();

    public Flags(IReadOnlyList<string> args, string[] valued, string[] switches)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var name = arg.StartsWith("--") ? arg[2..] : "";
            if (switches.Contains(name)) { _values[name] = "true"; continue; }
            if (!valued.Contains(name)) throw new UsageException($"unknown argument '{arg}'");
            if (i + 1 >= args.Count) throw new UsageException($"'{arg}' needs a value");
            _values[name] = args[++i];
        }
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string? Optional(string name) => _values.GetValueOrDefault(name);

    public int Integer(string name, int fallback, int min, int max) =>
        _values.TryGetValue(name, out var raw) ? ParseInteger("--" + name, raw, min, max) : fallback;

    public static int ParseInteger(string what, string raw, int min, int max) =>
        int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new UsageException($"{what} must be a whole number from {min} to {max}, not '{raw}'");
}
