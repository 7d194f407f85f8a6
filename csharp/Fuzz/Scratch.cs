namespace Fuzz;

/// <summary>
/// A folder of this process's own for readers that take a path: each input is written to a
/// file there first. Removed when the process exits.
/// </summary>
static class Scratch
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        var folder = Directory.CreateTempSubdirectory($"fuzz-{Environment.ProcessId}-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(folder, recursive: true);
        return folder;
    });

    /// <summary>Writes the input to <paramref name="relativePath"/> in the folder and returns its full path.</summary>
    public static string Write(string relativePath, ReadOnlySpan<byte> input)
    {
        var path = Path.Combine(Folder.Value, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, input);
        return path;
    }
}
