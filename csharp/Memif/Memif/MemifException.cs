namespace Memif;

/// <summary>A memif failure with a reason a person can act on (often the peer's DISCONNECT string).</summary>
public sealed class MemifException(string message) : Exception(message);
