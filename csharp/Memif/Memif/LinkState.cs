using System.Runtime.CompilerServices;

namespace Memif;

/// <summary>
/// Up or down, shared by one connection's queues. They check it on every call, so once the link
/// is down (closed on any thread) they touch no shared memory; and they report here the first
/// impossible value a peer writes into shared memory. The connection listens through
/// <see cref="Broken"/>, tells the peer why and closes.
/// </summary>
internal sealed class LinkState
{
    private volatile bool _down;

    public bool IsUp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => !_down;
    }

    /// <summary>Called with the reason when a queue finds the peer broke the protocol (at most once per link).</summary>
    public Action<string>? Broken { get; set; }

    public void Fail(string reason)
    {
        if (_down) return;
        Broken?.Invoke(reason);
        _down = true; // also when nobody listens (the benchmarks' bare queues)
    }

    public void MarkDown() => _down = true;
}
