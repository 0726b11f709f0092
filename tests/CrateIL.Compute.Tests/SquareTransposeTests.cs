using CrateIL.Compute.Cpu;
using Xunit;

namespace CrateIL.Compute.Tests;

/// <summary>
/// The 8×8-block tile transposes against their scalar definitions, bit for bit: every size from 1 to 20 (no whole
/// block, one, two, with and without a remainder) and the attention's tile sides 65, 96 and 101, in a buffer with a
/// wider leading dimension whose padding must stay untouched.
/// </summary>
public unsafe class SquareTransposeTests
{
    public static TheoryData<int> Sizes()
    {
        var data = new TheoryData<int>();
        for (int m = 1; m <= 20; m++) data.Add(m);
        data.Add(65); data.Add(96); data.Add(101);
        return data;
    }

    private static float[] Tile(int m, int ld, int seed)
    {
        var rng = new Random(seed);
        var t = new float[m * ld];
        for (int i = 0; i < t.Length; i++) t[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void MirrorUpperCopiesTheUpperTriangleDown(int m)
    {
        int ld = m + 11;
        var t = Tile(m, ld, m);
        var expected = (float[])t.Clone();
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++)
                expected[j * ld + i] = expected[i * ld + j];
        fixed (float* p = t) SquareTranspose.MirrorUpper(p, ld, m);
        Assert.Equal(expected, t);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AddTransposeFormsTheSymmetricPart(int m)
    {
        int ld = m + 5;
        var t = Tile(m, ld, 100 + m);
        var expected = (float[])t.Clone();
        for (int i = 0; i < m; i++)
        {
            expected[i * ld + i] *= 2f;
            for (int j = i + 1; j < m; j++)
            {
                float v = expected[i * ld + j] + expected[j * ld + i];
                expected[i * ld + j] = v;
                expected[j * ld + i] = v;
            }
        }
        fixed (float* p = t) SquareTranspose.AddTranspose(p, ld, m);
        Assert.Equal(expected, t);
    }
}
