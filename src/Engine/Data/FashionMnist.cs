using System.Reflection;

namespace Engine.Data;

/// <summary>
/// Fashion-MNIST (Xiao et al., 2017): 28×28 grey-scale images of 10 clothing classes. The library embeds a
/// class-balanced subset (the first 1,000 training and 200 test images of each class, in file order; made by
/// Data/Resources/make_subset.py) so that examples and the CLI run with no download; <see cref="Load"/> reads the
/// full set from a directory of the four standard IDX files.
/// </summary>
public static class FashionMnist
{
    /// <summary>Number of classes.</summary>
    public const int NumClasses = 10;
    /// <summary>Mean pixel value of the full training set, on the [0, 1] scale.</summary>
    public const float Mean = 0.2860f;
    /// <summary>Standard deviation of the pixel values of the full training set, on the [0, 1] scale.</summary>
    public const float Std = 0.3530f;

    /// <summary>Class names, indexed by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private const string ResourcePrefix = "Engine.Data.Resources.";

    /// <summary>
    /// The embedded subset: 10,000 training and 2,000 test samples, images [N, 1, 28, 28] in [0, 1] (or normalised
    /// with <see cref="Mean"/> and <see cref="Std"/> when <paramref name="normalize"/>), labels [N] as floats.
    /// </summary>
    public static TrainTestSplit LoadEmbedded(bool normalize = false)
    {
        var asm = typeof(FashionMnist).Assembly;
        return new TrainTestSplit(
            LoadPair(asm, "fashion-train", normalize),
            LoadPair(asm, "fashion-test", normalize));
    }

    /// <summary>
    /// The full set from <paramref name="directory"/>, which holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each either plain or with a .gz suffix (e.g. Debian's
    /// /usr/share/datasets/fashion-mnist). Plain MNIST directories work too.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">One of the four files is missing.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, or images and labels disagree.</exception>
    public static TrainTestSplit Load(string directory, bool normalize = false)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Fashion-MNIST directory '{directory}' does not exist.");
        return new TrainTestSplit(
            LoadPair(Find(directory, "train-images-idx3-ubyte"), Find(directory, "train-labels-idx1-ubyte"), normalize),
            LoadPair(Find(directory, "t10k-images-idx3-ubyte"), Find(directory, "t10k-labels-idx1-ubyte"), normalize));
    }

    private static string Find(string directory, string baseName)
    {
        foreach (var candidate in new[] { baseName, baseName + ".gz" })
        {
            var p = Path.Combine(directory, candidate);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"Fashion-MNIST: neither {baseName} nor {baseName}.gz is in '{directory}'.", Path.Combine(directory, baseName));
    }

    private static TensorDataset LoadPair(string imagesPath, string labelsPath, bool normalize)
    {
        using var images = File.OpenRead(imagesPath);
        using var labels = File.OpenRead(labelsPath);
        return Pair(images, imagesPath, labels, labelsPath, normalize);
    }

    private static TensorDataset LoadPair(Assembly asm, string split, bool normalize)
    {
        string imagesName = $"{ResourcePrefix}{split}-images-idx3-ubyte.gz", labelsName = $"{ResourcePrefix}{split}-labels-idx1-ubyte.gz";
        using var images = asm.GetManifestResourceStream(imagesName) ?? throw new InvalidOperationException($"Embedded resource {imagesName} is missing from {asm.GetName().Name}.");
        using var labels = asm.GetManifestResourceStream(labelsName) ?? throw new InvalidOperationException($"Embedded resource {labelsName} is missing from {asm.GetName().Name}.");
        return Pair(images, imagesName, labels, labelsName, normalize);
    }

    private static TensorDataset Pair(Stream images, string imagesName, Stream labels, string labelsName, bool normalize)
    {
        var x = IdxReader.ReadImages(images, imagesName, normalize ? (Mean, Std) : null);
        var y = IdxReader.ReadLabels(labels, labelsName, NumClasses);
        if (x.Size(2) != 28 || x.Size(3) != 28)
            throw new InvalidDataException($"IDX file '{imagesName}': Fashion-MNIST images are 28x28, these are {x.Size(2)}x{x.Size(3)}.");
        if (x.Size(0) != y.Size(0))
            throw new InvalidDataException($"Fashion-MNIST: '{imagesName}' holds {x.Size(0)} images but '{labelsName}' holds {y.Size(0)} labels.");
        return new TensorDataset(x, y);
    }
}
