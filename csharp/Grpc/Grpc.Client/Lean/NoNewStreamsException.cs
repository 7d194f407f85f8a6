namespace GrpcBench.Client.Lean;

/// <summary>
/// A call found its connection closed to new streams (GOAWAY, or the connection is gone) before
/// it was given a stream: nothing was sent, so it opens on a new connection instead.
/// </summary>
sealed class NoNewStreamsException(string message) : IOException(message);
