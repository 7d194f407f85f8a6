namespace GrpcBench.Client.Lean;

/// <summary>
/// The server broke HTTP/2 or HPACK in a way that ends the connection (a connection error,
/// RFC 9113 section 5.4.1): the client sends GOAWAY with <see cref="Code"/> and fails the
/// connection's calls with the message.
/// </summary>
sealed class H2Exception(Http2Error code, string message) : Exception(message)
{
    public Http2Error Code => code;
}
