using CrateIL.Crate.IO;

namespace CrateIL.Crate.Data;

/// <summary>A dataset from <c>.npy</c> files: images [N, C, H, W] (any numeric dtype, read as float32) and optional labels [N].</summary>
public static class NpyDataset
{
    public static ArrayDataset Load(string imagesPath, string? labelsPath = null)
    {
        var images = Npy.Read(imagesPath);
        int[]? labels = null;
        if (labelsPath is not null)
        {
            var l = Npy.Read(labelsPath);
            if (l.Shape.Length != 1) throw new DatasetException(labelsPath, $"labels must be a 1-D array; got shape [{string.Join(", ", l.Shape)}]");
            labels = new int[l.Data.Length];
            for (int i = 0; i < labels.Length; i++)
            {
                float v = l.Data[i];
                if (v != MathF.Round(v) || v < 0 || v > int.MaxValue)
                    throw new DatasetException(labelsPath, $"label {v} of sample {i} is not a non-negative integer");
                labels[i] = (int)v;
            }
        }
        return new ArrayDataset(images.Data, images.Shape, labels, source: imagesPath);
    }
}
