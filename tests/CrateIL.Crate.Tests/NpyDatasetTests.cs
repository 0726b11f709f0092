using CrateIL.Crate.Data;
using CrateIL.Crate.IO;
using Xunit;

namespace CrateIL.Crate.Tests;

public class NpyDatasetTests
{
    [Fact]
    public void ImagesAndLabelsLoadFromNpyFiles()
    {
        string dir = Directory.CreateTempSubdirectory("crateil-npyds").FullName;
        try
        {
            var pixels = Enumerable.Range(0, 2 * 3 * 4 * 4).Select(i => i * 0.5f).ToArray();
            Npy.Write(Path.Combine(dir, "x.npy"), [2, 3, 4, 4], pixels);
            Npy.Write(Path.Combine(dir, "y.npy"), [2], [1f, 0f]);
            var ds = NpyDataset.Load(Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"));
            Assert.Equal(2, ds.Count);
            Assert.Equal(2, ds.ClassCount);
            Assert.Equal(1, ds.GetLabel(0));
            Assert.Equal(0, ds.GetLabel(1));

            Npy.Write(Path.Combine(dir, "bad.npy"), [2], [1.5f, 0f]);
            var e = Assert.Throws<DatasetException>(() => NpyDataset.Load(Path.Combine(dir, "x.npy"), Path.Combine(dir, "bad.npy")));
            Assert.Contains("bad.npy", e.Message);
            Npy.Write(Path.Combine(dir, "three.npy"), [3], [0f, 1f, 0f]);
            Assert.Throws<DatasetException>(() => NpyDataset.Load(Path.Combine(dir, "x.npy"), Path.Combine(dir, "three.npy")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
