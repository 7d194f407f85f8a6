// The argument parser of the C# programs (csharp/Echo, csharp/Grpc, csharp/Memif): one source
// file, linked into each project that parses arguments (<Compile Include=... Link=... />), so
// every program reads its command line, and reports a bad one, the same way.
using System.Globalization;

namespace Bench.CommandLine;

/// <summary>
/// A user error: a bad argument, environment variable or config value. A program's entry point
/// catches this and nothing else, prints <c>program: message</c> on one line of stderr and exits
/// 2 (<see cref="CommandArguments.ReportUsageError"/>). Any other exception is a bug, never a
/// usage error. Not sealed: a program may derive the user errors it wants to tell apart.
/// </summary>
public class UsageException(string message) : Exception(message);

/// <summary>
/// <c>--name value</c> pairs and bare <c>--switch</c> flags, checked against the names a command
/// accepts. An unknown name, a name given twice, or a valued name without its value is a
/// <see cref="UsageException"/>. Names are given without their leading dashes. A valued option
/// may fall back to an environment variable (<c>variables</c>); arguments win.
/// </summary>
public sealed class CommandArguments
{
    /// <summary>The exit status of a program told something it cannot use.</summary>
    public const int UsageExitCode = 2;

    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _switches = new(StringComparer.Ordinal);
    private readonly HashSet<string> _valuedNames, _switchNames;
    private readonly Func<string, string?> _environment;
    private readonly IReadOnlyDictionary<string, string> _variables;

    /// <param name="args">the arguments after the program (and its subcommand, if any)</param>
    /// <param name="valued">names that take a value: <c>--name value</c></param>
    /// <param name="switches">names that stand alone: <c>--name</c></param>
    /// <param name="environment">reads an environment variable (null or empty: unset); none by default</param>
    /// <param name="variables">valued name to the environment variable it falls back to</param>
    /// <param name="retired">names no longer accepted, each with what to say instead of "unknown argument"</param>
    public CommandArguments(
        IReadOnlyList<string> args,
        IEnumerable<string> valued,
        IEnumerable<string>? switches = null,
        Func<string, string?>? environment = null,
        IReadOnlyDictionary<string, string>? variables = null,
        IReadOnlyDictionary<string, string>? retired = null)
    {
        var valuedNames = _valuedNames = valued.ToHashSet(StringComparer.Ordinal);
        var switchNames = _switchNames = (switches ?? []).ToHashSet(StringComparer.Ordinal);
        _environment = environment ?? (_ => null);
        _variables = variables ?? new Dictionary<string, string>();
        foreach (var name in _variables.Keys)
            if (!valuedNames.Contains(name))
                throw new ArgumentException($"environment fallback for '{name}', which takes no value", nameof(variables));

        bool IsName(string arg) =>
            arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2 &&
            (valuedNames.Contains(arg[2..]) || switchNames.Contains(arg[2..]) || retired?.ContainsKey(arg[2..]) == true);

        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : "";
            if (retired is not null && retired.TryGetValue(name, out var instead))
                throw new UsageException($"{arg} is no longer accepted: {instead}");
            if (_values.ContainsKey(name) || _switches.Contains(name))
                throw new UsageException($"{arg} is given twice");
            if (switchNames.Contains(name))
            {
                _switches.Add(name);
                continue;
            }
            if (!valuedNames.Contains(name))
                throw new UsageException(name.Length > 0 && name.Contains('=')
                    ? $"unknown argument '{arg}' (write '--{name[..name.IndexOf('=')]} VALUE', with a space)"
                    : $"unknown argument '{arg}'");
            // The next argument is the value, unless there is none or it is itself one of our names
            // (`--port --host h` forgot the port; it did not mean a port called "--host").
            if (i + 1 >= args.Count || IsName(args[i + 1]))
                throw new UsageException($"{arg} needs a value");
            _values[name] = args[++i];
        }
    }

    /// <summary>True when the arguments ask for the usage text (<c>--help</c> or <c>-h</c> anywhere).</summary>
    public static bool AsksForHelp(IReadOnlyList<string> args) => args.Any(a => a is "--help" or "-h");

    /// <summary>
    /// What an entry point does with a <see cref="UsageException"/>: one line on stderr,
    /// <c>program: message</c>, and the exit status 2 to return.
    /// </summary>
    public static int ReportUsageError(string program, UsageException error)
    {
        Console.Error.WriteLine($"{program}: {error.Message.ReplaceLineEndings(" ")}");
        Console.Error.Flush();
        return UsageExitCode;
    }

    /// <summary>True when the valued option was given, or its environment variable is set, or the switch was given.</summary>
    public bool Has(string name) =>
        _switchNames.Contains(name) ? _switches.Contains(name) : Raw(name) is not null;

    /// <summary>True when the bare switch <c>--name</c> was given.</summary>
    public bool Switch(string name) =>
        _switchNames.Contains(name) ? _switches.Contains(name) : throw Undeclared(name, "switch");

    /// <summary>An environment variable the command reads directly (not as an option's fallback); null when unset or empty.</summary>
    public string? Variable(string variable) => _environment(variable) is { Length: > 0 } value ? value : null;

    /// <summary>How to name the option in a message: <c>--name</c>, or its variable when the value came from there.</summary>
    public string Origin(string name) =>
        !_values.ContainsKey(name) && _variables.TryGetValue(name, out var variable) && Variable(variable) is not null
            ? variable
            : "--" + name;

    /// <summary>The option's text, or null when it was not given.</summary>
    public string? Text(string name) => Raw(name);

    /// <summary>The option's text, or <paramref name="fallback"/> when it was not given.</summary>
    public string Text(string name, string fallback) => Raw(name) ?? fallback;

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when not given.</summary>
    public int Integer(string name, int fallback, int min, int max) =>
        Raw(name) is { } text ? ParseInteger(Origin(name), text, min, max) : fallback;

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when not given.</summary>
    public long LongInteger(string name, long fallback, long min, long max) =>
        Raw(name) is { } text ? ParseLongInteger(Origin(name), text, min, max) : fallback;

    /// <summary>A number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when not given.</summary>
    public double Number(string name, double fallback, double min, double max) =>
        Raw(name) is { } text ? ParseNumber(Origin(name), text, min, max) : fallback;

    /// <summary>A whole number in range; <paramref name="what"/> names the setting in the message.</summary>
    public static int ParseInteger(string what, string text, int min, int max) =>
        (int)ParseLongInteger(what, text, min, max);

    /// <summary>A whole number in range; <paramref name="what"/> names the setting in the message.</summary>
    public static long ParseLongInteger(string what, string text, long min, long max) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"{what} must be a whole number from {min} to {max}, not '{text}'"));

    /// <summary>A finite number in range (so never NaN); <paramref name="what"/> names the setting in the message.</summary>
    public static double ParseNumber(string what, string text, double min, double max) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"{what} must be a number from {min} to {max}, not '{text}'"));

    private string? Raw(string name) =>
        !_valuedNames.Contains(name) ? throw Undeclared(name, "option with a value")
        : _values.TryGetValue(name, out var value) ? value
        : _variables.TryGetValue(name, out var variable) ? Variable(variable)
        : null;

    // Asking for a name the command never declared is the program's mistake, not the user's.
    private static ArgumentException Undeclared(string name, string what) =>
        new($"the command declares no {what} '--{name}'", nameof(name));
}
