using CrateIL.Compute.Devices;
using CrateIL.Compute.Tensors;
using CrateIL.Nn.Parameters;
using CrateIL.Testing;

namespace CrateIL.Nn.Tests;

/// <summary>Shared helpers of the layer tests: poisoned outputs, parameter set-up and accumulated-gradient checks.</summary>
internal static class LayerTesting
{
    /// <summary>Finite differences of the float64 references.</summary>
    public static readonly Tolerance Fd = new(1e-7, 1e-6);

    public static Tensor Poisoned(Device device, params int[] shape)
    {
        var t = device.Allocate(shape);
        t.Fill(float.NaN);
        return t;
    }

    public static double[] D(float[] x) => TestData.ToDouble(x);

    public static double[] D(int seed, int n, double std = 1) => TestData.ToDouble(TestData.Normal(seed, n, (float)std));

    /// <summary>
    /// Gives LayerNorm parameters (initialised to exactly 1 and 0) random values so their gradients matter, and fills
    /// every gradient with random values (accumulation must add to them). Returns the values and initial gradients.
    /// </summary>
    public static (Dictionary<string, float[]> Values, Dictionary<string, float[]> Grads) Randomise(ParameterStore store, int seed)
    {
        var values = new Dictionary<string, float[]>();
        var grads = new Dictionary<string, float[]>();
        foreach (var p in store.Parameters)
        {
            float[] v = p.Init switch
            {
                ParameterInit.Ones => TestData.Normal(seed++, p.Length, 0.3f, 1f),
                ParameterInit.Zeros => TestData.Normal(seed++, p.Length, 0.3f),
                _ => p.Value.ToArray(),
            };
            p.Value.CopyFrom(v);
            values[p.Name] = v;
            var g = TestData.Uniform(seed++, p.Length, -2f, 2f);
            p.Grad.CopyFrom(g);
            grads[p.Name] = g;
        }
        return (values, grads);
    }

    /// <summary>The gradient of <paramref name="name"/> must equal its initial value plus <paramref name="fresh"/>.</summary>
    public static void CheckAccumulated(ParameterStore store, string name, float[] initial, double[] fresh, Tolerance tol, string what)
    {
        var expected = new double[fresh.Length];
        for (int i = 0; i < expected.Length; i++) expected[i] = initial[i] + fresh[i];
        Check.Close(store[name].Grad.ToArray(), expected, tol, $"{what} d[{name}]");
    }

    public static double[] Add(double[] a, double[] b)
    {
        var r = new double[a.Length];
        for (int i = 0; i < r.Length; i++) r[i] = a[i] + b[i];
        return r;
    }
}
