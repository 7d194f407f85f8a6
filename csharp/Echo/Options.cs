using System.Globalization;

namespace Bench.Echo;

public sealed class UsageException(string message) : Exception(message);

/// <summary>`--name value` pairs, parsed once, each value taken at most once.</summary>
sealed class Flags
{
    private readonly Dictionary<string, string> _values = new();

    public Flags(IReadOnlyList<string> args, params string[] known)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (!name.StartsWith("--") || !known.Contains(name[2..]))
                throw new UsageException($"unknown argument '{name}'");
            if (i + 1 >= args.Count)
                throw new UsageException($"'{name}' needs a value");
            _values[name[2..]] = args[++i];
        }
    }

    public string Text(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    public string? Optional(string name) => _values.GetValueOrDefault(name);

    public double Number(string name, double fallback, double min, double max)
    {
        if (!_values.TryGetValue(name, out var raw)) return fallback;
        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw new UsageException($"--{name} must be a number from {min} to {max}, not '{raw}'");
        return value;
    }

    public int Integer(string name, int fallback, int min, int max)
    {
        var value = Number(name, fallback, min, max);
        if (value != Math.Floor(value)) throw new UsageException($"--{name} must be a whole number");
        return (int)value;
    }
}

public enum ServerDesign { ZeroByte, Async, Saea, Pipelines }

public sealed record ServerOptions(string Host, int Port, ServerDesign Design)
{
    public static ServerOptions Parse(IReadOnlyList<string> args)
    {
        var f = new Flags(args, "host", "port", "design");
        var design = f.Text("design", "zerobyte") switch
        {
            "async" => ServerDesign.Async,
            "zerobyte" => ServerDesign.ZeroByte,
            "saea" => ServerDesign.Saea,
            "pipelines" => ServerDesign.Pipelines,
            var other => throw new UsageException($"--design must be zerobyte, async, saea or pipelines, not '{other}'"),
        };
        return new(f.Text("host", "127.0.0.1"), f.Integer("port", 0, 0, 65535), design);
    }
}

public enum Workload { Burst, Persistent }

public sealed record ClientOptions(
    string Host, int Port, int Connections, int Payload, Workload Workload,
    TimeSpan Duration, double Rate, string? SamplesPath, TimeSpan Timeout)
{
    public static ClientOptions Parse(IReadOnlyList<string> args)
    {
        var f = new Flags(args, "host", "port", "connections", "payload", "workload", "duration", "rate", "samples", "timeout");
        if (f.Optional("port") is null) throw new UsageException("--port is required");
        var workload = f.Text("workload", "burst") switch
        {
            "burst" => Workload.Burst,
            "persistent" => Workload.Persistent,
            var other => throw new UsageException($"--workload must be burst or persistent, not '{other}'"),
        };
        return new(
            f.Text("host", "127.0.0.1"),
            f.Integer("port", 0, 1, 65535),
            f.Integer("connections", 10_000, 1, 1_000_000),
            f.Integer("payload", 100, 1, 64 << 20),
            workload,
            TimeSpan.FromSeconds(f.Number("duration", 5, 0.001, 86_400)),
            f.Number("rate", 0, 0, 1e9),
            f.Optional("samples"),
            TimeSpan.FromSeconds(f.Number("timeout", 30, 0.001, 86_400)));
    }
}
