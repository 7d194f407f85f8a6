using Bench.Harness.Build;
using Bench.Harness.Catalog;

namespace Bench.Harness.Tests;

/// <summary>
/// Each toolchain builds its folder from a clean copy, with no build output lying around, and
/// produces every program its manifest names: what a fresh machine does.
/// </summary>
public class BuildFromCleanTests
{
    /// <summary>
    /// The smallest folder of each toolchain (keeps the test quick), and every folder whose build
    /// reads inputs from outside it (code generated from proto/ by protoc, in each language).
    /// </summary>
    public static TheoryData<string> Folders
    {
        get
        {
            var folders = Repo.Catalog.All.GroupBy(i => i.Build.Toolchain).Select(g => g.Select(i => i.Folder).Distinct()
                .OrderBy(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories).Count()).First());
            folders = folders.Concat(Repo.Catalog.All.Where(i => i.Build.Inputs is { Count: > 0 }).Select(i => i.Folder));
            var data = new TheoryData<string>();
            foreach (var f in folders.Distinct().Order(StringComparer.Ordinal)) data.Add(Path.GetRelativePath(Repo.Root, f));
            return data;
        }
    }

    private static readonly HashSet<string> Output = ["bin", "obj", "build", "target", "__pycache__", "BenchmarkDotNet.Artifacts"];

    [Theory, MemberData(nameof(Folders))]
    public async Task folder_builds_from_a_clean_copy_and_yields_every_program_its_manifest_names(string relative)
    {
        using var copy = new TempDir();
        // Shared C# build settings live at the repository root, as they do in a clone.
        foreach (var shared in new[] { "Directory.Build.props", "Directory.Packages.props" })
            File.Copy(Path.Combine(Repo.Root, shared), copy.File(shared));
        // So do the C# programs' shared argument parser, which their projects link in, and the .proto every gRPC build generates from.
        foreach (var tree in new[] { "csharp/Shared", "proto" })
            CopyTree(Path.Combine(Repo.Root, tree), copy.File(tree));
        CopyTree(Path.Combine(Repo.Root, relative), copy.File(relative));
        // And what the manifest says its build reads from outside the folder (cpp/grpc: cpp/common).
        var declared = Manifest.Parse(File.ReadAllText(Path.Combine(Repo.Root, relative, "bench.json")), relative);
        foreach (var input in declared.Build.Inputs ?? [])
        {
            var inRepo = Path.GetRelativePath(Repo.Root, Path.GetFullPath(Path.Combine(Repo.Root, relative, input)));
            if (!Directory.Exists(copy.File(inRepo))) CopyTree(Path.Combine(Repo.Root, inRepo), copy.File(inRepo));
        }
        // Cargo reads .cargo/config.toml in every folder above too (rust/'s replaces crates.io with Debian's crates).
        for (var above = Path.GetDirectoryName(relative); !string.IsNullOrEmpty(above); above = Path.GetDirectoryName(above))
            if (Directory.Exists(Path.Combine(Repo.Root, above, ".cargo")))
                CopyTree(Path.Combine(Repo.Root, above, ".cargo"), copy.File(Path.Combine(above, ".cargo")));
        var cleanFolder = copy.File(relative);

        var spec = Manifest.Parse(File.ReadAllText(Path.Combine(cleanFolder, "bench.json")), relative);
        var outcome = await Builder.BuildAsync(cleanFolder, spec.Build, TimeSpan.FromMinutes(15), CancellationToken.None);

        Assert.True(outcome.Succeeded, $"{relative} ({spec.Build.Toolchain}) did not build from clean: {outcome.Error}\n{outcome.Log}");
        foreach (var command in spec.Implementations.SelectMany(i => new[] { i.Server, i.Client }).OfType<IReadOnlyList<string>>())
            if (command[0].StartsWith('/'))
                Assert.True(command.Count > 1 && File.Exists(Path.Combine(cleanFolder, command[1])), $"{string.Join(' ', command)}: the script is missing");
            else if (command[0].Contains('/'))
                Assert.True(File.Exists(Path.Combine(cleanFolder, command[0])), $"{command[0]} was not built");
            else if (command.Count > 1 && command[1].EndsWith(".py"))
                Assert.True(File.Exists(Path.Combine(cleanFolder, command[1])), $"{command[1]} is missing");
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.EnumerateDirectories(from))
            if (!Output.Contains(Path.GetFileName(dir)))
                CopyTree(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}
