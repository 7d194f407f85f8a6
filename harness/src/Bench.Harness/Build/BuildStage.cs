using Bench.Harness.Catalog;
using Bench.Harness.Run;

namespace Bench.Harness.Build;

/// <summary>
/// The build stage: every folder the chosen implementations live in, built once from source
/// (skipped when up to date), with progress and a log per folder. The suite, `build`, `serve`,
/// `load` and `torture` all build through here.
/// </summary>
public static class BuildStage
{
    /// <summary>The longest one folder's build may take.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(15);

    public static IReadOnlyList<(string Folder, BuildSpec Spec)> Folders(IEnumerable<Implementation> implementations) =>
        implementations.Select(i => (i.Folder, i.Build)).Distinct().ToList();

    /// <summary>The name of a folder's build log in a result set, e.g. build-csharp-Echo.log.</summary>
    public static string LogFile(string repoRoot, string folder) => $"build-{Path.GetRelativePath(repoRoot, folder).Replace('/', '-')}.log";

    /// <summary>
    /// Builds each folder once; returns folder -> why its build failed (empty when all built).
    /// Each folder's log is written to <paramref name="logDir"/> when given, else printed when the build fails.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> BuildAsync(string repoRoot, IEnumerable<Implementation> implementations,
        Progress progress, string? logDir, CancellationToken cancel, bool force = false)
    {
        var broken = new Dictionary<string, string>();
        foreach (var (folder, spec) in Folders(implementations))
        {
            var name = Path.GetRelativePath(repoRoot, folder);
            var outcome = await Builder.BuildAsync(folder, spec, Deadline, cancel, force);
            if (logDir is not null)
                await File.WriteAllTextAsync(Path.Combine(logDir, LogFile(repoRoot, folder)), outcome.Log, cancel);
            else if (!outcome.Succeeded)
                Console.Error.WriteLine(outcome.Log);
            progress.Step($"build {name} ({spec.Toolchain}): {(!outcome.Succeeded ? outcome.Error : outcome.UpToDate ? "up to date" : $"ok in {outcome.Took.TotalSeconds:F0} s")}");
            if (!outcome.Succeeded) broken[folder] = outcome.Error!;
        }
        return broken;
    }

    /// <summary>Builds what one command uses; false (after saying why) when something did not build.</summary>
    public static async Task<bool> EnsureBuiltAsync(string repoRoot, IReadOnlyList<Implementation> implementations, CancellationToken cancel, bool force = false)
    {
        var broken = await BuildAsync(repoRoot, implementations, new Progress(Folders(implementations).Count), logDir: null, cancel, force);
        foreach (var (folder, why) in broken)
            Console.Error.WriteLine($"bench: {Path.GetRelativePath(repoRoot, folder)} did not build: {why}");
        return broken.Count == 0;
    }
}
