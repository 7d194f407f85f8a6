using Bench.Harness.Results;

namespace Bench.Harness.Run;

/// <summary>What a suite needs of a runner: this machine's (<see cref="ExperimentRunner"/>) or the hosts file's (<see cref="Remote.MultiHostRunner"/>).</summary>
public interface IExperimentRunner
{
    /// <summary>Runs and records every repeat of the experiment; returns the rows written.</summary>
    Task<IReadOnlyList<RunRecord>> RunAsync(Experiment e, CancellationToken cancel);

    /// <summary>
    /// Runs the experiments of one cell (<see cref="SuitePlan.Cells"/>), and returns their rows. This
    /// one runs them one after another; <see cref="ExperimentRunner"/> interleaves their repeats.
    /// </summary>
    async Task<IReadOnlyList<RunRecord>> RunCellAsync(IReadOnlyList<Experiment> cell, CancellationToken cancel)
    {
        var rows = new List<RunRecord>();
        foreach (var e in cell) rows.AddRange(await RunAsync(e, cancel));
        return rows;
    }

    /// <summary>Records the one row of an experiment that could not run at all.</summary>
    RunRecord Fail(Experiment e, string status, string error);
}
