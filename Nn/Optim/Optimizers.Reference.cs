namespace CrateIL.Nn.Optim;

/// <summary>
/// Plain float64 implementations of the update rules, one element at a time: the ground truth the kernels are
/// tested against. <c>decay[i]</c> says whether element i takes weight decay; <c>step</c> is 1-based.
/// </summary>
internal static class OptimizerReference
{
    public static void AdamW(double[] p, double[] g, double[] m, double[] v, bool[] decay, long step,
        double lr, double wd, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        for (int i = 0; i < p.Length; i++)
        {
            if (decay[i]) p[i] *= 1 - lr * wd;
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
            double mHat = m[i] / bc1, vHat = v[i] / bc2;
            p[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
        }
    }

    public static void Lion(double[] p, double[] g, double[] m, bool[] decay, double lr, double wd,
        double beta1 = 0.9, double beta2 = 0.99)
    {
        for (int i = 0; i < p.Length; i++)
        {
            if (decay[i]) p[i] *= 1 - lr * wd;
            double c = beta1 * m[i] + (1 - beta1) * g[i];
            p[i] -= lr * (c > 0 ? 1 : c < 0 ? -1 : 0);
            m[i] = beta2 * m[i] + (1 - beta2) * g[i];
        }
    }

    /// <summary><paramref name="buffer"/> is null without momentum.</summary>
    public static void Sgd(double[] p, double[] g, double[]? buffer, bool[] decay, long step, double lr,
        double momentum = 0, double dampening = 0, double wd = 0, bool nesterov = false)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double d = g[i] + (decay[i] ? wd * p[i] : 0);
            if (buffer is not null)
            {
                buffer[i] = step == 1 ? d : momentum * buffer[i] + (1 - dampening) * d;
                d = nesterov ? d + momentum * buffer[i] : buffer[i];
            }
            p[i] -= lr * d;
        }
    }
}
