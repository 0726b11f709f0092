namespace CrateIL.Nn.Layers;

/// <summary>
/// Float64 reference of CRATE's ISTA step on LayerNorm'd tokens Z [n, dim] with dictionary Dw [dim, dim]:
/// out = ReLU(Z + η·(Z·Dw − Z·Dwᵀ·Dw) − η·λ), computed as t = Z·Dwᵀ, g = (Z − t)·Dw, pre = Z + η·g − η·λ.
/// With <c>symmetric</c> (CRATE-sth) the threshold is sign(pre')·max(|pre'| − ηλ, 0) where pre' = Z + η·g.
/// </summary>
public static class IstaReference
{
    public static double[] Forward(double[] z, double[] dw, int n, int dim, double eta, double lambda, bool symmetric = false)
    {
        var t = MatMulTransB(z, dw, n, dim, dim);          // Z·Dwᵀ
        var r = new double[n * dim];
        for (int i = 0; i < r.Length; i++) r[i] = z[i] - t[i];
        var g = MatMul(r, dw, n, dim, dim);                // (Z − t)·Dw
        var y = new double[n * dim];
        double th = eta * lambda;
        for (int i = 0; i < y.Length; i++)
        {
            double pre = z[i] + eta * g[i];
            y[i] = symmetric ? Math.Sign(pre) * Math.Max(Math.Abs(pre) - th, 0) : Math.Max(pre - th, 0);
        }
        return y;
    }

    /// <summary>Returns dZ (assigned) and dDw (the gradient of this call, to be accumulated by the caller).</summary>
    public static (double[] dz, double[] ddw) Backward(double[] z, double[] dw, double[] dy, int n, int dim, double eta, double lambda, bool symmetric = false)
    {
        var t = MatMulTransB(z, dw, n, dim, dim);
        var r = new double[n * dim];
        for (int i = 0; i < r.Length; i++) r[i] = z[i] - t[i];
        var g = MatMul(r, dw, n, dim, dim);
        double th = eta * lambda;
        var dpre = new double[n * dim];
        for (int i = 0; i < dpre.Length; i++)
        {
            double pre = z[i] + eta * g[i];
            bool pass = symmetric ? Math.Abs(pre) > th : pre - th > 0;
            dpre[i] = pass ? dy[i] : 0;
        }
        // pre = Z + η(Z·Dw − Z·Dwᵀ·Dw):  dZ = dpre + η(s − s·Dw) with s = dpre·Dwᵀ
        var s = MatMulTransB(dpre, dw, n, dim, dim);
        var sd = MatMul(s, dw, n, dim, dim);
        var dz = new double[n * dim];
        for (int i = 0; i < dz.Length; i++) dz[i] = dpre[i] + eta * (s[i] - sd[i]);
        // dDw = η[(Z − t)ᵀ·dpre − Dw·(dpreᵀ·Z)]
        var a = MatMulTransA(r, dpre, dim, n, dim);
        var b = MatMulTransA(dpre, z, dim, n, dim);
        var c = MatMul(dw, b, dim, dim, dim);
        var ddw = new double[dim * dim];
        for (int i = 0; i < ddw.Length; i++) ddw[i] = eta * (a[i] - c[i]);
        return (dz, ddw);
    }

    /// <summary>The literal 3-GEMM form of the reference code: ReLU(Z + η(Z·Dw − (Z·Dwᵀ)·Dw) − ηλ).</summary>
    public static double[] ForwardThreeGemm(double[] z, double[] dw, int n, int dim, double eta, double lambda)
    {
        var x1 = MatMulTransB(z, dw, n, dim, dim);
        var grad1 = MatMul(x1, dw, n, dim, dim);
        var grad2 = MatMul(z, dw, n, dim, dim);
        var y = new double[n * dim];
        for (int i = 0; i < y.Length; i++) y[i] = Math.Max(z[i] + eta * (grad2[i] - grad1[i]) - eta * lambda, 0);
        return y;
    }

    // Row-major helpers: A [m,k]·B [k,n]; A·Bᵀ with B [n,k]; Aᵀ·B with A [k,m], B [k,n].
    internal static double[] MatMul(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                double av = a[i * k + p];
                if (av == 0) continue;
                for (int j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
            }
        return c;
    }

    internal static double[] MatMulTransB(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
                c[i * n + j] = s;
            }
        return c;
    }

    internal static double[] MatMulTransA(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int p = 0; p < k; p++)
            for (int i = 0; i < m; i++)
            {
                double av = a[p * m + i];
                if (av == 0) continue;
                for (int j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
            }
        return c;
    }
}
