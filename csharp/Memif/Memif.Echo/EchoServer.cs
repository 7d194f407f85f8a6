using System.Runtime.CompilerServices;
namespace Memif.Echo;

/// <summary>
/// The echo side: answers every Ethernet frame on queue i's RX with the same frame, MACs
/// swapped, on queue i's TX. One thread does everything (data path and control channel), so
/// nothing is shared and nothing locks. As slave it reconnects whenever the link drops; as
/// master it goes back to accepting.
/// </summary>
public sealed class EchoServer(MemifOptions options, CancellationToken stop)
{
    // How many frames one queue may move before the loop looks at the other queues.
    private const int Burst = 256;
    private readonly byte[] _scratch = new byte[256 * 1024];

    /// <summary>Frames received and put back on TX, since the server started (every connection).</summary>
    public long Echoed { get; private set; }

    /// <summary>Frames received that could not be put back (no TX slot or buffer for them, or too large): not in <see cref="Echoed"/>.</summary>
    public long Dropped { get; private set; }

    public void Run(Action onReady)
    {
        if (options.Role == MemifRole.Master)
        {
            using var listener = MemifListener.Listen(options);
            listener.Rejected = reason => Console.Error.WriteLine($"memif: refused a slave: {reason}");
            onReady();
            while (!stop.IsCancellationRequested)
            {
                using var connection = listener.Accept(Timeout.InfiniteTimeSpan, stop);
                if (connection is null) continue;
                Serve(connection);
            }
            return;
        }

        // Slave: ready as soon as we start trying; keep retrying until the master's socket appears.
        onReady();
        while (!stop.IsCancellationRequested)
        {
            MemifConnection connection;
            try
            {
                connection = MemifSlave.Connect(options, TimeSpan.FromSeconds(1), stop);
            }
            catch (TimeoutException)
            {
                continue;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (MemifException e)
            {
                Console.Error.WriteLine($"memif: {e.Message}; retrying");
                stop.WaitHandle.WaitOne(200);
                continue;
            }
            using (connection) Serve(connection);
        }
    }

    // Hot loop: compile fully optimised at once; tiering would run it in on-stack-replaced code for a long time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Serve(MemifConnection c)
    {
        Console.Error.WriteLine($"memif: connected to '{c.PeerName}' ({c.PeerInterfaceName}), {c.Rx.Length} rx / {c.Tx.Length} tx queues, " +
            $"ring {1 << c.Options.Log2RingSize}, {c.Options.Mode}");
        var rx = c.Rx;
        var tx = c.Tx;
        int queues = Math.Min(rx.Length, tx.Length);
        bool interrupt = c.Options.Mode == MemifMode.Interrupt;
        int passes = 0;
        while (!stop.IsCancellationRequested)
        {
            int moved = 0;
            for (int q = 0; q < queues; q++) moved += EchoBurst(rx[q], tx[q]);
            // Polling: look at the control channel now and then (a syscall), so a DISCONNECT is seen.
            if (interrupt ? moved == 0 && !c.Wait(100) : (++passes & 4095) == 0 && !c.Poll()) break;
        }
        Console.Error.WriteLine($"memif: link down ({c.DisconnectReason ?? "stopping"}); echoed {Echoed}, dropped {Dropped}, " +
            $"bad descriptors {rx.Sum(r => r.BadDescriptors) + tx.Sum(t => t.BadDescriptors)}");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int EchoBurst(MemifRxQueue rx, MemifTxQueue tx)
    {
        // Idle check first: it reads only the RX index, not the TX ring the peer is busy with.
        if (!rx.HasPending) return 0;
        int n = 0, dropped = 0;
        // Take no more than TX can answer, so a full TX ring holds frames in RX (back-pressure) instead of dropping them.
        int budget = Math.Min(tx.Free, Burst);
        while (n < budget && rx.TryReceive(out var packet))
        {
            n++;
            if (packet.Segments == 1 && tx.TryGetBuffer(out var buffer))
            {
                if (buffer.Span.Length >= packet.Length)
                {
                    var frame = buffer.Span[..packet.Length];
                    packet.Span.CopyTo(frame);
                    EthernetFrame.SwapMacs(frame);
                    buffer.Commit(packet.Length);
                    continue;
                }
                // The peer posted a smaller buffer than the frame: send it empty and fall back to chaining.
                buffer.Commit(0);
            }
            // Chained or oversized frames: gather, swap, scatter.
            if (packet.Length > _scratch.Length)
            {
                dropped++;
                continue;
            }
            int length = packet.CopyTo(_scratch);
            EthernetFrame.SwapMacs(_scratch.AsSpan(0, length));
            // A chained frame needs more slots than the one the budget counted it as: TX may be full for it.
            if (!tx.TrySend(_scratch.AsSpan(0, length))) dropped++;
        }
        if (n == 0) return 0;
        tx.Flush();
        rx.Release();
        Echoed += n - dropped;
        Dropped += dropped;
        return n;
    }
}
