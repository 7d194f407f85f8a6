namespace Bench.Harness.CommandLine;

public static class RepositoryRoot
{
    /// <summary>--root, else $BENCH_ROOT, else the nearest folder upwards that holds run-all.sh.</summary>
    public static string Find(string? given)
    {
        var start = given ?? Environment.GetEnvironmentVariable("BENCH_ROOT");
        if (start is not null)
            return Directory.Exists(start) ? Path.GetFullPath(start) : throw new DirectoryNotFoundException($"--root {start}: no such folder");
        return Above(Environment.CurrentDirectory)
            ?? throw new DirectoryNotFoundException("cannot find the repository (no run-all.sh here or above); pass --root");
    }

    /// <summary>The nearest folder at or above this one that holds run-all.sh; null outside a repository.</summary>
    public static string? Above(string folder)
    {
        for (var dir = new DirectoryInfo(folder); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "run-all.sh"))) return dir.FullName;
        return null;
    }
}
