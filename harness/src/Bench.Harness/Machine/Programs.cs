using System.Runtime.InteropServices;

namespace Bench.Harness.Machine;

/// <summary>Whether a program the harness would start is there to start.</summary>
public static partial class Programs
{
    public static bool Exists(string program) => WhyNotRunnable(program, Environment.CurrentDirectory) is null;

    /// <summary>
    /// Why the program cannot be started, or null when it can: a path is taken from the working
    /// directory (as exec does in the child), a bare name is looked up on PATH (an empty entry
    /// meaning the working directory); the file must be executable.
    /// </summary>
    public static string? WhyNotRunnable(string program, string workingDirectory, string? path = null)
    {
        IEnumerable<string> candidates = program.Contains('/')
            ? [Path.Combine(workingDirectory, program)]
            : (path ?? Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin")
                .Split(':').Select(dir => Path.Combine(dir.Length == 0 ? workingDirectory : Path.Combine(workingDirectory, dir), program));
        var found = candidates.Where(File.Exists).ToList();
        if (found.Count == 0) return program.Contains('/') ? $"no such file in {workingDirectory}" : "not found on PATH";
        return found.Any(f => access(f, ExecuteOk) == 0) ? null : "not executable";
    }

    private const int ExecuteOk = 1;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);
}
