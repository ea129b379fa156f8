using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class AccuracyTests
{
    [Test]
    public void CountsRowsWhoseFirstMaximumIsTheTarget()
    {
        // Rows: argmax 2 (target 2), a tie between 0 and 1 (first wins; target 1), argmax 0 (target 0), argmax 1 (target 2).
        var logits = Tensor.FromArray([0f, 1f, 5f, 3f, 3f, 1f, 9f, -1f, 2f, 0f, 4f, 3f], 4, 3);
        var targets = Tensor.FromArray([2f, 1f, 0f, 2f], 4);
        Assert.That(Accuracy.CountCorrect(logits, targets), Is.EqualTo(2));
    }

    [Test]
    public void LogitsThatDoNotFitTheTargetsAreAnError()
    {
        var logits = Tensor.FromArray([0f, 1f, 2f, 3f, 4f], 5);
        Assert.Throws<ArgumentException>(() => Accuracy.CountCorrect(logits, Tensor.FromArray([0f, 1f], 2)));
    }
}
