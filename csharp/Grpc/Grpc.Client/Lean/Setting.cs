namespace GrpcBench.Client.Lean;

/// <summary>HTTP/2 SETTINGS parameters (RFC 9113 section 6.5.2); unknown ones are ignored.</summary>
enum Setting : ushort
{
    HeaderTableSize = 1,
    EnablePush = 2,
    MaxConcurrentStreams = 3,
    InitialWindowSize = 4,
    MaxFrameSize = 5,
    MaxHeaderListSize = 6,
}
