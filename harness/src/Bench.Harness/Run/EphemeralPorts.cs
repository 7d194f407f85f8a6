using Bench.Harness.Machine;

namespace Bench.Harness.Run;

/// <summary>
/// Repeated bursts leave every client port in TIME_WAIT for 60 s. With tcp_tw_reuse the kernel
/// reuses them for new outgoing connections; without it, the harness waits for room rather
/// than let the next burst fail on EADDRNOTAVAIL.
/// </summary>
public static class EphemeralPorts
{
    /// <summary>
    /// How long a burst waits after the previous one to the same server. The kernel reuses a
    /// TIME_WAIT port for the same four-tuple only once its last timestamp is over a second old
    /// (tcp_twsk_unique); before that, connect() searches past it. Measured here with the C++
    /// epoll client: 0.38-0.45 s of client kernel time per 10k burst when spaced 2 s, 0.78-0.83 s
    /// back to back, so an unspaced repeat measures the one before it.
    /// </summary>
    public static readonly TimeSpan BurstSpacing = TimeSpan.FromSeconds(2);

    public static async Task WaitForRoomAsync(int needed, DateTime previousBurstEnded, Progress progress, CancellationToken cancel)
    {
        var settle = previousBurstEnded + BurstSpacing - DateTime.UtcNow;
        if (settle > TimeSpan.Zero) await Task.Delay(settle, cancel);

        if (Limits.ReadSysctl("/proc/sys/net/ipv4/tcp_tw_reuse") is "1" or "2") return; // 2: reuse on loopback, where we run
        var deadline = DateTime.UtcNow.AddSeconds(70); // TIME_WAIT lasts 60 s on Linux
        while (TcpCounters.CountTimeWait() + needed > Limits.EphemeralPorts && DateTime.UtcNow < deadline)
        {
            progress.Note($"waiting for TIME_WAIT sockets to expire ({TcpCounters.CountTimeWait()} held, {needed} ports needed)");
            await Task.Delay(TimeSpan.FromSeconds(5), cancel);
        }
    }
}
