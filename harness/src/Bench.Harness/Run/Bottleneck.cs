namespace Bench.Harness.Run;

/// <summary>
/// Which side limited a figure, from how busy each pinned core was during the run. A figure
/// from a saturated client says what the client can push, not what the server can serve.
/// </summary>
public static class Bottleneck
{
    /// <summary>A core this busy (of its wall time) is taken as saturated.</summary>
    public const double Saturated = 0.90;

    public const string Client = "client", Server = "server", Both = "both", Neither = "neither";

    public static string Classify(double serverBusy, double clientBusy) =>
        (serverBusy >= Saturated, clientBusy >= Saturated) switch
        {
            (true, true) => Both,
            (true, false) => Server,
            (false, true) => Client,
            _ => Neither,
        };
}
