using System.Text.Json.Serialization;
using System.Text.Json;
using Bench.Harness.Workloads;

namespace Bench.Harness.Catalog;

/// <summary>A folder's bench.json, as written (docs/contract.md, "Manifest").</summary>
public sealed record Manifest(
    string Language,
    BuildSpec Build,
    IReadOnlyList<ImplementationSpec> Implementations)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Parses and checks one manifest; every problem names the file and the field.</summary>
    public static Manifest Parse(string json, string path)
    {
        Manifest? manifest;
        try { manifest = JsonSerializer.Deserialize<Manifest>(json, Json); }
        catch (JsonException e) { throw new ManifestException(path, e.Message); }
        if (manifest is null) throw new ManifestException(path, "the file is empty");
        manifest.Validate(path);
        return manifest;
    }

    private void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Language)) throw new ManifestException(path, "'language' is missing");
        if (Build is null) throw new ManifestException(path, "'build' is missing");
        if (!Toolchains.Known.Contains(Build.Toolchain))
            throw new ManifestException(path, $"build.toolchain '{Build.Toolchain}' is not one of {string.Join(", ", Toolchains.Known)}");
        if (Build.Toolchain == Toolchains.Dotnet && string.IsNullOrWhiteSpace(Build.Project))
            throw new ManifestException(path, "a dotnet build needs build.project");
        foreach (var input in Build.Inputs ?? [])
            if (string.IsNullOrWhiteSpace(input) || Path.IsPathRooted(input))
                throw new ManifestException(path, $"build.inputs '{input}' must be a path relative to the manifest's folder");
        if (Implementations is not { Count: > 0 }) throw new ManifestException(path, "'implementations' is empty");
        foreach (var impl in Implementations)
        {
            if (string.IsNullOrWhiteSpace(impl.Name) || impl.Name.Any(ch => !(char.IsAsciiLetterLower(ch) || char.IsAsciiDigit(ch) || ch == '-')))
                throw new ManifestException(path, $"implementation name '{impl.Name}' must be lower-case letters, digits and dashes");
            if (string.IsNullOrWhiteSpace(impl.Design)) throw new ManifestException(path, $"{impl.Name}: 'design' is missing");
            if (impl.Server is null && impl.Client is null) throw new ManifestException(path, $"{impl.Name}: needs a server, a client or both");
            if (impl.Server is { Count: 0 } || impl.Client is { Count: 0 }) throw new ManifestException(path, $"{impl.Name}: an empty command");
            foreach (var t in impl.Transports ?? [])
                if (!Transports.Known.Contains(t)) throw new ManifestException(path, $"{impl.Name}: transport '{t}' is not one of {string.Join(", ", Transports.Known)}");
            foreach (var w in impl.Workloads ?? [])
                if (Workload.Find(w) is null) throw new ManifestException(path, $"{impl.Name}: workload '{w}' is not one of {Workload.Names}");
        }
    }
}

/// <summary>How a folder is built. Inputs: paths outside the folder its build reads (relative to it), so a change there rebuilds it.</summary>
public sealed record BuildSpec(string Toolchain, string? Project = null, IReadOnlyList<string>? Inputs = null);

public sealed record ImplementationSpec(
    string Name,
    string Design,
    IReadOnlyList<string>? Server,
    IReadOnlyList<string>? Client,
    IReadOnlyList<string>? Transports = null,
    IReadOnlyList<string>? Workloads = null,
    [property: JsonPropertyName("default")] bool? InDefaultSuite = null);

public static class Toolchains
{
    public const string Dotnet = "dotnet", Cmake = "cmake", Cargo = "cargo", Python = "python", Go = "go";
    public static readonly IReadOnlyList<string> Known = [Dotnet, Cmake, Cargo, Python, Go];
}

public static class Transports
{
    public const string Tcp = "tcp", Unix = "unix", Vsock = "vsock", Memif = "memif";
    public static readonly IReadOnlyList<string> Known = [Tcp, Unix, Vsock, Memif];
}

public sealed class ManifestException(string path, string problem) : Exception($"{path}: {problem}");
