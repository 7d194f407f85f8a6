using System.Diagnostics;
using System.Runtime.InteropServices;

namespace GrpcBench.Client;

/// <summary>
/// The open-loop schedule: request j (slot j mod N, its k-th) is released at t0 + j/R by one
/// thread that sleeps with nanosleep(2). .NET timers are about 1 ms coarse, and since open-loop
/// latency counts from the intended send time, their lateness would be measured as the
/// server's; this keeps the client's own lateness to about a tenth of that.
/// </summary>
sealed class Pacer : IDisposable
{
    private readonly Gate[] _gates;
    private readonly long _t0;
    private readonly double _ticksPerRequest;
    private readonly Thread _thread;
    private volatile bool _stopped;
    private const double EarlyNanos = 50_000;

    public Pacer(int slots, long t0, double rate)
    {
        _gates = new Gate[slots];
        for (var i = 0; i < slots; i++) _gates[i] = new Gate();
        _t0 = t0;
        _ticksPerRequest = Stopwatch.Frequency / rate;
        _thread = new Thread(Run) { IsBackground = true, Name = "open-loop pacer" };
        _thread.Start();
    }

    /// <summary>When request k of the slot is due (Stopwatch ticks).</summary>
    public long Due(int slot, long k) => _t0 + (long)((slot + k * (double)_gates.Length) * _ticksPerRequest);

    /// <summary>Completes once request k of the slot has been released (at once if it already was).</summary>
    public ValueTask WaitAsync(int slot, long k) => _gates[slot].WaitAsync(k);

    private void Run()
    {
        for (long j = 0; !_stopped;)
        {
            // Release up to 50 us early rather than sleep for less: each wake-up costs CPU (much
            // of it in a VM), and a call sent early is timed from its actual send, not its due time.
            var waitNanos = (_t0 + (long)(j * _ticksPerRequest) - Stopwatch.GetTimestamp()) * 1e9 / Stopwatch.Frequency;
            if (waitNanos > EarlyNanos)
            {
                Sleep(Math.Min(waitNanos - EarlyNanos, 1_000_000));
                continue;
            }
            _gates[j % _gates.Length].Release();
            j++;
        }
        foreach (var gate in _gates) gate.ReleaseAll();
    }

    public void Dispose()
    {
        _stopped = true;
        _thread.Join();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "nanosleep")]
    private static extern int NanoSleep(ref TimeSpec duration, IntPtr remaining);

    private static void Sleep(double nanos)
    {
        var ts = new TimeSpec { Seconds = 0, Nanoseconds = (long)nanos };
        NanoSleep(ref ts, IntPtr.Zero);
    }

    /// <summary>How many of one slot's requests have been released, and the slot waiting for the next.</summary>
    private sealed class Gate
    {
        private long _released;
        private TaskCompletionSource? _waiter;

        public void Release()
        {
            TaskCompletionSource? waiter;
            lock (this)
            {
                if (_released != long.MaxValue) _released++;
                (waiter, _waiter) = (_waiter, null);
            }
            waiter?.TrySetResult();
        }

        /// <summary>The run is over: let every waiting slot go (it sees the stop time and ends).</summary>
        public void ReleaseAll()
        {
            TaskCompletionSource? waiter;
            lock (this)
            {
                _released = long.MaxValue;
                (waiter, _waiter) = (_waiter, null);
            }
            waiter?.TrySetResult();
        }

        public ValueTask WaitAsync(long k)
        {
            lock (this)
            {
                if (_released > k) return ValueTask.CompletedTask;
                // Continuations run on the pool, not on the pacer's thread, so the schedule never waits for a call.
                _waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return new ValueTask(_waiter.Task);
            }
        }
    }
}
