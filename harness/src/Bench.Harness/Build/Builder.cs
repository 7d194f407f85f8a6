using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text;
using System.Xml.Linq;
using System.Xml;
using Bench.Harness.Catalog;
using Bench.Harness.Processes;

namespace Bench.Harness.Build;

/// <summary>
/// The outcome of building one folder: its log, and why it failed if it did. UpToDate: nothing
/// was run, because no input had changed since the folder's last successful build.
/// </summary>
public sealed record BuildOutcome(string Folder, bool Succeeded, string Log, string? Error, TimeSpan Took, bool UpToDate = false);

/// <summary>
/// Builds implementation folders from source, in release mode, one builder per toolchain.
/// Arguments are always lists, never a shell string, so no path can run anything.
/// A folder whose inputs have not changed since its last successful build is not built again
/// (see <see cref="BuildFingerprint"/>); the stamp that records them is written only once every
/// step has succeeded, and removed before any step runs.
/// </summary>
public static class Builder
{
    /// <summary>The stamp file inside each built folder (ignored by git).</summary>
    public const string StampFile = ".bench-build-stamp";

    public static IReadOnlyList<IReadOnlyList<string>> StepsFor(BuildSpec build, string folder) => build.Toolchain switch
    {
        Toolchains.Dotnet => [["dotnet", "build", build.Project!, "-c", "Release", "-nologo", "-v", "quiet"]],
        Toolchains.Cmake => [["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"], ["cmake", "--build", "build", "--parallel"]],
        Toolchains.Cargo => [["cargo", "build", "--release", "--offline"]],
        Toolchains.Python => [["python3", "-m", "py_compile", .. Directory.EnumerateFiles(folder, "*.py").Order(StringComparer.Ordinal).Select(Path.GetFileName)!]],
        Toolchains.Go => [[.. GoEnvironment(folder), "go", "generate", "./..."], [.. GoEnvironment(folder), "go", "build", "-trimpath", "-o", "build/", "./..."]],
        _ => throw new ArgumentException($"no builder for toolchain '{build.Toolchain}'"),
    };

    /// <summary>The program a step runs: past `env VAR=value ...` when it sets an environment.</summary>
    public static string ProgramOf(IReadOnlyList<string> step) =>
        step[0] == "env" ? step.Skip(1).First(a => !a.Contains('=')) : step[0];

    /// <summary>Where Debian's Go packages are (golang-google-grpc-dev and the like): the second GOPATH entry.</summary>
    public const string DebianGoPath = "/usr/share/gocode";

    /// <summary>
    /// Go builds offline in GOPATH mode (there is no module proxy here): GOPATH is the folder's
    /// build/_gopath, where its go:generate lines put generated packages, then Debian's packages.
    /// GOPATH must be absolute. GOFLAGS is cleared so a user's -mod=... cannot break GOPATH mode.
    /// The "_" keeps ./... out of build/_gopath (the go tool skips folders starting with "_").
    /// </summary>
    private static string[] GoEnvironment(string folder) =>
        ["env", "GO111MODULE=off", "GOFLAGS=", $"GOPATH={Path.Combine(Path.GetFullPath(folder), "build", "_gopath")}:{DebianGoPath}"];

    /// <summary>
    /// Builds the folder, or returns at once (UpToDate) when its stamp matches its inputs; force
    /// ignores the stamp. Cancelling <paramref name="cancel"/> kills the running step and throws
    /// OperationCanceledException, leaving no stamp behind.
    /// </summary>
    public static async Task<BuildOutcome> BuildAsync(string folder, BuildSpec build, TimeSpan deadline, CancellationToken cancel, bool force = false) =>
        await BuildAsync(folder, build, StepsFor(build, folder), deadline, cancel, force);

    /// <summary>The same with the steps given: tests drive their own steps through it.</summary>
    internal static async Task<BuildOutcome> BuildAsync(string folder, BuildSpec build, IReadOnlyList<IReadOnlyList<string>> steps,
        TimeSpan deadline, CancellationToken cancel, bool force = false)
    {
        cancel.ThrowIfCancellationRequested();
        var started = DateTime.UtcNow;
        var stamp = Path.Combine(folder, StampFile);
        var before = BuildFingerprint.Of(folder, build, steps);
        if (!force && ReadStamp(stamp) is { } recorded && recorded == BuildFingerprint.StampText(before.Inputs, before.Outputs))
            return new(folder, true, $"up to date: nothing changed since the last successful build ({StampFile}); not built again\n",
                null, DateTime.UtcNow - started, UpToDate: true);

        var log = new BuildLog();
        // Whatever happens from here on (a failure, a timeout, Ctrl-C), the old stamp must not vouch for the outputs.
        RemoveStamp(stamp, log);
        foreach (var step in steps)
        {
            log.Line($"$ {string.Join(' ', step)}");
            try
            {
                // Through the process layer like every child, so a build dies with the harness too; both
                // pipes feed one log, a whole line at a time under its lock, in the order lines arrive.
                await using var process = ManagedProcess.Start($"build step '{step[0]}'", step, folder, onStdout: log.Line, onStderr: log.Line);
                var exit = await process.Exited.WaitAsync(deadline, cancel); // cancelling or disposing kills its group
                if (exit != 0)
                    return new(folder, false, log.ToString(), $"'{string.Join(' ', step.Take(3))}' exited with {exit}: {LastLines(log.ToString(), 3)}", DateTime.UtcNow - started);
            }
            catch (TimeoutException)
            {
                return new(folder, false, log.ToString(), $"'{step[0]}' did not finish within {deadline.TotalSeconds:F0} s", DateTime.UtcNow - started);
            }
            catch (ProcessStartException)
            {
                return new(folder, false, log.ToString(), $"cannot run '{step[0]}': it is not installed or not executable (scripts/setup.sh installs the toolchains)", DateTime.UtcNow - started);
            }
        }
        cancel.ThrowIfCancellationRequested();
        // The inputs as they were when the build started (an edit made during it is seen next time), and
        // the output folders the build left.
        WriteStamp(stamp, BuildFingerprint.StampText(before.Inputs, BuildFingerprint.Of(folder, build, steps).Outputs), log);
        return new(folder, true, log.ToString(), null, DateTime.UtcNow - started);
    }

    private static string? ReadStamp(string stamp)
    {
        try { return File.Exists(stamp) ? File.ReadAllText(stamp) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static void RemoveStamp(string stamp, BuildLog log)
    {
        try { File.Delete(stamp); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log.Line($"(cannot remove {StampFile}: {e.Message})"); }
    }

    private static void WriteStamp(string stamp, string text, BuildLog log)
    {
        var temporary = stamp + ".tmp";
        try
        {
            File.WriteAllText(temporary, text);
            File.Move(temporary, stamp, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only costs a rebuild next time.
            log.Line($"(cannot write {StampFile}: {e.Message}; the next run builds this folder again)");
            try { File.Delete(temporary); }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException) { }
        }
    }

    private static string LastLines(string text, int count) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(count));

    /// <summary>A build log two pipes write to at once: whole lines, appended under a lock.</summary>
    private sealed class BuildLog
    {
        private readonly StringBuilder _text = new();
        private readonly Lock _lock = new();

        public void Line(string line)
        {
            lock (_lock) _text.Append(line).Append('\n');
        }

        public override string ToString()
        {
            lock (_lock) return _text.ToString();
        }
    }
}

/// <summary>
/// What a build of a folder depends on, as lines of text, compared with the stamp of the folder's
/// last successful build.
/// Inputs: the folder's absolute path (a stamp copied elsewhere vouches for nothing there), the
/// toolchain, the build steps, and every file under the folder by relative path, size and
/// last-write time, except build output and the stamp itself. For dotnet, also what MSBuild pulls
/// in from outside the folder: Directory.Build.props/.targets, Directory.Packages.props, global.json
/// and NuGet.config in the folders above it up to the repository root (the folder holding
/// run-all.sh), and whatever a project, solution or props file in it references through a path
/// leaving the folder (ProjectReference: that project's whole folder, followed transitively;
/// Compile, Protobuf and Import: that file, or the folder a wildcard starts in). For every toolchain,
/// the files and folders the manifest's build.inputs names (what a build reads from outside its folder).
/// Outputs: which build-output folders (bin, obj, target, build, __pycache__) exist, so deleting one
/// (rm -rf target) means a rebuild.
/// Not covered: toolchain upgrades and packages from outside the tree (NuGet, Debian's crates);
/// pass force, or delete the stamp, after changing those.
/// </summary>
internal static class BuildFingerprint
{
    /// <summary>Output or scratch anywhere in the tree.</summary>
    private static readonly HashSet<string> Ignored = [".git", "node_modules", "results", "BenchmarkDotNet.Artifacts", "TestResults"];

    private static readonly string[] MsBuildAncestors =
        ["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json", "NuGet.Config", "NuGet.config", "nuget.config"];

    private static readonly string[] ProjectExtensions = [".csproj", ".fsproj", ".vbproj", ".proj", ".props", ".targets", ".sln", ".slnx"];

    private static readonly EnumerationOptions One = new()
    {
        RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = true, ReturnSpecialDirectories = false,
    };

    public sealed record Fingerprint(IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

    public static string StampText(IReadOnlyList<string> inputs, IReadOnlyList<string> outputs) =>
        "# bench build stamp: the inputs of this folder's last successful build. Delete it to build again.\n" +
        string.Concat(inputs.Select(l => l + "\n")) + string.Concat(outputs.Select(l => l + "\n"));

    public static Fingerprint Of(string folder, BuildSpec build, IReadOnlyList<IReadOnlyList<string>> steps)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        var inputs = new List<string> { $"folder {Quote(root)}", $"toolchain {Quote(build.Toolchain)}" };
        inputs.AddRange(steps.Select(s => $"step {JsonSerializer.Serialize(s)}"));
        var outputs = new List<string>();
        Walk(root, "", top: true, inputs, outputs, paths: null);
        if (build.Toolchain == Toolchains.Dotnet) inputs.AddRange(DotnetExternals(root));
        inputs.AddRange(DeclaredExternals(root, build));
        return new(inputs, outputs);
    }

    /// <summary>bin and obj beside a .NET project, target beside Cargo.toml, build at the top or beside CMakeLists.txt:
    /// only there are they output (rust/src/bin, say, is source); __pycache__ anywhere.</summary>
    private static bool IsOutput(string name, string parent, bool top) => name switch
    {
        "__pycache__" => true,
        "bin" or "obj" => Directory.EnumerateFiles(parent, "*.*proj", One).Any(),
        "target" => File.Exists(Path.Combine(parent, "Cargo.toml")),
        "build" => top || File.Exists(Path.Combine(parent, "CMakeLists.txt")),
        _ => false,
    };

    /// <summary>Lists the tree's files (and, given outputs, its output folders) as fingerprint lines; paths collects their full paths.</summary>
    private static void Walk(string dir, string relative, bool top, List<string> files, List<string>? outputs, List<string>? paths)
    {
        if (!Directory.Exists(dir)) return; // nothing to build from: the build's first step says so
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", One).OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var rel = relative.Length == 0 ? entry.Name : $"{relative}/{entry.Name}";
            if (entry is DirectoryInfo sub)
            {
                if (Ignored.Contains(entry.Name)) continue;
                if (IsOutput(entry.Name, dir, top))
                {
                    outputs?.Add($"output {Quote(rel)}");
                    continue;
                }
                if (sub.LinkTarget is { } target) files.Add($"link {Quote(rel)} -> {Quote(target)}"); // not followed: no cycles
                else Walk(sub.FullName, rel, top: false, files, outputs, paths);
            }
            else if (entry.Name is not (Builder.StampFile or Builder.StampFile + ".tmp")) // a nested folder's stamp too
            {
                files.Add(FileLine(rel, (FileInfo)entry));
                paths?.Add(entry.FullName);
            }
        }
    }

    private static string FileLine(string name, FileInfo file)
    {
        try
        {
            var link = file.LinkTarget is { } target ? $" -> {Quote(target)}" : "";
            return $"file {Quote(name)} {file.Length} {file.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture)}{link}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"file {Quote(name)} unreadable";
        }
    }

    private static IEnumerable<string> DotnetExternals(string folder)
    {
        var lines = new SortedSet<string>(StringComparer.Ordinal);
        var repoRoot = CommandLine.RepositoryRoot.Above(folder);
        var seenDirs = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<string>(); // project-like files whose references are still to follow
        foreach (var file in ProjectFiles(folder)) pending.Enqueue(file);
        Ancestors(folder, repoRoot, lines);
        var seenFiles = new HashSet<string>(StringComparer.Ordinal);
        while (pending.TryDequeue(out var project))
        {
            if (!seenFiles.Add(project)) continue;
            foreach (var (kind, path) in References(project))
            {
                if (IsUnder(path, folder)) continue;
                if (WildcardStart(path) is { } start)
                {
                    if (!IsUnder(start, folder) && seenDirs.Add(start)) ExternalTree(start, lines);
                }
                else if (kind == "ProjectReference")
                {
                    var projectDir = Path.GetDirectoryName(path)!;
                    if (IsUnder(projectDir, folder) || !seenDirs.Add(projectDir)) continue;
                    ExternalTree(projectDir, lines);
                    Ancestors(projectDir, repoRoot, lines);
                    foreach (var file in ProjectFiles(projectDir)) pending.Enqueue(file);
                }
                else
                {
                    lines.Add(ExternalFile(path));
                    if (kind == "Import" && File.Exists(path)) pending.Enqueue(path);
                }
            }
        }
        return lines;
    }

    /// <summary>The MSBuild and NuGet files MSBuild finds by walking up from a project, up to the repository root (or /).</summary>
    private static void Ancestors(string folder, string? repoRoot, SortedSet<string> lines)
    {
        for (var dir = new DirectoryInfo(folder).Parent; dir is not null; dir = dir.Parent)
        {
            foreach (var name in MsBuildAncestors)
                if (File.Exists(Path.Combine(dir.FullName, name))) lines.Add(ExternalFile(Path.Combine(dir.FullName, name)));
            if (dir.FullName == repoRoot) break;
        }
    }

    /// <summary>What the manifest's build.inputs names outside the folder (a shared .proto, say): each file, or each folder's tree.</summary>
    private static IEnumerable<string> DeclaredExternals(string folder, BuildSpec build)
    {
        var lines = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var input in build.Inputs ?? [])
        {
            var path = Path.GetFullPath(Path.Combine(folder, input));
            if (Directory.Exists(path)) ExternalTree(path, lines);
            else lines.Add(ExternalFile(path));
        }
        return lines;
    }

    private static void ExternalTree(string dir, SortedSet<string> lines)
    {
        if (!Directory.Exists(dir))
        {
            lines.Add($"external {Quote(dir)} missing");
            return;
        }
        var files = new List<string>();
        Walk(dir, "", top: true, files, outputs: null, paths: null);
        foreach (var line in files) lines.Add($"external {Quote(dir)} {line}");
    }

    private static string ExternalFile(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? $"external {FileLine(path, file)}" : $"external {Quote(path)} missing";
    }

    /// <summary>Project, solution and props files under a folder, outside build output.</summary>
    private static IEnumerable<string> ProjectFiles(string folder)
    {
        var paths = new List<string>();
        Walk(folder, "", top: true, [], outputs: null, paths);
        return paths.Where(p => ProjectExtensions.Contains(Path.GetExtension(p), StringComparer.Ordinal)).ToList();
    }

    /// <summary>Paths a project, props or solution file names, resolved against its folder; those built from MSBuild properties are skipped.</summary>
    private static IEnumerable<(string Kind, string Path)> References(string file)
    {
        var dir = Path.GetDirectoryName(file)!;
        var found = new List<(string, string)>();
        if (file.EndsWith(".sln", StringComparison.Ordinal))
        {
            try
            {
                foreach (Match m in Regex.Matches(File.ReadAllText(file), "^Project\\([^)]*\\)\\s*=\\s*\"[^\"]*\",\\s*\"([^\"]+)\"", RegexOptions.Multiline))
                    Add("ProjectReference", m.Groups[1].Value);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            return found;
        }
        XDocument xml;
        try { xml = XDocument.Load(file); }
        catch (Exception e) when (e is XmlException or IOException or UnauthorizedAccessException) { return found; } // the build itself reports it
        foreach (var element in xml.Descendants())
        {
            var name = element.Name.LocalName;
            if (name is "ProjectReference" or "Compile" or "Protobuf")
                Add(name, (string?)element.Attribute("Include"));
            else if (name == "Import")
                Add(name, (string?)element.Attribute("Project"));
            else if (name == "Project" && file.EndsWith(".slnx", StringComparison.Ordinal))
                Add("ProjectReference", (string?)element.Attribute("Path"));
        }
        return found;

        void Add(string kind, string? value)
        {
            foreach (var item in (value ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                if (!item.Contains("$(") && !item.Contains("@(") && !item.Contains("%("))
                    found.Add((kind, Path.GetFullPath(Path.Combine(dir, item.Replace('\\', '/')))));
        }
    }

    /// <summary>For a path with a wildcard, the folder before its first wildcard segment; null without one.</summary>
    private static string? WildcardStart(string path)
    {
        var index = path.IndexOfAny(['*', '?']);
        if (index < 0) return null;
        var slash = path.LastIndexOf('/', index);
        return slash <= 0 ? "/" : path[..slash];
    }

    private static bool IsUnder(string path, string folder) =>
        path == folder || path.StartsWith(folder.TrimEnd('/') + "/", StringComparison.Ordinal);

    private static string Quote(string text) => JsonSerializer.Serialize(text);
}
