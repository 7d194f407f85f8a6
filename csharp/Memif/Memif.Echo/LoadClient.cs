using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Memif.Echo;

public sealed record LoadSettings(int FrameSize, int Window, TimeSpan Duration, TimeSpan Timeout, string? SamplesPath);

/// <summary>
/// What a run counted. Every frame sent ends as exactly one of <see cref="Ok"/> or <see cref="Failed"/>,
/// so Ok + Failed == Sent. <see cref="Late"/> echoes came back after their frame had been counted
/// failed (lost after the timeout); <see cref="Unexpected"/> frames matched nothing sent. Neither
/// changes Ok or Failed.
/// </summary>
public sealed record LoadResult(long Ok, long Failed, long WallNs, long Bytes, long ConnMin, long ConnMax, long SampleSumNs,
                                long Sent = 0, long Late = 0, long Unexpected = 0);

/// <summary>
/// The load side: keeps a window of frames in flight on every queue, verifies each echo byte
/// for byte (MACs must come back swapped, sequence in order, body intact) and records one
/// round-trip sample per verified frame. Frames carry their own send time, so a sample is
/// "now minus the timestamp in the echo": no per-frame bookkeeping on the hot path.
/// </summary>
public sealed class LoadClient(MemifConnection connection, LoadSettings settings, CancellationToken stop)
{
    private static readonly byte[] OurMac = [0x02, 0, 0, 0, 0, 0x01];
    private static readonly byte[] PeerMac = [0x02, 0, 0, 0, 0, 0x02];

    private sealed class QueueState
    {
        public int Window;
        public int InFlight;
        public ulong NextSequence;
        public ulong Expected;
        public long Ok;
        public long Failed;
        public long Late;
        public long Unexpected;
        // Sequence ranges [From, To) given up as lost after the timeout: an echo from one is late, not ok.
        public readonly List<(ulong From, ulong To)> TimedOut = [];

        public bool TimedOutFrame(ulong seq) => TimedOut.Exists(r => seq >= r.From && seq < r.To);
    }

    private readonly SampleBuffer _samples = new();
    private readonly byte[] _gather = new byte[settings.FrameSize + 1]; // chained frames only
    private readonly HashSet<string> _reported = [];
    private long _firstSend;
    private long _lastVerified;
    private long _sampleSum;

    // Hot loop: compile fully optimised at once; tiering would run it in on-stack-replaced code for a long time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public LoadResult Run()
    {
        var rx = connection.Rx;
        var tx = connection.Tx;
        int queues = Math.Min(rx.Length, tx.Length);
        var state = new QueueState[queues];
        for (int q = 0; q < queues; q++)
            state[q] = new QueueState { Window = Math.Max(1, settings.Window / queues + (q < settings.Window % queues ? 1 : 0)) };

        bool interrupt = connection.Options.Mode == MemifMode.Interrupt;
        double nsPerTick = 1e9 / Stopwatch.Frequency;
        long timeoutTicks = (long)(settings.Timeout.TotalSeconds * Stopwatch.Frequency);
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        long lastProgress = start;
        _firstSend = start;
        bool sending = true;
        int passes = 0;

        while (!stop.IsCancellationRequested)
        {
            long now = Stopwatch.GetTimestamp();
            if (sending && now >= end) sending = false;
            int received = 0, inFlight = 0;
            for (int q = 0; q < queues; q++)
            {
                received += Receive(rx[q], state[q], nsPerTick);
                if (sending) Send(tx[q], state[q]);
                inFlight += state[q].InFlight;
            }
            if (received > 0) lastProgress = now;
            if (!sending && inFlight == 0) break;
            // --timeout is how long a frame may take (the contract's per-request wait), while
            // measuring and while draining: a peer descheduled for a second is slow, not lossy.
            if (inFlight > 0 && now - lastProgress > timeoutTicks)
            {
                // Nothing has come back for too long: whatever is in flight is lost.
                Report("lost", $"no echo for {settings.Timeout.TotalSeconds:0.#} s with {inFlight} frames in flight");
                foreach (var s in state)
                {
                    if (s.InFlight == 0) continue;
                    // Counted failed once, here: the sequence moves past them, so a late echo is not ok and not a gap.
                    s.TimedOut.Add((s.Expected, s.NextSequence));
                    s.Failed += s.InFlight;
                    s.InFlight = 0;
                    s.Expected = s.NextSequence;
                }
                if (sending) lastProgress = now;
                else break;
            }
            if (received == 0)
            {
                if (interrupt ? !connection.Wait(sending ? 10 : 1) : (++passes & 4095) == 0 && !connection.Poll())
                {
                    Report("link", $"link down: {connection.DisconnectReason}");
                    break;
                }
            }
        }

        long failed = 0, ok = 0, sent = 0, late = 0, unexpected = 0;
        foreach (var s in state)
        {
            s.Failed += s.InFlight; // still out when we stopped
            failed += s.Failed;
            ok += s.Ok;
            sent += (long)s.NextSequence;
            late += s.Late;
            unexpected += s.Unexpected;
        }
        if (settings.SamplesPath is { } path) _samples.WriteTo(path);
        long wall = ok > 0 ? (long)((_lastVerified - _firstSend) * nsPerTick) : (long)((Stopwatch.GetTimestamp() - start) * nsPerTick);
        return new LoadResult(ok, failed, wall, ok * settings.FrameSize, state.Min(s => s.Ok), state.Max(s => s.Ok), _sampleSum,
                              sent, late, unexpected);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Send(MemifTxQueue tx, QueueState s)
    {
        if (s.InFlight >= s.Window) return;
        long stamp = Stopwatch.GetTimestamp(); // one clock read per burst: cheap, and the frames leave together
        int frameSize = settings.FrameSize;
        while (s.InFlight < s.Window)
        {
            if (!tx.TryGetBuffer(out var buffer)) break;
            if (buffer.Span.Length >= frameSize)
            {
                EthernetFrame.WriteBenchmark(buffer.Span[..frameSize], PeerMac, OurMac, s.NextSequence, stamp);
                buffer.Commit(frameSize);
            }
            else
            {
                // Frame larger than a buffer: build it aside and chain it over several slots.
                buffer.Commit(0);
                var frame = _gather.AsSpan(0, frameSize);
                EthernetFrame.WriteBenchmark(frame, PeerMac, OurMac, s.NextSequence, stamp);
                if (!tx.TrySend(frame)) break;
            }
            s.NextSequence++;
            s.InFlight++;
        }
        tx.Flush();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Receive(MemifRxQueue rx, QueueState s, double nsPerTick)
    {
        int n = 0;
        long now = 0;
        var gather = _gather.AsSpan();
        while (rx.TryReceive(out var packet))
        {
            if (n++ == 0) now = Stopwatch.GetTimestamp();
            ReadOnlySpan<byte> frame = packet.Span;
            if (packet.Segments > 1)
            {
                if (packet.Length > gather.Length - 1)
                {
                    Fail(s, "size", $"echo of {packet.Length} bytes, sent {settings.FrameSize}");
                    continue;
                }
                frame = gather[..packet.CopyTo(gather)];
            }
            if (frame.Length >= EthernetFrame.MinBenchmarkFrame)
            {
                ulong seq = EthernetFrame.ReadSequence(frame);
                // In-order transport: a jump ahead means the frames in between were lost.
                if (seq > s.Expected && seq < s.NextSequence)
                {
                    long lost = (long)(seq - s.Expected);
                    Report("gap", $"frames {s.Expected}..{seq - 1} never came back");
                    s.Failed += lost;
                    s.InFlight -= (int)lost;
                    s.Expected = seq;
                }
                if (seq == s.Expected && s.InFlight > 0 && EthernetFrame.VerifyEcho(frame, settings.FrameSize, OurMac, PeerMac, seq))
                {
                    long rtt = (long)((now - EthernetFrame.ReadTimestamp(frame)) * nsPerTick);
                    _samples.Add((ulong)Math.Max(0, rtt));
                    _sampleSum += rtt;
                    s.Ok++;
                    s.Expected++;
                    s.InFlight--;
                    continue;
                }
                if (seq == s.Expected && s.InFlight > 0)
                {
                    Fail(s, "wrong", $"echo of frame {seq} differs from what was sent");
                    continue;
                }
                if (seq < s.Expected && s.TimedOutFrame(seq) && EthernetFrame.VerifyEcho(frame, settings.FrameSize, OurMac, PeerMac, seq))
                {
                    // Already counted failed when it timed out: not ok now, and not failed again.
                    Report("late", $"echo of frame {seq} came back after it was counted lost (counted late, not ok)");
                    s.Late++;
                    continue;
                }
            }
            // Not a request: a duplicate, a stray or a mangled frame. The request it may stand in for
            // is still in flight and ends ok or failed on its own; this one is counted apart.
            Report("stale", $"unexpected frame of {frame.Length} bytes (not one we have in flight; counted apart, not as a request)");
            s.Unexpected++;
        }
        if (n > 0)
        {
            rx.Release();
            _lastVerified = now;
        }
        return n;
    }

    private void Fail(QueueState s, string kind, string message)
    {
        if (s.InFlight == 0)
        {
            // Nothing in flight it could be the echo of.
            Report("stale", $"unexpected frame with nothing in flight ({message}; counted apart, not as a request)");
            s.Unexpected++;
            return;
        }
        Report(kind, message);
        s.Failed++;
        s.Expected++;
        s.InFlight--;
    }

    /// <summary>First error of each kind to stderr, as the contract asks.</summary>
    private void Report(string kind, string message)
    {
        if (_reported.Add(kind)) Console.Error.WriteLine($"memif client: {message}");
    }
}

/// <summary>Latency samples in fixed chunks: appending never copies, and at millions per second that matters.</summary>
internal sealed class SampleBuffer
{
    private const int ChunkSize = 1 << 20;
    // Uninitialised: zeroing 8 MB in the middle of a run would stall it for a millisecond or two.
    private readonly List<ulong[]> _chunks = [GC.AllocateUninitializedArray<ulong>(ChunkSize)];
    private int _used;

    public void Add(ulong value)
    {
        if (_used == ChunkSize)
        {
            _chunks.Add(GC.AllocateUninitializedArray<ulong>(ChunkSize));
            _used = 0;
        }
        _chunks[^1][_used++] = value;
    }

    /// <summary>Raw little-endian u64 nanoseconds, no header (the contract's samples file).</summary>
    public void WriteTo(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("samples are written as little-endian u64");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        for (int i = 0; i < _chunks.Count; i++)
        {
            int count = i == _chunks.Count - 1 ? _used : ChunkSize;
            file.Write(MemoryMarshal.AsBytes(_chunks[i].AsSpan(0, count)));
        }
    }
}
