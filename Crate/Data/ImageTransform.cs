namespace CrateIL.Crate.Data;

/// <summary>
/// Where the output pixels come from: the source box [BoxX, BoxX + BoxWidth) × [BoxY, BoxY + BoxHeight) is resized to
/// ScaledWidth × ScaledHeight, and the output is the window of that scaled image starting at (WindowX, WindowY),
/// mirrored left-right when Flip is set.
/// </summary>
public readonly record struct ResamplePlan(
    int BoxX, int BoxY, int BoxWidth, int BoxHeight, int ScaledWidth, int ScaledHeight, int WindowX, int WindowY, bool Flip);

/// <summary>
/// The geometric part of a sample transform (crop, resize, flip). It only plans; <see cref="ImagePipeline"/> executes the
/// plan together with ToTensor and Normalize in one pass. Random choices come from the sample's <see cref="SampleRandom"/>,
/// crop first, then the flip.
/// </summary>
public abstract class ImageTransform
{
    protected ImageTransform(double flipProbability)
    {
        if (!(flipProbability is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(flipProbability), $"flip probability {flipProbability} must be in [0, 1]");
        FlipProbability = flipProbability;
    }

    /// <summary>Probability of a horizontal flip after the geometric step (torchvision RandomHorizontalFlip).</summary>
    public double FlipProbability { get; }

    /// <summary>False when the output size is the source size, so the dataset must supply same-sized images.</summary>
    public abstract bool HasFixedSize { get; }

    public abstract (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight);

    /// <summary>Plans the resampling of one source image.</summary>
    public abstract ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random);

    protected bool DrawFlip(ref SampleRandom random) => FlipProbability > 0 && random.Bernoulli(FlipProbability);

    /// <summary>Leaves the image as it is (apart from the optional flip).</summary>
    public static ImageTransform None { get; } = new KeepSize();
}

/// <summary>The source size is kept; only the optional flip applies (fixed-size datasets: idx, CIFAR, ShapesInClutter).</summary>
public sealed class KeepSize(double flipProbability = 0) : ImageTransform(flipProbability)
{
    public override bool HasFixedSize => false;
    public override (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => (sourceWidth, sourceHeight);

    public override ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random) =>
        new(0, 0, sourceWidth, sourceHeight, sourceWidth, sourceHeight, 0, 0, DrawFlip(ref random));
}

/// <summary>Resizes the whole image to a fixed size (aspect ratio not kept).</summary>
public sealed class Resize : ImageTransform
{
    public Resize(int width, int height, double flipProbability = 0) : base(flipProbability)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"output size {width}×{height} must be positive");
        Width = width;
        Height = height;
    }

    public int Width { get; }
    public int Height { get; }
    public override bool HasFixedSize => true;
    public override (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => (Width, Height);

    public override ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random) =>
        new(0, 0, sourceWidth, sourceHeight, Width, Height, 0, 0, DrawFlip(ref random));
}

/// <summary>
/// Evaluation transform: Resize(shorter side → ⌊size / cropFraction⌋) then CenterCrop(size), torchvision semantics
/// (longer side ⌊S·long/short⌋, crop offset round-half-even((scaled − size) / 2)). cropFraction 0.875 gives the usual
/// Resize(256)/CenterCrop(224) at size 224 and scales it for other sizes.
/// </summary>
public sealed class ResizeCenterCrop : ImageTransform
{
    public ResizeCenterCrop(int size, double cropFraction = 224.0 / 256.0) : base(0)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), $"crop size {size} must be positive");
        if (!(cropFraction is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(cropFraction), $"crop fraction {cropFraction} must be in (0, 1]");
        Size = size;
        ResizeTo = (int)Math.Floor(size / cropFraction + 1e-9);
    }

    public int Size { get; }

    /// <summary>The length the shorter side is resized to.</summary>
    public int ResizeTo { get; }

    public override bool HasFixedSize => true;
    public override (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => (Size, Size);

    public override ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random)
    {
        int scaledW, scaledH;
        if (sourceWidth <= sourceHeight)
        {
            scaledW = ResizeTo;
            scaledH = (int)((double)ResizeTo * sourceHeight / sourceWidth);
        }
        else
        {
            scaledH = ResizeTo;
            scaledW = (int)((double)ResizeTo * sourceWidth / sourceHeight);
        }
        int top = (int)Math.Round((scaledH - Size) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((scaledW - Size) / 2.0, MidpointRounding.ToEven);
        return new(0, 0, sourceWidth, sourceHeight, scaledW, scaledH, left, top, false);
    }
}

/// <summary>
/// torchvision RandomResizedCrop followed by RandomHorizontalFlip: up to 10 attempts draw an area fraction uniformly in
/// [minScale, maxScale] and a log-uniform aspect ratio in [minRatio, maxRatio]; w = round(√(area·ratio)),
/// h = round(√(area/ratio)) (half to even, as Python); the first crop that fits is placed uniformly. Otherwise the central
/// crop, clamped to the ratio range. The crop is then resized to the output size with antialiased bilinear filtering
/// (PIL's BILINEAR, whose support widens by the scale factor when downscaling, as torchvision uses on PIL images).
/// </summary>
public sealed class RandomResizedCrop : ImageTransform
{
    public RandomResizedCrop(int width, int height, double minScale = 0.08, double maxScale = 1.0,
        double minRatio = 3.0 / 4.0, double maxRatio = 4.0 / 3.0, double flipProbability = 0.5) : base(flipProbability)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"output size {width}×{height} must be positive");
        if (!(minScale > 0 && minScale <= maxScale && maxScale <= 1))
            throw new ArgumentOutOfRangeException(nameof(minScale), $"scale range ({minScale}, {maxScale}) must satisfy 0 < min ≤ max ≤ 1");
        if (!(minRatio > 0 && minRatio <= maxRatio && double.IsFinite(maxRatio)))
            throw new ArgumentOutOfRangeException(nameof(minRatio), $"ratio range ({minRatio}, {maxRatio}) must satisfy 0 < min ≤ max");
        Width = width;
        Height = height;
        MinScale = minScale;
        MaxScale = maxScale;
        MinRatio = minRatio;
        MaxRatio = maxRatio;
    }

    /// <summary>A square output with the torchvision defaults (scale (0.08, 1), ratio (3/4, 4/3), flip p = 0.5).</summary>
    public RandomResizedCrop(int size) : this(size, size) { }

    public int Width { get; }
    public int Height { get; }
    public double MinScale { get; }
    public double MaxScale { get; }
    public double MinRatio { get; }
    public double MaxRatio { get; }

    public override bool HasFixedSize => true;
    public override (int Width, int Height) OutputSize(int sourceWidth, int sourceHeight) => (Width, Height);

    /// <summary>Draws the crop box (torchvision's get_params).</summary>
    public (int Left, int Top, int Width, int Height) SampleCrop(int sourceWidth, int sourceHeight, ref SampleRandom random) =>
        SampleCrop(sourceWidth, sourceHeight, ref random, out _);

    /// <summary>As <see cref="SampleCrop(int, int, ref SampleRandom)"/>, saying whether all 10 attempts failed.</summary>
    internal (int Left, int Top, int Width, int Height) SampleCrop(int sourceWidth, int sourceHeight, ref SampleRandom random, out bool centralFallback)
    {
        centralFallback = false;
        double area = (double)sourceWidth * sourceHeight;
        double logLo = Math.Log(MinRatio), logHi = Math.Log(MaxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * random.Uniform(MinScale, MaxScale);
            double aspect = Math.Exp(random.Uniform(logLo, logHi));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= sourceWidth && h > 0 && h <= sourceHeight)
            {
                int top = random.NextInt(sourceHeight - h + 1);
                int left = random.NextInt(sourceWidth - w + 1);
                return (left, top, w, h);
            }
        }
        centralFallback = true;
        double inRatio = (double)sourceWidth / sourceHeight;
        int cw, ch;
        if (inRatio < MinRatio)
        {
            cw = sourceWidth;
            ch = (int)Math.Round(cw / MinRatio, MidpointRounding.ToEven);
        }
        else if (inRatio > MaxRatio)
        {
            ch = sourceHeight;
            cw = (int)Math.Round(ch * MaxRatio, MidpointRounding.ToEven);
        }
        else
        {
            cw = sourceWidth;
            ch = sourceHeight;
        }
        cw = Math.Clamp(cw, 1, sourceWidth);
        ch = Math.Clamp(ch, 1, sourceHeight);
        return ((sourceWidth - cw) / 2, (sourceHeight - ch) / 2, cw, ch);
    }

    public override ResamplePlan Plan(int sourceWidth, int sourceHeight, ref SampleRandom random)
    {
        var (left, top, w, h) = SampleCrop(sourceWidth, sourceHeight, ref random);
        return new(left, top, w, h, Width, Height, 0, 0, DrawFlip(ref random));
    }
}
