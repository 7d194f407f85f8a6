using Fuzz.Targets;

namespace Fuzz;

/// <summary>
/// One reader of hostile input, fed one input at a time. The reader's own error type (the one it
/// documents for input it refuses) is a rejection, not a crash; any other exception escaping
/// <see cref="Run"/>, a hang, or a broken <see cref="InvariantException"/> promise is a crash.
/// </summary>
abstract class FuzzTarget(string name, string reads)
{
    public string Name { get; } = name;

    /// <summary>One line for `fuzz list`: what the input is fed to.</summary>
    public string Reads { get; } = reads;

    /// <summary>Feeds one input. Returns normally when the reader accepted or rejected it.</summary>
    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            Feed(input);
        }
        catch (Exception e) when (IsRejection(e))
        {
        }
    }

    protected abstract void Feed(ReadOnlySpan<byte> input);

    /// <summary>True for the exceptions the reader documents for input it refuses.</summary>
    protected abstract bool IsRejection(Exception e);

    /// <summary>Well-formed inputs built with the code's own encoders (`fuzz seeds` writes them); text targets' seeds are real files instead.</summary>
    public virtual IEnumerable<(string Name, byte[] Input)> Seeds => [];

    public static readonly IReadOnlyList<FuzzTarget> All =
    [
        new MemifMasterHandshake(),
        new MemifSlaveHandshake(),
        new MemifRings(),
        new GrpcFrames(),
        new GrpcHpack(),
        new ContractLines(),
        new SamplesFile(),
        new ManifestFile(),
        new RunsCsv(),
    ];

    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}

/// <summary>A promise the reader makes about what it returns did not hold (a frame outside shared memory, a negative latency).</summary>
sealed class InvariantException(string message) : Exception(message);
