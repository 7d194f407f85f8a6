namespace Bench.Harness.Machine;

/// <summary>Whether a program the harness would start is there to start.</summary>
public static class Programs
{
    /// <summary>A bare name is looked up on PATH; a path must be an existing file.</summary>
    public static bool Exists(string program) => program.Contains('/')
        ? File.Exists(program)
        : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, program)));
}
