using System.Text;
using Bench.Harness.Catalog;
using CliWrap;

namespace Bench.Harness.Build;

/// <summary>The outcome of building one folder: its log, and why it failed if it did.</summary>
public sealed record BuildOutcome(string Folder, bool Succeeded, string Log, string? Error, TimeSpan Took);

/// <summary>
/// Builds implementation folders from source, in release mode, one builder per toolchain.
/// Arguments are always lists, never a shell string, so no path can run anything.
/// </summary>
public static class Builder
{
    public static IReadOnlyList<IReadOnlyList<string>> StepsFor(BuildSpec build, string folder) => build.Toolchain switch
    {
        Toolchains.Dotnet => [["dotnet", "build", build.Project!, "-c", "Release", "-nologo", "-v", "quiet"]],
        Toolchains.Cmake => [["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"], ["cmake", "--build", "build", "--parallel"]],
        Toolchains.Cargo => [["cargo", "build", "--release", "--offline"]],
        Toolchains.Python => [["python3", "-m", "py_compile", .. Directory.EnumerateFiles(folder, "*.py").Order(StringComparer.Ordinal).Select(Path.GetFileName)!]],
        _ => throw new ArgumentException($"no builder for toolchain '{build.Toolchain}'"),
    };

    public static async Task<BuildOutcome> BuildAsync(string folder, BuildSpec build, TimeSpan deadline, CancellationToken cancel)
    {
        var log = new StringBuilder();
        var started = DateTime.UtcNow;
        foreach (var step in StepsFor(build, folder))
        {
            log.AppendLine($"$ {string.Join(' ', step)}");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(deadline);
            try
            {
                var result = await Cli.Wrap(step[0]).WithArguments(step.Skip(1))
                    .WithWorkingDirectory(folder)
                    .WithStandardOutputPipe(PipeTarget.ToStringBuilder(log))
                    .WithStandardErrorPipe(PipeTarget.ToStringBuilder(log))
                    .WithValidation(CommandResultValidation.None)
                    .ExecuteAsync(timeout.Token);
                if (result.ExitCode != 0)
                    return new(folder, false, log.ToString(), $"'{string.Join(' ', step.Take(3))}' exited with {result.ExitCode}: {LastLines(log.ToString(), 3)}", DateTime.UtcNow - started);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                return new(folder, false, log.ToString(), $"'{step[0]}' did not finish within {deadline.TotalSeconds:F0} s", DateTime.UtcNow - started);
            }
            catch (CliWrap.Exceptions.CommandExecutionException e)
            {
                return new(folder, false, log.ToString(), e.Message, DateTime.UtcNow - started);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                return new(folder, false, log.ToString(), $"cannot run '{step[0]}': {e.Message} (is the toolchain installed? scripts/setup.sh installs it)", DateTime.UtcNow - started);
            }
        }
        return new(folder, true, log.ToString(), null, DateTime.UtcNow - started);
    }

    private static string LastLines(string text, int count) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(count));
}
