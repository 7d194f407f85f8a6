using System.Diagnostics;

namespace Bench.Harness.Run;

/// <summary>Progress of long work on stderr: a step counter, elapsed time and an estimate of what is left.</summary>
public sealed class Progress(int total, TextWriter? output = null)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TextWriter _out = output ?? Console.Error;
    private int _done;

    public void Step(string what)
    {
        var done = Interlocked.Increment(ref _done);
        var elapsed = _clock.Elapsed;
        var left = done >= total ? TimeSpan.Zero : elapsed / done * (total - done);
        _out.WriteLine($"[{done,3}/{total}] {elapsed:mm\\:ss} (~{left:mm\\:ss} left) {what}");
    }

    public void Note(string what) => _out.WriteLine($"          {what}");
}
