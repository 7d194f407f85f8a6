using System.Globalization;

namespace Bench.Harness.CommandLine;

/// <summary>Reads `--name value` and `--flag` arguments; anything unknown or malformed is a clear error.</summary>
public sealed class ArgReader
{
    private readonly List<string> _args;

    public ArgReader(IEnumerable<string> args) => _args = args.ToList();

    public bool Flag(string name) => _args.Remove(name);

    public string? Text(string name)
    {
        var i = _args.IndexOf(name);
        if (i < 0) return null;
        if (i + 1 >= _args.Count || _args[i + 1].StartsWith("--", StringComparison.Ordinal))
            throw new UsageException($"{name} needs a value");
        var value = _args[i + 1];
        _args.RemoveRange(i, 2);
        return value;
    }

    public IReadOnlyList<string>? List(string name) =>
        Text(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public int? Int(string name, int min, int max) => Text(name) is { } t ? Parse(name, t, min, max) : null;

    public IReadOnlyList<int>? Ints(string name, int min, int max) => List(name)?.Select(t => Parse(name, t, min, max)).ToList();

    public double? Number(string name, double min, double max)
    {
        if (Text(name) is not { } t) return null;
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new UsageException($"{name} must be a number from {min} to {max}, not '{t}'");
        return v;
    }

    /// <summary>The next argument that is not an option, e.g. a command's NAME.</summary>
    public string? Positional()
    {
        var i = _args.FindIndex(a => !a.StartsWith("--", StringComparison.Ordinal));
        if (i < 0) return null;
        var value = _args[i];
        _args.RemoveAt(i);
        return value;
    }

    /// <summary>Call last: anything not taken is a mistake the user should hear about.</summary>
    public void EnsureEmpty()
    {
        if (_args.Count > 0) throw new UsageException($"unknown argument '{_args[0]}' (see --help)");
    }

    private static int Parse(string name, string t, int min, int max)
    {
        if (!int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new UsageException($"{name} takes whole numbers from {min} to {max}, not '{t}'");
        return v;
    }
}

public sealed class UsageException(string message) : Exception(message);
