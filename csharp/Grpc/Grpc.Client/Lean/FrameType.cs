namespace GrpcBench.Client.Lean;

/// <summary>HTTP/2 frame types (RFC 9113 section 6); any other type is ignored, as the RFC requires.</summary>
enum FrameType : byte
{
    Data = 0,
    Headers = 1,
    Priority = 2,
    RstStream = 3,
    Settings = 4,
    PushPromise = 5,
    Ping = 6,
    GoAway = 7,
    WindowUpdate = 8,
    Continuation = 9,
}

static class FrameTypeNames
{
    /// <summary>The name RFC 9113 gives the type (DATA, RST_STREAM, ...), for messages.</summary>
    public static string Name(this FrameType type) => type switch
    {
        FrameType.Data => "DATA",
        FrameType.Headers => "HEADERS",
        FrameType.Priority => "PRIORITY",
        FrameType.RstStream => "RST_STREAM",
        FrameType.Settings => "SETTINGS",
        FrameType.PushPromise => "PUSH_PROMISE",
        FrameType.Ping => "PING",
        FrameType.GoAway => "GOAWAY",
        FrameType.WindowUpdate => "WINDOW_UPDATE",
        FrameType.Continuation => "CONTINUATION",
        _ => $"type-{(byte)type}",
    };
}
