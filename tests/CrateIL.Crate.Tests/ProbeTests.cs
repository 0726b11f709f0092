using CrateIL.Crate.Training;
using Xunit;

namespace CrateIL.Crate.Tests;

public class ProbeTests
{
    [Fact]
    public void CodingRateOfOrthonormalTokensIsHandComputable()
    {
        // m = 3 orthonormal tokens in p = 4: XXᵀ = I₃, so R = ½·3·ln(1 + p/(m·ε)) = 1.5·ln(1 + 4/0.03).
        int m = 3, p = 4;
        var x = new float[m * p];
        x[0 * p + 0] = 1; x[1 * p + 1] = 1; x[2 * p + 3] = 1;
        double expected = 1.5 * Math.Log(1 + 4 / 0.03);
        Assert.Equal(expected, WhiteBoxProbes.CodingRate(x, m, p), 10);
        // Scaling tokens changes nothing (rows are L2-normalised first).
        for (int i = 0; i < x.Length; i++) x[i] *= 7.5f;
        Assert.Equal(expected, WhiteBoxProbes.CodingRate(x, m, p), 10);
    }

    [Fact]
    public void CodingRateUsesEitherGramConsistently()
    {
        // m = 5 identical tokens (rank 1) in p = 2 (p×p Gram) and the transposed shapes (m×m Gram): R = ½·ln(1 + m·p/(m·ε)).
        var same = new float[5 * 2];
        for (int i = 0; i < 5; i++) { same[2 * i] = 0.6f; same[2 * i + 1] = 0.8f; }
        Assert.Equal(0.5 * Math.Log(1 + 2 / 0.01), WhiteBoxProbes.CodingRate(same, 5, 2), 9);
        var wide = new float[2 * 5];
        wide[0] = 1; wide[5 + 0] = 1; // two identical tokens in p = 5 → m×m path
        Assert.Equal(0.5 * Math.Log(1 + 2 * 5 / (2 * 0.01)), WhiteBoxProbes.CodingRate(wide, 2, 5), 9);
    }

    [Fact]
    public void LogDetCholeskyMatchesADiagonalAndRejectsIndefinite()
    {
        Assert.Equal(Math.Log(2 * 3 * 5), WhiteBoxProbes.LogDetCholesky([2, 0, 0, 0, 3, 0, 0, 0, 5], 3), 12);
        Assert.Equal(Math.Log(4 * 3 - 2 * 2), WhiteBoxProbes.LogDetCholesky([4, 2, 2, 3], 2), 12);
        Assert.Throws<ArithmeticException>(() => WhiteBoxProbes.LogDetCholesky([1, 2, 2, 1], 2));
    }

    [Fact]
    public void ProbesOfATinyModelAreFiniteAndInRange()
    {
        using var device = TrainingTestKit.Cpu();
        using var trainer = new Trainer(TrainingTestKit.Config, TrainingTestKit.Train(), TrainingTestKit.Validation(),
            TrainingTestKit.Options(TrainingTestKit.TempDirectory()), device);
        var probes = trainer.Probe();
        Assert.Equal(2, probes.Count);
        int m = trainer.Model.Tokens, p = TrainingTestKit.Config.DimHead;
        double upper = 0.5 * Math.Min(m, p) * Math.Log(1 + (double)p / (m * WhiteBoxProbes.Epsilon) * Math.Max(m, p));
        foreach (var layer in probes)
        {
            Assert.Equal(2, layer.CodingRatePerHead.Length);
            Assert.All(layer.CodingRatePerHead, r => Assert.InRange(r, 1e-6, upper));
            Assert.Equal(layer.CodingRatePerHead.Sum(), layer.CodingRate, 12);
            Assert.InRange(layer.Sparsity, 0.0, 1.0);
        }
        // The ISTA output is a one-sided soft threshold (ReLU), so some entries are exactly zero.
        Assert.Contains(probes, l => l.Sparsity > 0);
    }
}
