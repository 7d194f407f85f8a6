using Bench.Harness.Machine;

namespace Bench.Harness.Run;

/// <summary>
/// Repeated bursts leave every client port in TIME_WAIT for 60 s. With tcp_tw_reuse the kernel
/// reuses them for new outgoing connections; without it, the harness waits for room rather
/// than let the next burst fail on EADDRNOTAVAIL.
/// </summary>
public static class EphemeralPorts
{
    public static async Task WaitForRoomAsync(int needed, Progress progress, CancellationToken cancel)
    {
        if (Limits.ReadSysctl("/proc/sys/net/ipv4/tcp_tw_reuse") is "1" or "2") return; // 2: reuse on loopback, where we run
        var deadline = DateTime.UtcNow.AddSeconds(70); // TIME_WAIT lasts 60 s on Linux
        while (TcpCounters.CountTimeWait() + needed > Limits.EphemeralPorts && DateTime.UtcNow < deadline)
        {
            progress.Note($"waiting for TIME_WAIT sockets to expire ({TcpCounters.CountTimeWait()} held, {needed} ports needed)");
            await Task.Delay(TimeSpan.FromSeconds(5), cancel);
        }
    }
}
