using Engine.Autograd;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Docs;

/// <summary>The README's training example, verbatim apart from the epoch count, must compile and learn.</summary>
public class ReadmeExampleTests
{
    [Test]
    public void ReadmeTrainingExampleLearns()
    {
        Generator.ManualSeed(0);
        // --- README example (epochs reduced from 3 to 1) ---
        var data = FashionMnist.LoadEmbedded();
        var model = new Sequential(new Flatten(), new Linear(784, 256), new ReLU(), new Linear(256, 10));
        var opt = new Sgd(model.Parameters(), lr: 0.05f, momentum: 0.9f);
        for (int epoch = 0; epoch < 1; epoch++)
            foreach (var (x, y) in new DataLoader(data.Train, batchSize: 128, shuffle: true, seed: (ulong)epoch))
            {
                opt.ZeroGrad();
                var loss = Losses.CrossEntropy(model.Forward(x), y);
                loss.Backward();
                opt.Step();
            }
        // --- end ---
        model.Eval();
        float accuracy;
        using (new NoGrad())
        {
            var predicted = model.Forward(data.Test.Inputs).ArgMax(1);
            accuracy = Tensor.Eq(predicted, data.Test.Targets).Mean().Item();
        }
        Assert.That(accuracy, Is.GreaterThan(0.75f), "one epoch of the README example should reach > 75% test accuracy");
    }
}
