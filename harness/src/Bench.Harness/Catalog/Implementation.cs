using Bench.Harness.Workloads;

namespace Bench.Harness.Catalog;

/// <summary>One catalog entry, resolved: commands are absolute, defaults are filled in.</summary>
public sealed record Implementation(
    string Name,
    string Language,
    string Design,
    string Folder,
    BuildSpec Build,
    IReadOnlyList<string>? ServerCommand,
    IReadOnlyList<string>? ClientCommand,
    IReadOnlyList<string> Transports,
    IReadOnlyList<Workload> Workloads,
    bool InDefaultSuite,
    string? ClientProgram = null)
{
    public bool HasServer => ServerCommand is not null;
    public bool HasClient => ClientCommand is not null;
}

/// <summary>Every implementation in the repository, discovered from the bench.json files.</summary>
public sealed class ImplementationCatalog(IReadOnlyList<Implementation> all)
{
    // Build output and dependencies are never manifests of ours.
    private static readonly HashSet<string> SkippedFolders = ["bin", "obj", "build", "target", "node_modules", ".git", "results"];

    public IReadOnlyList<Implementation> All { get; } = all;

    public static ImplementationCatalog Discover(string repositoryRoot)
    {
        var found = new List<Implementation>();
        foreach (var path in FindManifests(repositoryRoot).Order(StringComparer.Ordinal))
        {
            var manifest = Manifest.Parse(File.ReadAllText(path), Path.GetRelativePath(repositoryRoot, path));
            var folder = Path.GetDirectoryName(path)!;
            foreach (var spec in manifest.Implementations)
            {
                if (found.FirstOrDefault(i => i.Name == spec.Name) is { } twin)
                    throw new ManifestException(path, $"'{spec.Name}' is already defined in {twin.Folder}");
                found.Add(new Implementation(
                    spec.Name, manifest.Language, spec.Design, folder, manifest.Build,
                    Resolve(spec.Server, folder), Resolve(spec.Client, folder),
                    spec.Transports ?? [Catalog.Transports.Tcp],
                    spec.Workloads?.Select(w => Workload.Find(w)!).ToList() ?? [.. Workload.All.Where(w => w.IsManifestDefault)],
                    spec.InDefaultSuite ?? true,
                    spec.Client is null ? null : string.Join(' ', spec.Client)));
            }
        }
        return new ImplementationCatalog(found);
    }

    /// <summary>The named implementations, in the order asked; an unknown name is an error that lists the known ones.</summary>
    public IReadOnlyList<Implementation> Select(IEnumerable<string> names) =>
        names.Select(n => All.FirstOrDefault(i => i.Name == n)
            ?? throw new ArgumentException($"no implementation named '{n}'; known: {string.Join(", ", All.Select(i => i.Name))}")).ToList();

    private static IEnumerable<string> FindManifests(string folder)
    {
        var here = Path.Combine(folder, "bench.json");
        if (File.Exists(here)) yield return here;
        foreach (var sub in Directory.EnumerateDirectories(folder))
            if (!SkippedFolders.Contains(Path.GetFileName(sub)))
                foreach (var m in FindManifests(sub)) yield return m;
    }

    /// <summary>A command's program is resolved against the folder when it names a file there; `python3` stays a PATH lookup.</summary>
    private static IReadOnlyList<string>? Resolve(IReadOnlyList<string>? command, string folder)
    {
        if (command is null) return null;
        var program = command[0].Contains('/') ? Path.GetFullPath(Path.Combine(folder, command[0])) : command[0];
        return [program, .. command.Skip(1)];
    }
}
